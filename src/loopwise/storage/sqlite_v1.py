"""The default, embedded backend: one SQLite file in WAL mode.

Writes follow Datasette's pattern: one writer thread owns the only write connection and runs queued
jobs many-per-transaction (:mod:`loopwise.storage.writer`). ``synchronous=FULL`` makes each commit
reach the disk before futures resolve, so "2xx means on disk" holds; group commit pays one fsync for
many requests. Reads use per-thread read-only connections, which WAL lets run beside the writer.
Records are stored as orjson BLOBs; times as ``loopwise.clock.isoformat`` strings, which sort.
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import orjson

from loopwise.clock import isoformat
from loopwise.errors import Conflict, StorageUnavailable
from loopwise.events.schema import Event
from loopwise.storage.writer import GroupCommitWriter

T = TypeVar("T")

SCHEMA_VERSION = "1"
BUSY_TIMEOUT_MS = 5000
FETCH_BATCH = 500
_MAX_PARAMS = 500  # ids per IN (...) query, far below SQLite's variable limit

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT UNIQUE NOT NULL,
    profile_id TEXT NOT NULL,
    type TEXT,
    ts TEXT,
    received_at TEXT,
    record BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS events_profile_id ON events (profile_id);
CREATE TABLE IF NOT EXISTS profiles (id TEXT PRIMARY KEY, record BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS identities (identifier TEXT PRIMARY KEY, profile_id TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS identities_profile_id ON identities (profile_id);
CREATE TABLE IF NOT EXISTS segment_history (
    id INTEGER PRIMARY KEY,
    profile_id TEXT NOT NULL,
    segment TEXT NOT NULL,
    change TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS segment_history_profile_id ON segment_history (profile_id);
CREATE TABLE IF NOT EXISTS items (id TEXT PRIMARY KEY, record BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS decisions (
    decision_id TEXT PRIMARY KEY,
    profile_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    record BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_profile_created ON decisions (profile_id, created_at);
CREATE INDEX IF NOT EXISTS decisions_created ON decisions (created_at);
CREATE TABLE IF NOT EXISTS outcomes (
    id INTEGER PRIMARY KEY,
    decision_id TEXT NOT NULL,
    record BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS outcomes_decision_id ON outcomes (decision_id);
CREATE TABLE IF NOT EXISTS config (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS consent (key TEXT PRIMARY KEY, record BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    subject TEXT NOT NULL,
    at TEXT NOT NULL,
    record BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_subject ON audit (subject);
CREATE TRIGGER IF NOT EXISTS audit_append_only BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TABLE IF NOT EXISTS exposures (
    experiment TEXT NOT NULL,
    profile_id TEXT NOT NULL,
    exposed_at TEXT NOT NULL,
    record BLOB NOT NULL,
    PRIMARY KEY (experiment, profile_id)
);
CREATE INDEX IF NOT EXISTS exposures_profile_id ON exposures (profile_id);
"""


def _placeholders(count: int) -> str:
    return ",".join("?" * count)


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), _MAX_PARAMS):
        yield values[start : start + _MAX_PARAMS]


def _decision_columns(decision: dict[str, Any]) -> tuple[str, str, str]:
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


