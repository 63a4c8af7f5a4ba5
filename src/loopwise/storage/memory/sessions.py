"""Console sessions in memory (rows as the SQLite table holds them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from loopwise.clock import isoformat, parse_timestamp
from loopwise.storage.memory.base import Store
from loopwise.storage.records import SessionRecord


def _session(token_hash: str, row: Any) -> SessionRecord | None:
    email, csrf, created_at, expires_at, revoked = row
    created, expires = parse_timestamp(created_at), parse_timestamp(expires_at)
    if created is None or expires is None:
        return None
    return SessionRecord(token_hash, email, csrf, created, expires, bool(revoked))


class MemorySessionStore(Store):
    def get(self, token_hash: str) -> SessionRecord | None:
        with self._db.read() as tables:
            row = tables["sessions"].get(token_hash)
        return None if row is None else _session(token_hash, row)

    def for_user(self, email: str) -> list[SessionRecord]:
        with self._db.read() as tables:
            table = tables["sessions"]
            rows = [(key, table.rows[key]) for key in table.keys_where("email", email)]
        found = [s for s in (_session(k, row) for k, row in rows) if s is not None]
        return sorted(found, key=lambda s: s.created_at, reverse=True)

    def put(self, session: SessionRecord) -> None:
        row = (
            session.email,
            session.csrf,
            isoformat(session.created_at),
            isoformat(session.expires_at),
            int(session.revoked),
        )
        self._db.put("sessions", session.token_hash, row)

    def revoke(self, token_hash: str) -> bool:
        with self._db.read() as tables:
            row = tables["sessions"].get(token_hash)
        if row is None or row[4]:
            return False
        self._db.put("sessions", token_hash, (*row[:4], 1))
        return True

    def revoke_user(self, email: str) -> int:
        with self._db.read() as tables:
            table = tables["sessions"]
            live = [(k, table.rows[k]) for k in table.keys_where("email", email)]
        live = [(k, row) for k, row in live if not row[4]]
        for key, row in live:
            self._db.put("sessions", key, (*row[:4], 1))
        return len(live)

    def purge_expired(self, now: datetime) -> int:
        stamp = isoformat(now)
        with self._db.read() as tables:
            gone = [k for k, row in tables["sessions"].rows.items() if row[4] or row[3] < stamp]
        for key in gone:
            self._db.pop("sessions", key)
        return len(gone)
