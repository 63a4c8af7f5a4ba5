"""Workspace revisions in memory: a list in revision order (see :mod:`.users` for sharing)."""

from __future__ import annotations

from loopwise.errors import Conflict
from loopwise.storage.records import WorkspaceChange


class MemoryWorkspaceHistory:
    def __init__(self, rows: list[WorkspaceChange] | None = None) -> None:
        self.rows: list[WorkspaceChange] = [] if rows is None else rows

    def latest(self) -> WorkspaceChange | None:
        return self.rows[-1] if self.rows else None

    def get(self, revision: int) -> WorkspaceChange | None:
        return next((c for c in self.rows if c.revision == revision), None)

    def list(self, limit: int = 50, before: int | None = None) -> list[WorkspaceChange]:
        found = [c for c in reversed(self.rows) if before is None or c.revision < before]
        return found[:limit]

    def count(self) -> int:
        return len(self.rows)

    def append(self, change: WorkspaceChange) -> None:
        expected = (self.rows[-1].revision if self.rows else 0) + 1
        if change.revision != expected:
            raise Conflict(
                f"Workspace revision {change.revision} cannot be recorded: the next revision "
                f"is {expected} (another change was saved first). Reload and apply again.",
                field="revision",
                current_revision=expected - 1,
            )
        self.rows.append(change)
