"""The decision log and its outcomes on SQLite."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

import orjson

from loopwise.clock import isoformat, parse_timestamp
from loopwise.errors import Conflict
from loopwise.storage.records import JsonDict
from loopwise.storage.sqlite.base import Table

#: Decisions per INSERT statement (4 values each: under SQLite's oldest 999-variable limit).
ROWS_PER_INSERT = 200


def decision_columns(decision: JsonDict) -> tuple[str, str, str]:
    try:
        decision_id, profile_id, created_at = (
            decision["decision_id"],
            decision["profile_id"],
            decision["created_at"],
        )
    except KeyError as exc:
        raise ValueError(f"a decision needs decision_id, profile_id and created_at: {exc}") from exc
    if isinstance(created_at, datetime):
        created_at = isoformat(created_at)
    return str(decision_id), str(profile_id), str(created_at)


def conflicting_ids(decision_ids: Sequence[str], logged: set[str]) -> None:
    """A ``Conflict`` when any of a batch's ids is ``logged`` already or repeated in it: checked
    before a row is written, so a job that handles it has written none of the batch."""
    seen: set[str] = set()
    taken = set(logged)
    for decision_id in decision_ids:
        if decision_id in seen:
            taken.add(decision_id)
        seen.add(decision_id)
    if taken:
        shown = ", ".join(repr(i) for i in sorted(taken)[:5])
        raise Conflict(
            f"Decision ids already logged or repeated in the batch: {shown}; give each decision "
            "a new id.",
            field="decision_id",
        )


class SqliteDecisionLog(Table):
    def _with_outcomes(self, rows: list[Any]) -> list[JsonDict]:
        """Decision records with their outcomes (oldest first), one outcomes query per batch."""
        decisions = [(str(row[0]), orjson.loads(row[1])) for row in rows]
        outcomes: dict[str, list[JsonDict]] = {decision_id: [] for decision_id, _ in decisions}
        for decision_id, blob in self._in(
            "SELECT decision_id, record FROM outcomes WHERE decision_id IN ({}) ORDER BY id",
            list(outcomes),
        ):
            outcomes[str(decision_id)].append(orjson.loads(blob))
        for decision_id, record in decisions:
            record["outcomes"] = outcomes[decision_id]
        return [record for _, record in decisions]

    def get(self, decision_id: str) -> JsonDict | None:
        rows = self._all(
            "SELECT decision_id, record FROM decisions WHERE decision_id = ?", (decision_id,)
        )
        return self._with_outcomes(rows)[0] if rows else None

    def exists(self, decision_ids: Iterable[str]) -> set[str]:
        rows = self._in(
            "SELECT decision_id FROM decisions WHERE decision_id IN ({})", list(decision_ids)
        )
        return {str(row[0]) for row in rows}

    def last_for(self, profile_id: str, since: datetime) -> tuple[str, datetime] | None:
        row = self._row(
            "SELECT decision_id, created_at FROM decisions WHERE profile_id = ? "
            "AND created_at >= ? ORDER BY created_at DESC, rowid DESC LIMIT 1",
            (profile_id, isoformat(since)),
        )
        created = parse_timestamp(row[1]) if row else None
        return (str(row[0]), created) if row and created else None

    def for_profile(self, profile_id: str) -> list[JsonDict]:
        rows = self._all(
            "SELECT decision_id, record FROM decisions WHERE profile_id = ? "
            "ORDER BY created_at, rowid",
            (profile_id,),
        )
        return self._with_outcomes(rows)

    def iter(self, since: datetime | None = None) -> Iterator[JsonDict]:
        cutoff = "" if since is None else isoformat(since)
        batch: list[Any] = []
        for row in self._stream(
            "SELECT decision_id, record FROM decisions WHERE created_at >= ? "
            "ORDER BY created_at, rowid",
            (cutoff,),
        ):
            batch.append(row)
            if len(batch) >= 500:
                yield from self._with_outcomes(batch)
                batch = []
        yield from self._with_outcomes(batch)

    def count(self) -> int:
        return int(self._one("SELECT count(*) FROM decisions"))

    def insert(self, decision: JsonDict) -> None:
        decision_id, profile_id, created_at = decision_columns(decision)
        try:
            self._exec(
                "INSERT INTO decisions (decision_id, profile_id, created_at, record) "
                "VALUES (?, ?, ?, ?)",
                (decision_id, profile_id, created_at, orjson.dumps(decision)),
            )
        except sqlite3.IntegrityError as exc:
            raise Conflict(
                f"Decision {decision_id!r} is already logged; give each decision a new id.",
                field="decision_id",
            ) from exc

    def insert_many(self, decisions: Sequence[JsonDict]) -> None:
        """Many rows per statement: each statement releases the GIL once (while SQLite works)
        and must win it back from the threads deciding meanwhile, which can take a whole
        switch interval (5 ms) when they are busy: a statement per row would wait so per row."""
        rows = [(*decision_columns(d), orjson.dumps(d)) for d in decisions]
        ids = [row[0] for row in rows]
        conflicting_ids(ids, self.exists(ids))
        for start in range(0, len(rows), ROWS_PER_INSERT):
            part = rows[start : start + ROWS_PER_INSERT]
            values = ",".join(["(?, ?, ?, ?)"] * len(part))
            self._exec(
                "INSERT INTO decisions (decision_id, profile_id, created_at, record) "
                f"VALUES {values}",
                [value for row in part for value in row],
            )

    def add_outcome(self, decision_id: str, outcome: JsonDict) -> None:
        self._exec(
            "INSERT INTO outcomes (decision_id, record) VALUES (?, ?)",
            (decision_id, orjson.dumps(outcome)),
        )

    def delete_profile(self, profile_id: str) -> tuple[int, int]:
        outcomes = self._exec(
            "DELETE FROM outcomes WHERE decision_id IN "
            "(SELECT decision_id FROM decisions WHERE profile_id = ?)",
            (profile_id,),
        )
        decisions = self._exec("DELETE FROM decisions WHERE profile_id = ?", (profile_id,))
        return decisions, outcomes

    def purge_before(self, cutoff: datetime) -> tuple[int, int]:
        stamp = isoformat(cutoff)
        outcomes = self._exec(
            "DELETE FROM outcomes WHERE decision_id IN "
            "(SELECT decision_id FROM decisions WHERE created_at < ?)",
            (stamp,),
        )
        decisions = self._exec("DELETE FROM decisions WHERE created_at < ?", (stamp,))
        return decisions, outcomes
