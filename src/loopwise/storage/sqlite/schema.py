"""The SQLite schema, its version, and the writer connection's settings.

``synchronous=FULL`` makes each commit reach the disk before futures resolve ("2xx means on disk");
``secure_delete`` overwrites deleted rows so erased data leaves no free-page copy. Version 1 files
(round 1) are migrated in place on first open: profiles gain a ``last_seen`` column, and item
statistics are rebuilt from the event log once (there was no checkpoint).
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from loopwise.errors import StorageUnavailable

log = logging.getLogger(__name__)

SCHEMA_VERSION = "3"  # 3: journey states and the outbox
BUSY_TIMEOUT_MS = 5000
REBUILD_ITEM_STATS_META = "item_stats_rebuild"  # set by the v1 migration

TABLES = (
    "meta",
    "events",
    "profiles",
    "identities",
    "segment_history",
    "items",
    "decisions",
    "outcomes",
    "config",
    "consent",
    "audit",
    "exposures",
    "item_observations",
    "checkpoints",
    "revisions",
    "users",
    "sessions",
    "workspace_history",
    "journey_states",
    "outbox",
)
# tables added after version 2 first shipped: a database without them is upgraded silently
LATER_TABLES = frozenset(
    {"item_observations", "checkpoints", "revisions", "users", "sessions", "workspace_history"}
    | {"journey_states", "outbox"}  # version 3
)

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
CREATE TABLE IF NOT EXISTS profiles (id TEXT PRIMARY KEY, record BLOB NOT NULL, last_seen TEXT);
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
CREATE TABLE IF NOT EXISTS item_observations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    anonymous INTEGER NOT NULL DEFAULT 0,
    record BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (
    name TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    saved_at TEXT NOT NULL,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS revisions (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    email TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    last_failed_at TEXT
);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY,
    email TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS sessions_email ON sessions (email);
CREATE TABLE IF NOT EXISTS workspace_history (
    revision INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    source TEXT NOT NULL,
    comment TEXT NOT NULL,
    document BLOB NOT NULL,
    diff BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS journey_states (
    journey TEXT NOT NULL,
    profile_id TEXT NOT NULL,
    due_at TEXT,
    record BLOB NOT NULL,
    PRIMARY KEY (journey, profile_id)
);
CREATE INDEX IF NOT EXISTS journey_states_profile_id ON journey_states (profile_id);
CREATE INDEX IF NOT EXISTS journey_states_due ON journey_states (due_at) WHERE due_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT UNIQUE NOT NULL,
    profile_id TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    done_at TEXT,
    record BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_profile_id ON outbox (profile_id);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (status, next_attempt_at);
"""


def _existing_tables(conn: sqlite3.Connection) -> set[str]:
    return {
        str(row[0]) for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    }


def configure_writer(conn: sqlite3.Connection, path: Path) -> list[str]:
    """Settings, schema and migrations on the writer connection. Returns warnings for the
    operator (tables that were missing from an existing database and are now empty)."""
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise StorageUnavailable(
            f"SQLite could not switch {path} to WAL mode (got {mode!r}); put the database on a "
            "local file system that supports shared memory."
        )
    conn.execute("PRAGMA synchronous = FULL")  # NORMAL can lose the last commits on power loss
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("PRAGMA secure_delete = ON")
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("BEGIN IMMEDIATE")
    try:
        before = _existing_tables(conn)
        version = None
        if "meta" in before:
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            version = None if row is None else str(row[0])
        if version is not None and version not in ("1", "2", SCHEMA_VERSION):
            raise StorageUnavailable(
                f"{path} has storage schema version {version}, this Loopwise reads versions 1 "
                f"to {SCHEMA_VERSION}; upgrade Loopwise or point it at another database file."
            )
        if version == "1" and "profiles" in before:
            _migrate_from_v1(conn)
        if version == "2":
            log.info("migrating the database from storage schema 2 to 3 (journeys, outbox)")
        for statement in SCHEMA.split(";\n"):
            if statement.strip():
                conn.execute(statement)
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (SCHEMA_VERSION,),
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    if version is None:
        return []
    missing = sorted(set(TABLES) - before - LATER_TABLES)
    return [
        f"{path}: table {name!r} was missing and has been created empty; the data it held is "
        "gone (restore it from a backup: `loopwise backup` makes one)"
        for name in missing
    ]


def _migrate_from_v1(conn: sqlite3.Connection) -> None:
    columns = {str(row[1]) for row in conn.execute("PRAGMA table_info(profiles)")}
    if "last_seen" not in columns:
        conn.execute("ALTER TABLE profiles ADD COLUMN last_seen TEXT")
        conn.execute(
            "UPDATE profiles SET last_seen = json_extract(CAST(record AS TEXT), '$.last_seen') "
            "WHERE json_valid(CAST(record AS TEXT))"
        )
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, '1') ON CONFLICT (key) DO NOTHING",
        (REBUILD_ITEM_STATS_META,),
    )
    log.info("migrated the database from storage schema 1 to %s", SCHEMA_VERSION)
