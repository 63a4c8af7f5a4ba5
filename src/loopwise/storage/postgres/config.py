"""Configuration documents, metadata and change counters on PostgreSQL."""

from __future__ import annotations

import orjson

from loopwise.storage.decoding import config_document
from loopwise.storage.postgres.base import Table
from loopwise.storage.records import JsonDict


class PostgresConfigStore(Table):
    def get(self, key: str) -> JsonDict | None:
        blob = self._one("SELECT value FROM config WHERE key = %s", [key])
        return None if blob is None else config_document(key, blob)

    def meta(self, key: str) -> str | None:
        value = self._one("SELECT value FROM meta WHERE key = %s", [key])
        return None if value is None else str(value)

    def revisions(self) -> dict[str, int]:
        return {name: int(value) for name, value in self._all("SELECT name, value FROM revisions")}

    def put(self, key: str, value: JsonDict) -> None:
        self._exec(
            "INSERT INTO config (key, value) VALUES (%s, %s) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [key, orjson.dumps(value)],
        )

    def put_meta(self, key: str, value: str) -> None:
        self._exec(
            "INSERT INTO meta (key, value) VALUES (%s, %s) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [key, value],
        )

    def bump(self, name: str) -> int:
        rows = self._returning(
            "INSERT INTO revisions (name, value) VALUES (%s, 1) "
            "ON CONFLICT (name) DO UPDATE SET value = revisions.value + 1 RETURNING value",
            [name],
        )
        return int(rows[0][0])
