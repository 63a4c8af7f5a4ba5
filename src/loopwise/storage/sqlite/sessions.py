"""Console sessions on SQLite (keyed by the hash of the cookie's token)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from loopwise.clock import isoformat, parse_timestamp
from loopwise.storage.records import SessionRecord
from loopwise.storage.sqlite.base import Table

_COLUMNS = "token_hash, email, csrf, created_at, expires_at, revoked"


def _session(row: Any) -> SessionRecord | None:
    token_hash, email, csrf, created_at, expires_at, revoked = row
    created, expires = parse_timestamp(created_at), parse_timestamp(expires_at)
    if created is None or expires is None:
        return None  # unreadable: treated as no session
    return SessionRecord(
        token_hash=str(token_hash),
        email=str(email),
        csrf=str(csrf),
        created_at=created,
        expires_at=expires,
        revoked=bool(revoked),
    )


class SqliteSessionStore(Table):
    def get(self, token_hash: str) -> SessionRecord | None:
        row = self._row(f"SELECT {_COLUMNS} FROM sessions WHERE token_hash = ?", (token_hash,))
        return None if row is None else _session(row)

    def for_user(self, email: str) -> list[SessionRecord]:
        rows = self._all(
            f"SELECT {_COLUMNS} FROM sessions WHERE email = ? ORDER BY created_at DESC", (email,)
        )
        return [s for s in (_session(row) for row in rows) if s is not None]

    def put(self, session: SessionRecord) -> None:
        self._exec(
            f"INSERT OR REPLACE INTO sessions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
            (
                session.token_hash,
                session.email,
                session.csrf,
                isoformat(session.created_at),
                isoformat(session.expires_at),
                int(session.revoked),
            ),
        )

    def revoke(self, token_hash: str) -> bool:
        return (
            self._exec(
                "UPDATE sessions SET revoked = 1 WHERE token_hash = ? AND revoked = 0",
                (token_hash,),
            )
            > 0
        )

    def revoke_user(self, email: str) -> int:
        return self._exec(
            "UPDATE sessions SET revoked = 1 WHERE email = ? AND revoked = 0", (email,)
        )

    def purge_expired(self, now: datetime) -> int:
        return self._exec(
            "DELETE FROM sessions WHERE expires_at < ? OR revoked = 1", (isoformat(now),)
        )
