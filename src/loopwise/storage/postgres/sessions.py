"""Console sessions on PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from loopwise.storage.postgres.base import Table, ms, utc
from loopwise.storage.records import SessionRecord

_COLUMNS = "token_hash, email, csrf, created_at, expires_at, revoked"


def _session(row: Any) -> SessionRecord:
    token_hash, email, csrf, created_at, expires_at, revoked = row
    return SessionRecord(token_hash, email, csrf, utc(created_at), utc(expires_at), bool(revoked))


class PostgresSessionStore(Table):
    def get(self, token_hash: str) -> SessionRecord | None:
        row = self._row(f"SELECT {_COLUMNS} FROM sessions WHERE token_hash = %s", [token_hash])
        return None if row is None else _session(row)

    def for_user(self, email: str) -> list[SessionRecord]:
        rows = self._all(
            f"SELECT {_COLUMNS} FROM sessions WHERE email = %s ORDER BY created_at DESC", [email]
        )
        return [_session(row) for row in rows]

    def put(self, session: SessionRecord) -> None:
        self._exec(
            f"INSERT INTO sessions ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (token_hash) DO UPDATE SET email = excluded.email, "
            "csrf = excluded.csrf, created_at = excluded.created_at, "
            "expires_at = excluded.expires_at, revoked = excluded.revoked",
            [
                session.token_hash, session.email, session.csrf, ms(session.created_at),
                ms(session.expires_at), session.revoked,
            ],
        )  # fmt: skip

    def revoke(self, token_hash: str) -> bool:
        return (
            self._exec(
                "UPDATE sessions SET revoked = true WHERE token_hash = %s AND NOT revoked",
                [token_hash],
            )
            > 0
        )

    def revoke_user(self, email: str) -> int:
        return self._exec(
            "UPDATE sessions SET revoked = true WHERE email = %s AND NOT revoked", [email]
        )

    def purge_expired(self, now: datetime) -> int:
        return self._exec("DELETE FROM sessions WHERE expires_at < %s OR revoked", [ms(now)])
