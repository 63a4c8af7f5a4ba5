"""Console users in memory (rows as the SQLite table holds them)."""

from __future__ import annotations

from typing import Any

from loopwise.clock import isoformat, parse_timestamp
from loopwise.storage.memory.base import Store
from loopwise.storage.records import UserRecord


def _user(email: str, row: Any) -> UserRecord | None:
    role, password_hash, created_at, disabled, failed, last_failed = row
    created = parse_timestamp(created_at)
    if created is None:
        return None
    return UserRecord(
        email=email,
        role=role,
        password_hash=password_hash,
        created_at=created,
        disabled=bool(disabled),
        failed_logins=int(failed),
        last_failed_at=parse_timestamp(last_failed) if last_failed else None,
    )


class MemoryUserStore(Store):
    def get(self, email: str) -> UserRecord | None:
        with self._db.read() as tables:
            row = tables["users"].get(email)
        return None if row is None else _user(email, row)

    def list(self) -> list[UserRecord]:
        with self._db.read() as tables:
            rows = sorted(tables["users"].rows.items())
        return [u for u in (_user(email, row) for email, row in rows) if u is not None]

    def count(self) -> int:
        with self._db.read() as tables:
            return len(tables["users"].rows)

    def put(self, user: UserRecord) -> None:
        last = isoformat(user.last_failed_at) if user.last_failed_at else None
        row = (
            user.role,
            user.password_hash,
            isoformat(user.created_at),
            int(user.disabled),
            user.failed_logins,
            last,
        )
        self._db.put("users", user.email, row)

    def delete(self, email: str) -> bool:
        return self._db.pop("users", email) is not None
