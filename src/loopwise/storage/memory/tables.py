"""The in-memory tables: rows by primary key, with secondary indexes.

Rows are tuples of what SQLite would store — text, integers and encoded blobs — never live
objects, so a reader can only ever get a decoded copy and a value that would not survive the
SQLite backend's round trip fails here too. Each table names, per secondary index, the row column
it indexes (``profile_id`` for per-person lookups and erasure, ``message_id`` for dedupe, ...).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

Key = Any  # str, int or a tuple of str: whatever the table keys by
Row = tuple[Any, ...]

# table -> {index name: row column}; the blob, when a row has one, is always its last column
SCHEMA: Mapping[str, Mapping[str, int]] = {
    "events": {"message_id": 0, "profile_id": 1},  # seq -> (message_id, profile_id, ts, rcv, blob)
    "profiles": {},  # id -> (last_seen, blob)
    "identities": {"profile_id": 0},  # identifier -> (profile_id,)
    "consent": {},  # key -> (blob,)
    "audit": {"subject": 0},  # seq -> (subject, at, blob)
    "exposures": {"experiment": 0, "profile_id": 1},  # (exp, pid) -> (exp, pid, at, order, blob)
    "decisions": {"profile_id": 0},  # id -> (profile_id, created_at, order, blob)
    "outcomes": {"decision_id": 0},  # id -> (decision_id, blob)
    "segment_history": {"profile_id": 0},  # id -> (profile_id, segment, change, at)
    "item_observations": {},  # seq -> (blob,)
    "checkpoints": {},  # name -> (position, saved_at, data)
    "items": {},  # id -> (blob,)
    "config": {},  # key -> (blob,)
    "meta": {},  # key -> (value,)
    "revisions": {},  # name -> (value,)
    "sequences": {},  # name -> (last value,): like sqlite_sequence, rolled back with its job
    "users": {},  # email -> (role, password_hash, created_at, disabled, failed_logins, last_failed)
    "sessions": {"email": 0},  # token_hash -> (email, csrf, created_at, expires_at, revoked)
    "workspace_history": {},  # revision -> (at, actor, source, comment, document, diff)
    "journey_states": {
        "journey": 0,
        "profile_id": 1,
    },  # (journey, pid) -> (journey, pid, due, blob)
    # id -> (key, profile_id, status, next_attempt_at, created_at, attempts, done_at, blob)
    "outbox": {"key": 0, "profile_id": 1, "status": 2},
}


class Table:
    def __init__(self, indexes: Mapping[str, int]) -> None:
        self.rows: dict[Key, Row] = {}
        self._columns = dict(indexes)
        self._indexes: dict[str, dict[Any, dict[Key, None]]] = {name: {} for name in indexes}

    def get(self, key: Key) -> Row | None:
        return self.rows.get(key)

    def put(self, key: Key, row: Row) -> Row | None:
        """Insert or replace; returns the row replaced."""
        old = self.rows.get(key)
        if old is not None:
            self._unindex(key, old)
        self.rows[key] = row
        for name, column in self._columns.items():
            self._indexes[name].setdefault(row[column], {})[key] = None
        return old

    def pop(self, key: Key) -> Row | None:
        old = self.rows.pop(key, None)
        if old is not None:
            self._unindex(key, old)
        return old

    def keys_where(self, index: str, value: Any) -> list[Key]:
        return list(self._indexes[index].get(value, ()))

    def has(self, index: str, value: Any) -> bool:
        return value in self._indexes[index]

    def values_of(self, index: str) -> Iterator[Any]:
        """The distinct values the index holds."""
        return iter(self._indexes[index])

    def _unindex(self, key: Key, row: Row) -> None:
        for name, column in self._columns.items():
            keys = self._indexes[name][row[column]]
            del keys[key]
            if not keys:
                del self._indexes[name][row[column]]


class Tables:
    """One full set of tables (the committed copy, or the writer's working copy)."""

    def __init__(self) -> None:
        self.by_name = {name: Table(indexes) for name, indexes in SCHEMA.items()}

    def __getitem__(self, name: str) -> Table:
        return self.by_name[name]
