"""Consent states and the append-only, hash-chained audit trail on SQLite."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

import orjson

from loopwise.clock import isoformat
from loopwise.storage.codec import UnreadableRecord, decode_json
from loopwise.storage.records import JsonDict
from loopwise.storage.sqlite.base import Table


class SqliteConsentStore(Table):
    def get(self, keys: Iterable[str]) -> dict[str, JsonDict]:
        found: dict[str, JsonDict] = {}
        for key, blob in self._in("SELECT key, record FROM consent WHERE key IN ({})", list(keys)):
            try:
                found[str(key)] = decode_json(blob, f"consent {key}")
            except UnreadableRecord:
                continue  # a damaged state reads as no choice (the defaults apply)
        return found

    def count(self) -> int:
        return int(self._one("SELECT count(*) FROM consent"))

    def iter(self) -> Iterator[tuple[str, JsonDict]]:
        for key, blob in self._stream("SELECT key, record FROM consent ORDER BY key"):
            try:
                yield str(key), decode_json(blob, f"consent {key}")
            except UnreadableRecord:
                continue

    def put(self, key: str, record: JsonDict) -> None:
        self._exec(
            "INSERT INTO consent (key, record) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET record = excluded.record",
            (key, orjson.dumps(record)),
        )

    def delete(self, keys: Iterable[str]) -> int:
        return self._many("DELETE FROM consent WHERE key = ?", [(key,) for key in keys])


class SqliteAuditLog(Table):
    def iter(self, subjects: Sequence[str] | None = None) -> Iterator[JsonDict]:
        if subjects is None:
            for (blob,) in self._stream("SELECT record FROM audit ORDER BY seq"):
                yield orjson.loads(blob)
            return
        rows = self._in("SELECT seq, record FROM audit WHERE subject IN ({})", list(subjects))
        for _, blob in sorted(rows):
            yield orjson.loads(blob)

    def head(self) -> JsonDict | None:
        blob = self._one("SELECT record FROM audit ORDER BY seq DESC LIMIT 1")
        return None if blob is None else orjson.loads(blob)

    def append(self, record: JsonDict) -> None:
        self._exec(
            "INSERT INTO audit (seq, subject, at, record) VALUES (?, ?, ?, ?)",
            (int(record["seq"]), str(record["subject"]), str(record["at"]), orjson.dumps(record)),
        )

    def purge_before(self, cutoff: datetime) -> tuple[int, JsonDict | None]:
        removed = self._exec(
            "DELETE FROM audit WHERE at < ? AND seq < (SELECT max(seq) FROM audit)",
            (isoformat(cutoff),),
        )
        first = self._one("SELECT record FROM audit ORDER BY seq LIMIT 1")
        return removed, None if first is None else orjson.loads(first)
