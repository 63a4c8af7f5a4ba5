"""Workspace revisions in memory (rows as the SQLite table holds them)."""

from __future__ import annotations

from typing import Any

import orjson

from loopwise.clock import isoformat, parse_timestamp
from loopwise.errors import Conflict
from loopwise.storage.memory.base import Store
from loopwise.storage.records import WorkspaceChange


def _change(revision: int, row: Any) -> WorkspaceChange | None:
    at, actor, source, comment, document, diff = row
    when = parse_timestamp(at)
    try:
        body, lines = orjson.loads(document), orjson.loads(diff)
    except orjson.JSONDecodeError:
        return None
    if when is None or not isinstance(body, dict):
        return None
    return WorkspaceChange(revision, when, actor, source, comment, body, tuple(lines))


class MemoryWorkspaceHistory(Store):
    def _newest(self) -> int:
        with self._db.read() as tables:
            return max(tables["workspace_history"].rows, default=0)

    def latest(self) -> WorkspaceChange | None:
        newest = self._newest()
        return self.get(newest) if newest else None

    def get(self, revision: int) -> WorkspaceChange | None:
        with self._db.read() as tables:
            row = tables["workspace_history"].get(revision)
        return None if row is None else _change(revision, row)

    def list(self, limit: int = 50, before: int | None = None) -> list[WorkspaceChange]:
        with self._db.read() as tables:
            rows = tables["workspace_history"].rows
            chosen = sorted((r for r in rows if before is None or r < before), reverse=True)
            picked = [(r, rows[r]) for r in chosen[:limit]]
        return [c for c in (_change(r, row) for r, row in picked) if c is not None]

    def count(self) -> int:
        with self._db.read() as tables:
            return len(tables["workspace_history"].rows)

    def append(self, change: WorkspaceChange) -> None:
        expected = self._newest() + 1
        if change.revision != expected:
            raise Conflict(
                f"Workspace revision {change.revision} cannot be recorded: the next revision "
                f"is {expected} (another change was saved first). Reload and apply again.",
                field="revision",
                current_revision=expected - 1,
            )
        row = (
            isoformat(change.at),
            change.actor,
            change.source,
            change.comment,
            orjson.dumps(change.document),
            orjson.dumps(list(change.diff)),
        )
        self._db.put("workspace_history", change.revision, row)
