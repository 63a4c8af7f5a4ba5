"""TEMPORARY stand-in until the in-memory backend lands: SQLite on a private temporary file."""

from __future__ import annotations

import tempfile
from pathlib import Path

from loopwise.storage.sqlite import SqliteStorage


class MemoryStorage(SqliteStorage):
    kind = "memory"

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="loopwise-mem-")
        super().__init__(Path(self._dir.name) / "memory.db")
