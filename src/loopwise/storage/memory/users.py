"""Console users in memory: a dict by email (records are immutable, so readers share them).

The in-memory backend hands the same ``rows`` dict to its read handle and to each unit of work;
how it isolates a transaction (copy, journal) is the backend's business, not this store's.
"""

from __future__ import annotations

from loopwise.storage.records import UserRecord


class MemoryUserStore:
    def __init__(self, rows: dict[str, UserRecord] | None = None) -> None:
        self.rows: dict[str, UserRecord] = {} if rows is None else rows

    def get(self, email: str) -> UserRecord | None:
        return self.rows.get(email)

    def list(self) -> list[UserRecord]:
        return [self.rows[email] for email in sorted(self.rows)]

    def count(self) -> int:
        return len(self.rows)

    def put(self, user: UserRecord) -> None:
        self.rows[user.email] = user

    def delete(self, email: str) -> bool:
        return self.rows.pop(email, None) is not None
