"""The decision log and its outcomes on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

import orjson

from loopwise.errors import Conflict
from loopwise.storage.decoding import with_outcomes
from loopwise.storage.postgres.base import BEGINNING, Table, ms, required_time, utc
from loopwise.storage.records import JsonDict
from loopwise.storage.sqlite.decisions import conflicting_ids, decision_columns

_PAGE = 500
_ORDER = "ORDER BY created_at, id LIMIT %s"


def _order(row: Any) -> list[Any]:
    return [row[2], row[3]]


class PostgresDecisionLog(Table):
    def _with_outcomes(self, rows: list[Any]) -> list[JsonDict]:
        """Decision records with their outcomes (oldest first), one outcomes query per batch."""
        decisions = [(row[0], row[1]) for row in rows]
        outcomes = (
            self._all(
                "SELECT decision_id, record FROM outcomes WHERE decision_id = ANY(%b) ORDER BY id",
                [[decision_id for decision_id, _ in decisions]],
            )
            if decisions
            else []
        )
        return with_outcomes(decisions, outcomes)

    def get(self, decision_id: str) -> JsonDict | None:
        rows = self._all(
            "SELECT decision_id, record FROM decisions WHERE decision_id = %s", [decision_id]
        )
        return self._with_outcomes(rows)[0] if rows else None

    def exists(self, decision_ids: Iterable[str]) -> set[str]:
        rows = self._all(
            "SELECT decision_id FROM decisions WHERE decision_id = ANY(%b)", [list(decision_ids)]
        )
        return {row[0] for row in rows}

    def last_for(self, profile_id: str, since: datetime) -> tuple[str, datetime] | None:
        row = self._row(
            "SELECT decision_id, created_at FROM decisions WHERE profile_id = %s "
            "AND created_at >= %s ORDER BY created_at DESC, id DESC LIMIT 1",
            [profile_id, ms(since)],
        )
        return None if row is None else (row[0], utc(row[1]))

    def for_profile(self, profile_id: str) -> list[JsonDict]:
        rows = self._all(
            "SELECT decision_id, record FROM decisions WHERE profile_id = %s "
            "ORDER BY created_at, id",
            [profile_id],
        )
        return self._with_outcomes(rows)

    def iter(self, since: datetime | None = None) -> Iterator[JsonDict]:
        rows = self._paged(
            "SELECT decision_id, record, created_at, id FROM decisions "
            f"WHERE (created_at, id) > (%s, %s) {_ORDER}",
            [],
            _order,
            start=[BEGINNING if since is None else ms(since), 0],  # ids start at 1
            page=_PAGE,
        )
        batch: list[Any] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= _PAGE:
                yield from self._with_outcomes(batch)
                batch = []
        yield from self._with_outcomes(batch)

    def count(self) -> int:
        return int(self._one("SELECT count(*) FROM decisions"))

    def insert(self, decision: JsonDict) -> None:
        decision_id, profile_id, created_at = decision_columns(decision)
        stored = self._exec(
            "INSERT INTO decisions (decision_id, profile_id, created_at, record) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT (decision_id) DO NOTHING",
            [
                decision_id,
                profile_id,
                required_time(created_at, "a decision's created_at"),
                orjson.dumps(decision),
            ],
        )
        if not stored:  # ON CONFLICT, not an error: the transaction stays usable for the job
            raise Conflict(
                f"Decision {decision_id!r} is already logged; give each decision a new id.",
                field="decision_id",
            )

    def insert_many(self, decisions: Sequence[JsonDict]) -> None:
        """One statement for them all (a round trip per decision would be most of the cost)."""
        if not decisions:
            return
        columns = [decision_columns(decision) for decision in decisions]
        ids = [c[0] for c in columns]
        conflicting_ids(ids, self.exists(ids))
        stored = self._exec(
            "INSERT INTO decisions (decision_id, profile_id, created_at, record) "
            "SELECT * FROM unnest(%b::text[], %b::text[], %b::timestamptz[], %b::bytea[]) "
            "ON CONFLICT (decision_id) DO NOTHING",
            [
                ids,
                [c[1] for c in columns],
                [required_time(c[2], "a decision's created_at") for c in columns],
                [orjson.dumps(decision) for decision in decisions],
            ],
        )
        if stored < len(decisions):  # ids logged meanwhile by another transaction
            raise Conflict(
                f"{len(decisions) - stored} of {len(decisions)} decision ids were logged by "
                "another transaction meanwhile; give each decision a new id.",
                field="decision_id",
            )

    def add_outcome(self, decision_id: str, outcome: JsonDict) -> None:
        self._exec(
            "INSERT INTO outcomes (decision_id, record) VALUES (%s, %s)",
            [decision_id, orjson.dumps(outcome)],
        )

    def _delete(self, where: str, param: Any) -> tuple[int, int]:
        decisions, outcomes = self._returning(
            f"WITH d AS (DELETE FROM decisions WHERE {where} RETURNING decision_id), "
            "o AS (DELETE FROM outcomes WHERE decision_id IN (SELECT decision_id FROM d) "
            "RETURNING 1) SELECT (SELECT count(*) FROM d), (SELECT count(*) FROM o)",
            [param],
        )[0]
        return int(decisions), int(outcomes)

    def delete_profile(self, profile_id: str) -> tuple[int, int]:
        return self._delete("profile_id = %s", profile_id)

    def purge_before(self, cutoff: datetime) -> tuple[int, int]:
        return self._delete("created_at < %s", ms(cutoff))
