"""Workspace revisions on SQLite: one row per revision with the whole document after it."""

from __future__ import annotations

from typing import Any

import orjson

from loopwise.clock import isoformat, parse_timestamp
from loopwise.errors import Conflict
from loopwise.storage.records import WorkspaceChange
from loopwise.storage.sqlite.base import Table

_COLUMNS = "revision, at, actor, source, comment, document, diff"


def _change(row: Any) -> WorkspaceChange | None:
    revision, at, actor, source, comment, document, diff = row
    when = parse_timestamp(at)
    try:
        body = orjson.loads(document)
        lines = orjson.loads(diff) if diff else []
    except orjson.JSONDecodeError:
        return None
    if when is None or not isinstance(body, dict):
        return None  # a damaged revision is left out; the others still restore
    return WorkspaceChange(
        revision=int(revision),
        at=when,
        actor=str(actor),
        source=str(source),
        comment=str(comment),
        document=body,
        diff=tuple(str(line) for line in lines),
    )


class SqliteWorkspaceHistory(Table):
    def latest(self) -> WorkspaceChange | None:
        row = self._row(f"SELECT {_COLUMNS} FROM workspace_history ORDER BY revision DESC LIMIT 1")
        return None if row is None else _change(row)

    def get(self, revision: int) -> WorkspaceChange | None:
        row = self._row(f"SELECT {_COLUMNS} FROM workspace_history WHERE revision = ?", (revision,))
        return None if row is None else _change(row)

    def list(self, limit: int = 50, before: int | None = None) -> list[WorkspaceChange]:
        ceiling = before if before is not None else 2**62
        rows = self._all(
            f"SELECT {_COLUMNS} FROM workspace_history WHERE revision < ? "
            "ORDER BY revision DESC LIMIT ?",
            (ceiling, limit),
        )
        return [c for c in (_change(row) for row in rows) if c is not None]

    def count(self) -> int:
        return int(self._one("SELECT COUNT(*) FROM workspace_history"))

    def append(self, change: WorkspaceChange) -> None:
        newest = self._one("SELECT MAX(revision) FROM workspace_history")
        expected = int(newest or 0) + 1
        if change.revision != expected:
            raise Conflict(
                f"Workspace revision {change.revision} cannot be recorded: the next revision "
                f"is {expected} (another change was saved first). Reload and apply again.",
                field="revision",
                current_revision=expected - 1,
            )
        self._exec(
            f"INSERT INTO workspace_history ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                change.revision,
                isoformat(change.at),
                change.actor,
                change.source,
                change.comment,
                orjson.dumps(change.document),
                orjson.dumps(list(change.diff)),
            ),
        )
