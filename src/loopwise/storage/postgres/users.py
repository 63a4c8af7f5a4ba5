"""Console users on PostgreSQL."""

from __future__ import annotations

from typing import Any

from loopwise.storage.postgres.base import Table, ms, utc
from loopwise.storage.records import UserRecord

_COLUMNS = "email, role, password_hash, created_at, disabled, failed_logins, last_failed_at"


def _user(row: Any) -> UserRecord:
    email, role, password_hash, created_at, disabled, failed, last_failed = row
    return UserRecord(
        email, role, password_hash, utc(created_at), bool(disabled), int(failed),
        utc(last_failed) if last_failed is not None else None,
    )  # fmt: skip


class PostgresUserStore(Table):
    def get(self, email: str) -> UserRecord | None:
        row = self._row(f"SELECT {_COLUMNS} FROM users WHERE email = %s", [email])
        return None if row is None else _user(row)

    def list(self) -> list[UserRecord]:
        return [_user(row) for row in self._all(f"SELECT {_COLUMNS} FROM users ORDER BY email")]

    def count(self) -> int:
        return int(self._one("SELECT count(*) FROM users"))

    def put(self, user: UserRecord) -> None:
        self._exec(
            f"INSERT INTO users ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (email) DO UPDATE SET role = excluded.role, "
            "password_hash = excluded.password_hash, created_at = excluded.created_at, "
            "disabled = excluded.disabled, failed_logins = excluded.failed_logins, "
            "last_failed_at = excluded.last_failed_at",
            [
                user.email, user.role, user.password_hash, ms(user.created_at), user.disabled,
                user.failed_logins, ms(user.last_failed_at) if user.last_failed_at else None,
            ],
        )  # fmt: skip

    def delete(self, email: str) -> bool:
        return self._exec("DELETE FROM users WHERE email = %s", [email]) > 0
