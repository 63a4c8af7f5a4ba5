"""Console users on SQLite (one row per user, keyed by lower-cased email)."""

from __future__ import annotations

from typing import Any

from loopwise.clock import isoformat, parse_timestamp
from loopwise.storage.records import UserRecord
from loopwise.storage.sqlite.base import Table

_COLUMNS = "email, role, password_hash, created_at, disabled, failed_logins, last_failed_at"


def _user(row: Any) -> UserRecord | None:
    email, role, password_hash, created_at, disabled, failed, last_failed = row
    created = parse_timestamp(created_at)
    if created is None:
        return None  # a damaged row signs nobody in
    return UserRecord(
        email=str(email),
        role=str(role),
        password_hash=str(password_hash),
        created_at=created,
        disabled=bool(disabled),
        failed_logins=int(failed or 0),
        last_failed_at=parse_timestamp(last_failed) if last_failed else None,
    )


class SqliteUserStore(Table):
    def get(self, email: str) -> UserRecord | None:
        row = self._row(f"SELECT {_COLUMNS} FROM users WHERE email = ?", (email,))
        return None if row is None else _user(row)

    def list(self) -> list[UserRecord]:
        rows = self._all(f"SELECT {_COLUMNS} FROM users ORDER BY email")
        return [u for u in (_user(row) for row in rows) if u is not None]

    def count(self) -> int:
        return int(self._one("SELECT COUNT(*) FROM users"))

    def put(self, user: UserRecord) -> None:
        self._exec(
            f"INSERT INTO users ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (email) DO UPDATE SET role = excluded.role, "
            "password_hash = excluded.password_hash, created_at = excluded.created_at, "
            "disabled = excluded.disabled, failed_logins = excluded.failed_logins, "
            "last_failed_at = excluded.last_failed_at",
            (
                user.email,
                user.role,
                user.password_hash,
                isoformat(user.created_at),
                int(user.disabled),
                user.failed_logins,
                isoformat(user.last_failed_at) if user.last_failed_at else None,
            ),
        )

    def delete(self, email: str) -> bool:
        return self._exec("DELETE FROM users WHERE email = ?", (email,)) > 0
