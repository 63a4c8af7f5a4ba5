"""Console sessions in memory: a dict by token hash (see :mod:`.users` for sharing)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from loopwise.storage.records import SessionRecord


class MemorySessionStore:
    def __init__(self, rows: dict[str, SessionRecord] | None = None) -> None:
        self.rows: dict[str, SessionRecord] = {} if rows is None else rows

    def get(self, token_hash: str) -> SessionRecord | None:
        return self.rows.get(token_hash)

    def for_user(self, email: str) -> list[SessionRecord]:
        found = [s for s in self.rows.values() if s.email == email]
        return sorted(found, key=lambda s: s.created_at, reverse=True)

    def put(self, session: SessionRecord) -> None:
        self.rows[session.token_hash] = session

    def revoke(self, token_hash: str) -> bool:
        session = self.rows.get(token_hash)
        if session is None or session.revoked:
            return False
        self.rows[token_hash] = replace(session, revoked=True)
        return True

    def revoke_user(self, email: str) -> int:
        live = [s for s in self.rows.values() if s.email == email and not s.revoked]
        for session in live:
            self.rows[session.token_hash] = replace(session, revoked=True)
        return len(live)

    def purge_expired(self, now: datetime) -> int:
        gone = [k for k, s in self.rows.items() if s.revoked or s.expires_at < now]
        for key in gone:
            del self.rows[key]
        return len(gone)
