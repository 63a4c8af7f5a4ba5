"""The catalog on PostgreSQL: ``items`` (id -> ``Item.to_record()``)."""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from loopwise.storage.codec import UnreadableRecord, decode_json
from loopwise.storage.postgres.base import Table, first_column
from loopwise.storage.records import Damaged, JsonDict


class PostgresCatalogStore(Table):
    def _rows(self) -> list[tuple[str, bytes]]:
        rows = self._paged(
            "SELECT id, record FROM items WHERE id > %s ORDER BY id LIMIT %s",
            [],
            first_column,
            first="SELECT id, record FROM items ORDER BY id LIMIT %s",
        )
        return [(item_id, bytes(blob)) for item_id, blob in rows]

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
        latest = {str(item["id"]): orjson.dumps(item) for item in items}  # the last copy wins
        if not latest:
            return
        self._exec(
            "INSERT INTO items (id, record) SELECT * FROM unnest(%s::text[], %s::bytea[]) "
            "ON CONFLICT (id) DO UPDATE SET record = excluded.record",
            [list(latest), list(latest.values())],
        )

    def delete(self, item_ids: Sequence[str]) -> int:
        return self._exec("DELETE FROM items WHERE id = ANY(%s)", [list(item_ids)])