class SqliteTransaction:
    """``WriteTransaction`` over the writer connection; valid only inside a job."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def insert_events(self, events: Sequence[Event], profile_ids: Sequence[str]) -> list[bool]:
        if len(events) != len(profile_ids):
            raise ValueError("insert_events needs exactly one profile id per event")
        seen = self._existing_message_ids([event.message_id for event in events])
        new: list[bool] = []
        rows: list[tuple[str, str, str, str, str, bytes]] = []
        for event, profile_id in zip(events, profile_ids, strict=True):
            if event.message_id in seen:
                new.append(False)
                continue
            seen.add(event.message_id)
            new.append(True)
            rows.append(
                (
                    event.message_id,
                    profile_id,
                    event.type,
                    isoformat(event.timestamp),
                    isoformat(event.received_at),
                    orjson.dumps(event.to_record()),
                )
            )
        self._conn.executemany(
            "INSERT OR IGNORE INTO events (message_id, profile_id, type, ts, received_at, record) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
        return new

    def _existing_message_ids(self, message_ids: list[str]) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(list(dict.fromkeys(message_ids))):
            cursor = self._conn.execute(
                f"SELECT message_id FROM events WHERE message_id IN ({_placeholders(len(chunk))})",
                chunk,
            )
            found.update(row[0] for row in cursor)
        return found

    def upsert_profiles(self, profiles: Sequence[dict[str, Any]]) -> None:
        self._conn.executemany(
            "INSERT INTO profiles (id, record) VALUES (?, ?) "
            "ON CONFLICT (id) DO UPDATE SET record = excluded.record",
            [(str(profile["id"]), orjson.dumps(profile)) for profile in profiles],
        )

    def delete_profiles(self, profile_ids: Sequence[str]) -> None:
        self._conn.executemany("DELETE FROM profiles WHERE id = ?", [(pid,) for pid in profile_ids])

    def link_identity(self, identifier: str, profile_id: str) -> None:
        self._conn.execute(
            "INSERT INTO identities (identifier, profile_id) VALUES (?, ?) "
            "ON CONFLICT (identifier) DO UPDATE SET profile_id = excluded.profile_id",
            (identifier, profile_id),
        )

    def reassign_events(self, from_profile_id: str, to_profile_id: str) -> None:
        self._conn.execute(
            "UPDATE events SET profile_id = ? WHERE profile_id = ?",
            (to_profile_id, from_profile_id),
        )

    def record_segment_changes(
        self, profile_id: str, entered: Sequence[str], left: Sequence[str], at: datetime
    ) -> None:
        stamp = isoformat(at)
        rows = [(profile_id, key, "entered", stamp) for key in entered]
        rows += [(profile_id, key, "left", stamp) for key in left]
        self._conn.executemany(
            "INSERT INTO segment_history (profile_id, segment, change, at) VALUES (?, ?, ?, ?)",
            rows,
        )

    def upsert_items(self, items: Sequence[dict[str, Any]]) -> None:
        self._conn.executemany(
            "INSERT INTO items (id, record) VALUES (?, ?) "
            "ON CONFLICT (id) DO UPDATE SET record = excluded.record",
            [(str(item["id"]), orjson.dumps(item)) for item in items],
        )

    def delete_items(self, item_ids: Sequence[str]) -> int:
        cursor = self._conn.executemany(
            "DELETE FROM items WHERE id = ?", [(item_id,) for item_id in item_ids]
        )
        return cursor.rowcount

    def insert_decision(self, decision: dict[str, Any]) -> None:
        decision_id, profile_id, created_at = _decision_columns(decision)
        try:
            self._conn.execute(
                "INSERT INTO decisions (decision_id, profile_id, created_at, record) "
                "VALUES (?, ?, ?, ?)",
                (decision_id, profile_id, created_at, orjson.dumps(decision)),
            )
        except sqlite3.IntegrityError as exc:
            raise Conflict(
                f"Decision {decision_id!r} is already logged; give each decision a new id.",
                field="decision_id",
            ) from exc

    def record_outcome(self, decision_id: str, outcome: dict[str, Any]) -> None:
        self._conn.execute(
            "INSERT INTO outcomes (decision_id, record) VALUES (?, ?)",
            (decision_id, orjson.dumps(outcome)),
        )

    def put_config(self, key: str, value: dict[str, Any]) -> None:
        self._conn.execute(
            "INSERT INTO config (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, orjson.dumps(value)),
        )

    def put_meta(self, key: str, value: str) -> None:
        self._conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def delete_profile_data(self, profile_id: str) -> dict[str, int]:
        """Erase everything stored about one profile; returns rows removed per table."""
        deletes = {
            "outcomes": "DELETE FROM outcomes WHERE decision_id IN "
            "(SELECT decision_id FROM decisions WHERE profile_id = ?)",
            "decisions": "DELETE FROM decisions WHERE profile_id = ?",
            "events": "DELETE FROM events WHERE profile_id = ?",
            "identities": "DELETE FROM identities WHERE profile_id = ?",
            "segment_history": "DELETE FROM segment_history WHERE profile_id = ?",
            "exposures": "DELETE FROM exposures WHERE profile_id = ?",
            "profiles": "DELETE FROM profiles WHERE id = ?",
        }
        return {
            table: self._conn.execute(sql, (profile_id,)).rowcount for table, sql in deletes.items()
        }

    # -- privacy: consent, audit, retention ---------------------------------------------------
    def put_consent(self, key: str, record: dict[str, Any]) -> None:
        self._conn.execute(
            "INSERT INTO consent (key, record) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET record = excluded.record",
            (key, orjson.dumps(record)),
        )

    def delete_consent(self, key: str) -> None:
        self._conn.execute("DELETE FROM consent WHERE key = ?", (key,))

    def audit_head(self) -> dict[str, Any] | None:
        row = self._conn.execute("SELECT record FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        return None if row is None else orjson.loads(row[0])

    def append_audit(self, record: dict[str, Any]) -> None:
        self._conn.execute(
            "INSERT INTO audit (seq, subject, at, record) VALUES (?, ?, ?, ?)",
            (int(record["seq"]), str(record["subject"]), str(record["at"]), orjson.dumps(record)),
        )

    def read_meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def purge_before(self, cutoff: datetime) -> tuple[dict[str, int], list[str]]:
        """Delete behavioural data older than ``cutoff``: events (by event time), decisions and
        their outcomes, segment history, and whole profiles last seen before it (with their
        identity links). Consent and the audit log are kept. Returns counts per table and the
        ids of the profiles removed."""
        stamp = isoformat(cutoff)
        stale = [
            str(row[0])
            for row in self._conn.execute(
                "SELECT id FROM profiles "
                "WHERE json_extract(CAST(record AS TEXT), '$.last_seen') < ?",
                (stamp,),
            )
        ]
        counts = {"events": 0, "decisions": 0, "outcomes": 0, "segment_history": 0}
        counts |= {"profiles": 0, "identities": 0, "exposures": 0}
        for pid in stale:
            for table, removed in self.delete_profile_data(pid).items():
                counts[table] = counts.get(table, 0) + removed
        deletes = {
            "outcomes": "DELETE FROM outcomes WHERE decision_id IN "
            "(SELECT decision_id FROM decisions WHERE created_at < ?)",
            "decisions": "DELETE FROM decisions WHERE created_at < ?",
            "events": "DELETE FROM events WHERE ts < ?",
            "segment_history": "DELETE FROM segment_history WHERE at < ?",
            "exposures": "DELETE FROM exposures WHERE exposed_at < ?",
        }
        for table, sql in deletes.items():
            counts[table] += self._conn.execute(sql, (stamp,)).rowcount
        return counts, stale

    def purge_audit_before(self, cutoff: datetime, anchor_key: str) -> int:
        """Drop audit records older than ``cutoff`` (never the newest) and store the first kept
        record's ``prev_hash`` under meta ``anchor_key`` so the chain still verifies."""
        stamp = isoformat(cutoff)
        removed = self._conn.execute(
            "DELETE FROM audit WHERE at < ? AND seq < (SELECT max(seq) FROM audit)", (stamp,)
        ).rowcount
        if removed:
            row = self._conn.execute("SELECT record FROM audit ORDER BY seq LIMIT 1").fetchone()
            self.put_meta(anchor_key, str(orjson.loads(row[0])["prev_hash"]))
        return removed

    def record_exposure(self, exposure: dict[str, Any]) -> bool:
        cursor = self._conn.execute(
            "INSERT OR IGNORE INTO exposures (experiment, profile_id, exposed_at, record) "
            "VALUES (?, ?, ?, ?)",
            (
                str(exposure["experiment"]),
                str(exposure["profile_id"]),
                str(exposure["exposed_at"]),
                orjson.dumps(exposure),
            ),
        )
        return cursor.rowcount == 1

    def reassign_exposures(self, from_profile_id: str, to_profile_id: str) -> None:
        rows = self._conn.execute(
            "SELECT experiment, exposed_at, record FROM exposures WHERE profile_id = ?",
            (from_profile_id,),
        ).fetchall()
        for experiment, exposed_at, record in rows:
            self._conn.execute(
                "DELETE FROM exposures WHERE experiment = ? AND profile_id = ?",
                (experiment, from_profile_id),
            )
            moved = orjson.dumps({**orjson.loads(record), "profile_id": to_profile_id})
            # the earlier of the two exposures is the user's first one
            self._conn.execute(
                "INSERT INTO exposures (experiment, profile_id, exposed_at, record) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (experiment, profile_id) DO UPDATE SET "
                "exposed_at = excluded.exposed_at, record = excluded.record "
                "WHERE excluded.exposed_at < exposures.exposed_at",
                (experiment, to_profile_id, exposed_at, moved),
            )

    def pragma(self, name: str) -> Any:
        """The writer connection's setting ``name`` (diagnostics)."""
        if not name.isidentifier():
            raise ValueError(f"not a pragma name: {name!r}")
        row = self._conn.execute(f"PRAGMA {name}").fetchone()
        return row[0] if row else None


