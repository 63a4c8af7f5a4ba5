"""The catalog in memory: ``items`` (id -> ``Item.to_record()``)."""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from loopwise.storage.decoding import damaged_items, items
from loopwise.storage.memory.base import Store
from loopwise.storage.records import Damaged, JsonDict


class MemoryCatalogStore(Store):
    def _rows(self) -> list[tuple[str, bytes]]:
        with self._db.read() as tables:
            return [(str(key), row[0]) for key, row in sorted(tables["items"].rows.items())]

    def all(self) -> list[JsonDict]:
        return items(self._rows())

    def damaged(self) -> list[Damaged]:
        return damaged_items(self._rows())

    def upsert(self, items: Sequence[JsonDict]) -> None:
        for item in items:
            self._db.put("items", str(item["id"]), (orjson.dumps(item),))

    def delete(self, item_ids: Sequence[str]) -> int:
        return sum(self._db.pop("items", item_id) is not None for item_id in item_ids)
