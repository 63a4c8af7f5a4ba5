"""The decision log and its outcomes in memory."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

import orjson

from loopwise.clock import isoformat, parse_timestamp
from loopwise.errors import Conflict
from loopwise.storage.decoding import with_outcomes
from loopwise.storage.memory.base import Store
from loopwise.storage.memory.tables import Tables
from loopwise.storage.records import JsonDict
from loopwise.storage.sqlite.decisions import conflicting_ids, decision_columns

Copied = tuple[list[tuple[str, bytes]], list[tuple[str, bytes]]]


def _copy(tables: Tables, decision_ids: Iterable[Any]) -> Copied:
    """The decisions' ``(id, blob)`` and their outcomes' (oldest first), copied out of the
    tables, to decode once the lock is released."""
    outcomes = tables["outcomes"]
    decisions = [(did, tables["decisions"].rows[did][-1]) for did in decision_ids]
    attached = [
        (did, outcomes.rows[oid][-1])
        for did, _ in decisions
        for oid in sorted(outcomes.keys_where("decision_id", did))
    ]
    return decisions, attached


def _oldest_first(tables: Tables, decision_ids: Iterable[Any]) -> list[Any]:
    rows = tables["decisions"].rows
    return sorted(decision_ids, key=lambda did: (rows[did][1], rows[did][2]))  # time, insertion


class MemoryDecisionLog(Store):
    def get(self, decision_id: str) -> JsonDict | None:
        with self._db.read() as tables:
            if tables["decisions"].get(decision_id) is None:
                return None
            copied = _copy(tables, [decision_id])
        return with_outcomes(*copied)[0]

    def exists(self, decision_ids: Iterable[str]) -> set[str]:
        with self._db.read() as tables:
            return {d for d in decision_ids if tables["decisions"].get(d) is not None}

    def last_for(self, profile_id: str, since: datetime) -> tuple[str, datetime] | None:
        stamp = isoformat(since)
        with self._db.read() as tables:
            decisions = tables["decisions"]
            recent = [
                (decisions.rows[did][1], decisions.rows[did][2], did)
                for did in decisions.keys_where("profile_id", profile_id)
                if decisions.rows[did][1] >= stamp
            ]
        if not recent:
            return None
        created_at, _, decision_id = max(recent)
        created = parse_timestamp(created_at)
        return (str(decision_id), created) if created else None

    def for_profile(self, profile_id: str) -> list[JsonDict]:
        with self._db.read() as tables:
            mine = tables["decisions"].keys_where("profile_id", profile_id)
            copied = _copy(tables, _oldest_first(tables, mine))
        return with_outcomes(*copied)

    def iter(self, since: datetime | None = None) -> Iterator[JsonDict]:
        cutoff = "" if since is None else isoformat(since)
        with self._db.read() as tables:
            rows = tables["decisions"].rows
            recent = [did for did, row in rows.items() if row[1] >= cutoff]
            copied = _copy(tables, _oldest_first(tables, recent))
        return iter(with_outcomes(*copied))

    def count(self) -> int:
        with self._db.read() as tables:
            return len(tables["decisions"].rows)

    def insert(self, decision: JsonDict) -> None:
        decision_id, profile_id, created_at = decision_columns(decision)
        blob = orjson.dumps(decision)
        if self.exists([decision_id]):
            raise Conflict(
                f"Decision {decision_id!r} is already logged; give each decision a new id.",
                field="decision_id",
            )
        order = self._db.next_id("decisions")
        self._db.put("decisions", decision_id, (profile_id, created_at, order, blob))

    def insert_many(self, decisions: Sequence[JsonDict]) -> None:
        columns = [decision_columns(decision) for decision in decisions]
        ids = [c[0] for c in columns]
        conflicting_ids(ids, self.exists(ids))
        orders = self._db.next_ids("decisions", len(columns))
        for (decision_id, profile_id, created_at), order, decision in zip(
            columns, orders, decisions, strict=True
        ):
            blob = orjson.dumps(decision)
            self._db.put("decisions", decision_id, (profile_id, created_at, order, blob))

    def add_outcome(self, decision_id: str, outcome: JsonDict) -> None:
        blob = orjson.dumps(outcome)
        self._db.put("outcomes", self._db.next_id("outcomes"), (decision_id, blob))

    def _delete(self, decision_ids: list[Any]) -> tuple[int, int]:
        with self._db.read() as tables:
            outcomes = [
                o for d in decision_ids for o in tables["outcomes"].keys_where("decision_id", d)
            ]
        for outcome_id in outcomes:
            self._db.pop("outcomes", outcome_id)
        for decision_id in decision_ids:
            self._db.pop("decisions", decision_id)
        return len(decision_ids), len(outcomes)

    def delete_profile(self, profile_id: str) -> tuple[int, int]:
        with self._db.read() as tables:
            mine = tables["decisions"].keys_where("profile_id", profile_id)
        return self._delete(mine)

    def purge_before(self, cutoff: datetime) -> tuple[int, int]:
        stamp = isoformat(cutoff)
        with self._db.read() as tables:
            old = [did for did, row in tables["decisions"].rows.items() if row[1] < stamp]
        return self._delete(old)