class _SqliteSession:
    """The writer's connection, opened on the writer thread."""

    def __init__(self, path: Path) -> None:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=True)
        try:
            _configure_writer(conn, path)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        self.transaction = SqliteTransaction(conn)

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    def begin(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def savepoint(self) -> None:
        self._conn.execute("SAVEPOINT job")

    def release_savepoint(self) -> None:
        self._conn.execute("RELEASE job")

    def rollback_savepoint(self) -> None:
        self._conn.execute("ROLLBACK TO job")
        self._conn.execute("RELEASE job")

    def commit(self) -> None:
        self._conn.execute("COMMIT")

    def rollback(self) -> None:
        self._conn.execute("ROLLBACK")

    def close(self) -> None:
        self._conn.close()


def _configure_writer(conn: sqlite3.Connection, path: Path) -> None:
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise StorageUnavailable(
            f"SQLite could not switch {path} to WAL mode (got {mode!r}); put the database on a "
            "local file system that supports shared memory."
        )
    conn.execute("PRAGMA synchronous = FULL")  # NORMAL can lose the last commits on power loss
    conn.execute("PRAGMA foreign_keys = OFF")
    # deleted rows are overwritten with zeros, so erased personal data leaves no free-page copy
    conn.execute("PRAGMA secure_delete = ON")
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.executescript(f"BEGIN IMMEDIATE; {SCHEMA} COMMIT;")
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if row is None:
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,)
        )
    elif row[0] != SCHEMA_VERSION:
        raise StorageUnavailable(
            f"{path} has storage schema version {row[0]}, this Loopwise reads version "
            f"{SCHEMA_VERSION}; upgrade Loopwise or point it at another database file."
        )


