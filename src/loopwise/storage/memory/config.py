"""Configuration documents, metadata and change counters in memory."""

from __future__ import annotations

import orjson

from loopwise.storage.decoding import config_document
from loopwise.storage.memory.base import Store
from loopwise.storage.records import JsonDict


class MemoryConfigStore(Store):
    def get(self, key: str) -> JsonDict | None:
        with self._db.read() as tables:
            row = tables["config"].get(key)
        return None if row is None else config_document(key, row[0])

    def meta(self, key: str) -> str | None:
        with self._db.read() as tables:
            row = tables["meta"].get(key)
        return None if row is None else str(row[0])

    def revisions(self) -> dict[str, int]:
        with self._db.read() as tables:
            return {str(name): int(row[0]) for name, row in tables["revisions"].rows.items()}

    def put(self, key: str, value: JsonDict) -> None:
        self._db.put("config", key, (orjson.dumps(value),))

    def put_meta(self, key: str, value: str) -> None:
        self._db.put("meta", key, (str(value),))

    def bump(self, name: str) -> int:
        with self._db.read() as tables:
            row = tables["revisions"].get(name)
        value = (int(row[0]) if row else 0) + 1
        self._db.put("revisions", name, (value,))
        return value
