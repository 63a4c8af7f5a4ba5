"""The catalog in memory: ``items`` (id -> ``Item.to_record()``)."""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from loopwise.storage.codec import UnreadableRecord, decode_json
from loopwise.storage.memory.base import Store
from loopwise.storage.records import Damaged, JsonDict


class MemoryCatalogStore(Store):
    def _rows(self) -> list[tuple[str, bytes]]:
        with self._db.read() as tables:
            return [(str(key), row[0]) for key, row in sorted(tables["items"].rows.items())]

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
        for item in items:
            self._db.put("items", str(item["id"]), (orjson.dumps(item),))

    def delete(self, item_ids: Sequence[str]) -> int:
        return sum(self._db.pop("items", item_id) is not None for item_id in item_ids)
