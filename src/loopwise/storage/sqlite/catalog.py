"""The catalog on SQLite: ``items`` (id -> ``Item.to_record()``)."""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from loopwise.storage.codec import UnreadableRecord, decode_json
from loopwise.storage.records import Damaged, JsonDict
from loopwise.storage.sqlite.base import Table, as_bytes


class SqliteCatalogStore(Table):
    def _rows(self) -> list[tuple[str, bytes]]:
        return [
            (str(i), as_bytes(b)) for i, b in self._all("SELECT id, record FROM items ORDER BY id")
        ]

    def all(self) -> list[JsonDict]:
        records = []
        for item_id, blob in self._rows():
            try:
                records.append(decode_json(blob, f"item {item_id}"))
            except UnreadableRecord:
                continue
        return records

    def damaged(self) -> list[Damaged]:
        found = []
        for item_id, blob in self._rows():
            try:
                decode_json(blob, f"item {item_id}")
            except UnreadableRecord as exc:
                found.append(Damaged("items", item_id, str(exc), blob))
        return found

    def upsert(self, items: Sequence[JsonDict]) -> None:
        self._many(
            "INSERT INTO items (id, record) VALUES (?, ?) "
            "ON CONFLICT (id) DO UPDATE SET record = excluded.record",
            [(str(item["id"]), orjson.dumps(item)) for item in items],
        )

    def delete(self, item_ids: Sequence[str]) -> int:
        return self._many("DELETE FROM items WHERE id = ?", [(i,) for i in item_ids])
