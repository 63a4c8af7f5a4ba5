"""Consent states and the append-only audit trail on PostgreSQL.

``audit`` refuses UPDATE with a trigger (migration 0001); the hash chain over its records is
:mod:`loopwise.privacy.audit`'s, so this module stores and returns records as they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

import orjson

from loopwise.storage.decoding import consent_states
from loopwise.storage.postgres.base import Table, first_column, ms, required_time
from loopwise.storage.records import JsonDict


class PostgresConsentStore(Table):
    def get(self, keys: Iterable[str]) -> dict[str, JsonDict]:
        rows = self._all("SELECT key, record FROM consent WHERE key = ANY(%b)", [list(keys)])
        return dict(consent_states(rows))

    def count(self) -> int:
        return int(self._one("SELECT count(*) FROM consent"))

    def iter(self) -> Iterator[tuple[str, JsonDict]]:
        rows = self._paged(
            "SELECT key, record FROM consent WHERE key > %s ORDER BY key LIMIT %s",
            [],
            first_column,
            first="SELECT key, record FROM consent ORDER BY key LIMIT %s",
        )
        return consent_states(rows)

    def put(self, key: str, record: JsonDict) -> None:
        self._exec(
            "INSERT INTO consent (key, record) VALUES (%s, %s) "
            "ON CONFLICT (key) DO UPDATE SET record = excluded.record",
            [key, orjson.dumps(record)],
        )

    def delete(self, keys: Iterable[str]) -> int:
        return self._exec("DELETE FROM consent WHERE key = ANY(%b)", [list(keys)])


class PostgresAuditLog(Table):
    def iter(self, subjects: Sequence[str] | None = None) -> Iterator[JsonDict]:
        if subjects is None:
            query = "SELECT seq, record FROM audit WHERE seq > %s ORDER BY seq LIMIT %s"
            rows = self._paged(query, [], first_column, start=[0])
        else:
            query = (
                "SELECT seq, record FROM audit WHERE subject = ANY(%b) AND seq > %s "
                "ORDER BY seq LIMIT %s"
            )
            rows = self._paged(query, [list(subjects)], first_column, start=[0])
        return (orjson.loads(blob) for _, blob in rows)

    def head(self) -> JsonDict | None:
        blob = self._one("SELECT record FROM audit ORDER BY seq DESC LIMIT 1")
        return None if blob is None else orjson.loads(blob)

    def append(self, record: JsonDict) -> None:
        self._exec(
            "INSERT INTO audit (seq, subject, at, record) VALUES (%s, %s, %s, %s)",
            [
                int(record["seq"]),
                str(record["subject"]),
                required_time(record["at"], "an audit record's at"),
                orjson.dumps(record),
            ],
        )

    def purge_before(self, cutoff: datetime) -> tuple[int, JsonDict | None]:
        removed = self._exec(
            "DELETE FROM audit WHERE at < %s AND seq < (SELECT max(seq) FROM audit)",
            [ms(cutoff)],
        )
        first = self._one("SELECT record FROM audit ORDER BY seq LIMIT 1")
        return removed, None if first is None else orjson.loads(first)