class _Readers:
    """One read-only connection per thread, closed with the storage or when the thread is gone."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: list[tuple[weakref.ref[threading.Thread], sqlite3.Connection]] = []
        self._closed = False

    def get(self) -> sqlite3.Connection:
        if self._closed:
            raise _closed_error()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        with self._lock:
            if self._closed:
                raise _closed_error()
            self._close_orphans()
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA query_only = ON")
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._open.append((weakref.ref(threading.current_thread()), conn))
        self._local.conn = conn
        return conn

    def _close_orphans(self) -> None:
        keep = []
        for thread_ref, conn in self._open:
            thread = thread_ref()
            if thread is None or not thread.is_alive():
                conn.close()
            else:
                keep.append((thread_ref, conn))
        self._open = keep

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for _, conn in self._open:
                conn.close()
            self._open = []


def _closed_error() -> StorageUnavailable:
    return StorageUnavailable(
        "Storage is closed. Restart the server or open the storage again before using it."
    )


def _read_error(exc: sqlite3.Error) -> StorageUnavailable:
    error = StorageUnavailable(
        f"Reading the database failed ({exc}); check that the database file exists and is "
        "readable, then retry."
    )
    error.__cause__ = exc
    return error


class SqliteStorage:
    """``Storage`` on one SQLite file (created with its schema when missing)."""

    def __init__(self, path: Path, *, max_batch: int = 1000) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageUnavailable(
                f"Cannot create the directory for {self.path} ({exc}); choose a writable path."
            ) from exc
        self._writer: GroupCommitWriter[SqliteTransaction] = GroupCommitWriter(
            lambda: _SqliteSession(self.path), max_batch=max_batch, name="loopwise-sqlite-writer"
        )
        self._readers = _Readers(self.path)

    @property
    def commits(self) -> int:
        """Transactions committed so far (fewer than jobs when group commit batches them)."""
        return self._writer.commits

    # -- writes --------------------------------------------------------------------------------
    def submit(self, job: Callable[[SqliteTransaction], T]) -> Future[T]:
        return self._writer.submit(job)

    def write(self, job: Callable[[SqliteTransaction], T]) -> T:
        return self._writer.write(job)

    def writer_pragmas(self) -> dict[str, Any]:
        """The durability settings the writer runs with, as SQLite reports them."""
        names = ("journal_mode", "synchronous", "foreign_keys", "busy_timeout", "secure_delete")
        return self.write(lambda tx: {name: tx.pragma(name) for name in names})

    # -- reads ---------------------------------------------------------------------------------
    def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        try:
            row = self._readers.get().execute(sql, params).fetchone()
        except sqlite3.Error as exc:
            raise _read_error(exc) from exc
        return None if row is None else row[0]

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            return self._readers.get().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise _read_error(exc) from exc

    def _stream(self, sql: str, params: Sequence[Any] = ()) -> Iterator[list[Any]]:
        """Rows in fetchmany batches, so large tables never sit in memory whole."""
        conn = self._readers.get()
        try:
            cursor = conn.execute(sql, params)
            try:
                while batch := cursor.fetchmany(FETCH_BATCH):
                    yield batch
            finally:
                cursor.close()
        except sqlite3.Error as exc:
            raise _read_error(exc) from exc

    def healthy(self) -> bool:
        if not self._writer.alive:
            return False
        try:
            return self._one("SELECT 1") == 1
        except StorageUnavailable:
            return False

    def get_profile(self, profile_id: str) -> dict[str, Any] | None:
        blob = self._one("SELECT record FROM profiles WHERE id = ?", (profile_id,))
        return None if blob is None else orjson.loads(blob)

    def iter_profiles(self) -> Iterator[dict[str, Any]]:
        for batch in self._stream("SELECT record FROM profiles ORDER BY id"):
            yield from (orjson.loads(row[0]) for row in batch)

    def count_profiles(self) -> int:
        return int(self._one("SELECT count(*) FROM profiles"))

    def identities(self) -> dict[str, str]:
        return dict(self._all("SELECT identifier, profile_id FROM identities"))

    def iter_events(self, profile_id: str | None = None) -> Iterator[Event]:
        if profile_id is None:
            rows = self._stream("SELECT record FROM events ORDER BY seq")
        else:
            rows = self._stream(
                "SELECT record FROM events WHERE profile_id = ? ORDER BY seq", (profile_id,)
            )
        for batch in rows:
            yield from (Event.from_record(orjson.loads(row[0])) for row in batch)

    def count_events(self) -> int:
        return int(self._one("SELECT count(*) FROM events"))

    def get_items(self) -> list[dict[str, Any]]:
        return [orjson.loads(row[0]) for row in self._all("SELECT record FROM items ORDER BY id")]

    def _with_outcomes(self, rows: list[Any]) -> list[dict[str, Any]]:
        """Decision records with their outcomes (oldest first), one outcomes query per batch."""
        decisions = [(row[0], orjson.loads(row[1])) for row in rows]
        outcomes: dict[str, list[dict[str, Any]]] = {
            decision_id: [] for decision_id, _ in decisions
        }
        for chunk in _chunks(list(outcomes)):
            for decision_id, blob in self._all(
                f"SELECT decision_id, record FROM outcomes "
                f"WHERE decision_id IN ({_placeholders(len(chunk))}) ORDER BY id",
                chunk,
            ):
                outcomes[decision_id].append(orjson.loads(blob))
        for decision_id, record in decisions:
            record["outcomes"] = outcomes[decision_id]
        return [record for _, record in decisions]

    def get_decision(self, decision_id: str) -> dict[str, Any] | None:
        rows = self._all(
            "SELECT decision_id, record FROM decisions WHERE decision_id = ?", (decision_id,)
        )
        return self._with_outcomes(rows)[0] if rows else None

    def last_decision(self, profile_id: str, since: datetime) -> dict[str, Any] | None:
        rows = self._all(
            "SELECT decision_id, record FROM decisions WHERE profile_id = ? AND created_at >= ? "
            "ORDER BY created_at DESC, rowid DESC LIMIT 1",
            (profile_id, isoformat(since)),
        )
        return self._with_outcomes(rows)[0] if rows else None

    def iter_decisions(self, since: datetime | None = None) -> Iterator[dict[str, Any]]:
        cutoff = "" if since is None else isoformat(since)
        for batch in self._stream(
            "SELECT decision_id, record FROM decisions WHERE created_at >= ? "
            "ORDER BY created_at, rowid",
            (cutoff,),
        ):
            yield from self._with_outcomes(batch)

    def segment_history(self, profile_id: str) -> list[dict[str, Any]]:
        rows = self._all(
            "SELECT segment, change, at FROM segment_history WHERE profile_id = ? ORDER BY id",
            (profile_id,),
        )
        return [{"segment": segment, "change": change, "at": at} for segment, change, at in rows]

    def decisions_for(self, profile_id: str) -> list[dict[str, Any]]:
        rows = self._all(
            "SELECT decision_id, record FROM decisions WHERE profile_id = ? "
            "ORDER BY created_at, rowid",
            (profile_id,),
        )
        return self._with_outcomes(rows)

    def checkpoint(self) -> None:
        """``wal_checkpoint(TRUNCATE)`` on a short-lived connection: copies the WAL into the
        database file and truncates the WAL to zero bytes (readers in a transaction may keep
        some frames until their next checkpoint; idle readers do not)."""
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.Error as exc:
            raise _read_error(exc) from exc
        finally:
            conn.close()

    def get_config(self, key: str) -> dict[str, Any] | None:
        blob = self._one("SELECT value FROM config WHERE key = ?", (key,))
        return None if blob is None else orjson.loads(blob)

    def iter_exposures(self, experiment: str | None = None) -> Iterator[dict[str, Any]]:
        if experiment is None:
            rows = self._stream("SELECT record FROM exposures ORDER BY exposed_at, rowid")
        else:
            rows = self._stream(
                "SELECT record FROM exposures WHERE experiment = ? ORDER BY exposed_at, rowid",
                (experiment,),
            )
        for batch in rows:
            yield from (orjson.loads(row[0]) for row in batch)

    def get_meta(self, key: str) -> str | None:
        value = self._one("SELECT value FROM meta WHERE key = ?", (key,))
        return None if value is None else str(value)

    def iter_consent(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for batch in self._stream("SELECT key, record FROM consent ORDER BY key"):
            yield from ((str(key), orjson.loads(record)) for key, record in batch)

    def iter_audit(self, subjects: Sequence[str] | None = None) -> Iterator[dict[str, Any]]:
        if subjects is None:
            for batch in self._stream("SELECT record FROM audit ORDER BY seq"):
                yield from (orjson.loads(row[0]) for row in batch)
            return
        rows: list[tuple[int, bytes]] = []
        for chunk in _chunks(list(dict.fromkeys(subjects))):
            rows += self._all(
                f"SELECT seq, record FROM audit WHERE subject IN ({_placeholders(len(chunk))})",
                chunk,
            )
        yield from (orjson.loads(record) for _, record in sorted(rows))

    def close(self) -> None:
        """Run the queued writes, stop the writer and close every connection."""
        self._writer.close()
        self._readers.close()
