"""Consent states and the append-only audit trail in memory."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

import orjson

from loopwise.clock import isoformat
from loopwise.storage.decoding import consent_states
from loopwise.storage.memory.base import Store
from loopwise.storage.records import JsonDict


class MemoryConsentStore(Store):
    def get(self, keys: Iterable[str]) -> dict[str, JsonDict]:
        with self._db.read() as tables:
            rows = [(key, tables["consent"].get(key)) for key in dict.fromkeys(keys)]
        return dict(consent_states((key, row[0]) for key, row in rows if row is not None))

    def count(self) -> int:
        with self._db.read() as tables:
            return len(tables["consent"].rows)

    def iter(self) -> Iterator[tuple[str, JsonDict]]:
        with self._db.read() as tables:
            rows = sorted(tables["consent"].rows.items())
        return consent_states((key, row[0]) for key, row in rows)

    def put(self, key: str, record: JsonDict) -> None:
        self._db.put("consent", key, (orjson.dumps(record),))

    def delete(self, keys: Iterable[str]) -> int:
        return sum(self._db.pop("consent", key) is not None for key in keys)


class MemoryAuditLog(Store):
    def iter(self, subjects: Sequence[str] | None = None) -> Iterator[JsonDict]:
        with self._db.read() as tables:
            audit = tables["audit"]
            if subjects is None:
                seqs = sorted(audit.rows)
            else:
                seqs = sorted(
                    {s for subject in subjects for s in audit.keys_where("subject", subject)}
                )
            blobs = [audit.rows[seq][-1] for seq in seqs]
        return (orjson.loads(blob) for blob in blobs)

    def head(self) -> JsonDict | None:
        with self._db.read() as tables:
            audit = tables["audit"]
            newest = max(audit.rows, default=None)
            blob = None if newest is None else audit.rows[newest][-1]
        return None if blob is None else orjson.loads(blob)

    def append(self, record: JsonDict) -> None:
        seq = int(record["seq"])
        row = (str(record["subject"]), str(record["at"]), orjson.dumps(record))
        with self._db.read() as tables:
            taken = tables["audit"].get(seq) is not None
        if taken:
            raise ValueError(f"audit record {seq} already exists; the audit log is append-only")
        self._db.put("audit", seq, row)

    def purge_before(self, cutoff: datetime) -> tuple[int, JsonDict | None]:
        stamp = isoformat(cutoff)
        with self._db.read() as tables:
            rows = tables["audit"].rows
            newest = max(rows, default=0)
            old = [seq for seq, row in rows.items() if row[1] < stamp and seq < newest]
        for seq in old:
            self._db.pop("audit", seq)
        with self._db.read() as tables:
            rows = tables["audit"].rows
            first = rows[min(rows)][-1] if rows else None
        return len(old), None if first is None else orjson.loads(first)
