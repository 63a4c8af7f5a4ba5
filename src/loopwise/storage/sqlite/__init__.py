"""The SQLite backend (the embedded default)."""

from loopwise.storage.sqlite.storage import SqliteStorage, SqliteUnitOfWork

__all__ = ["SqliteStorage", "SqliteUnitOfWork"]
