"""Workspace revisions on PostgreSQL."""

from __future__ import annotations

from typing import Any

import orjson

from loopwise.errors import Conflict
from loopwise.storage.postgres.base import Table, ms, utc
from loopwise.storage.records import WorkspaceChange

_COLUMNS = "revision, at, actor, source, comment, document, diff"


def _change(row: Any) -> WorkspaceChange | None:
    revision, at, actor, source, comment, document, diff = row
    try:
        body, lines = orjson.loads(bytes(document)), orjson.loads(bytes(diff))
    except orjson.JSONDecodeError:
        return None  # a damaged revision is left out; the others still restore
    if not isinstance(body, dict):
        return None
    return WorkspaceChange(int(revision), utc(at), actor, source, comment, body, tuple(lines))


class PostgresWorkspaceHistory(Table):
    def latest(self) -> WorkspaceChange | None:
        row = self._row(f"SELECT {_COLUMNS} FROM workspace_history ORDER BY revision DESC LIMIT 1")
        return None if row is None else _change(row)

    def get(self, revision: int) -> WorkspaceChange | None:
        row = self._row(f"SELECT {_COLUMNS} FROM workspace_history WHERE revision = %s", [revision])
        return None if row is None else _change(row)

    def list(self, limit: int = 50, before: int | None = None) -> list[WorkspaceChange]:
        rows = self._all(
            f"SELECT {_COLUMNS} FROM workspace_history WHERE revision < %s "
            "ORDER BY revision DESC LIMIT %s",
            [before if before is not None else 2**62, limit],
        )
        return [c for c in (_change(row) for row in rows) if c is not None]

    def count(self) -> int:
        return int(self._one("SELECT count(*) FROM workspace_history"))

    def append(self, change: WorkspaceChange) -> None:
        # the writer's transaction holds the row lock of every revision it inserts; a second
        # worker's insert of the same revision waits, then fails on the primary key
        newest = self._one("SELECT max(revision) FROM workspace_history")
        expected = int(newest or 0) + 1
        if change.revision != expected:
            raise Conflict(
                f"Workspace revision {change.revision} cannot be recorded: the next revision "
                f"is {expected} (another change was saved first). Reload and apply again.",
                field="revision",
                current_revision=expected - 1,
            )
        self._exec(
            f"INSERT INTO workspace_history ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [
                change.revision, ms(change.at), change.actor, change.source, change.comment,
                orjson.dumps(change.document), orjson.dumps(list(change.diff)),
            ],
        )  # fmt: skip
