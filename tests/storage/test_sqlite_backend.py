"""SQLite-only behaviour: durability settings, the file on disk, migration from round 1, a full
disk, backup, and what start-up says about a damaged or newer database."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson
import pytest

from loopwise.clock import isoformat
from loopwise.errors import StorageUnavailable
from loopwise.storage.records import Exposure, ProfileRecord
from loopwise.storage.sqlite import SqliteStorage
from loopwise.storage.sqlite.schema import REBUILD_ITEM_STATS_META
from tests.storage.conftest import T0, at, make_event


@pytest.fixture
def sqlite_storage(tmp_path: Path) -> Iterator[SqliteStorage]:
    backend = SqliteStorage(tmp_path / "loopwise.db")
    yield backend
    backend.close()


def test_data_survives_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "data" / "loopwise.db"
    storage = SqliteStorage(path)

    def job(uow: object) -> None:
        uow.events.append([make_event("m1"), make_event("m2")], ["p1", "p2"])  # type: ignore[attr-defined]
        uow.profiles.upsert([ProfileRecord("p1", T0, b"profile")])  # type: ignore[attr-defined]
        uow.identities.link({"u1": "p1"})  # type: ignore[attr-defined]
        uow.exposures.insert(Exposure("exp", "p1", "a", T0))  # type: ignore[attr-defined]
        uow.config.put("workspace", {"slots": ["hero"]})  # type: ignore[attr-defined]

    storage.write(job)
    storage.close()
    reopened = SqliteStorage(path)
    try:
        assert [e.event.message_id for e in reopened.events.iter()] == ["m1", "m2"]
        assert reopened.profiles.get("p1") == ProfileRecord("p1", T0, b"profile")
        assert reopened.identities.resolve(["u1"]) == {"u1": "p1"}
        assert reopened.exposures.get("exp", "p1") == Exposure("exp", "p1", "a", T0)
        assert reopened.config.get("workspace") == {"slots": ["hero"]}
        assert reopened.config.meta("schema_version") == "3"
        assert reopened.write(lambda uow: uow.events.append([make_event("m2")], ["p2"])) == [None]
        assert reopened.warnings == []
    finally:
        reopened.close()


def test_the_writer_runs_in_wal_mode_with_full_sync_and_secure_delete(
    sqlite_storage: SqliteStorage,
) -> None:
    pragmas = sqlite_storage.writer_pragmas()
    assert pragmas["journal_mode"] == "wal"
    assert pragmas["synchronous"] == 2  # FULL: a commit is on disk before its future resolves
    assert pragmas["secure_delete"] == 1  # erased rows are overwritten, not left in free pages
    assert pragmas["foreign_keys"] == 0 and pragmas["busy_timeout"] > 0
    with sqlite3.connect(sqlite_storage.path) as conn:  # WAL is a property of the file
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_an_erased_profile_leaves_no_copy_in_the_files_after_a_checkpoint(
    sqlite_storage: SqliteStorage,
) -> None:
    marker = b"erase-me-" + os.urandom(8).hex().encode()
    keep = ProfileRecord("p2", T0, b"kept")
    sqlite_storage.write(
        lambda uow: uow.profiles.upsert([ProfileRecord("p1", T0, marker * 50), keep])
    )
    sqlite_storage.checkpoint()
    assert marker in sqlite_storage.path.read_bytes()
    sqlite_storage.write(lambda uow: uow.profiles.delete(["p1"]))
    sqlite_storage.checkpoint()
    wal = sqlite_storage.path.with_name(sqlite_storage.path.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0  # truncated
    assert marker not in sqlite_storage.path.read_bytes()
    assert sqlite_storage.profiles.get("p2") == keep


def test_the_audit_table_refuses_updates(sqlite_storage: SqliteStorage) -> None:
    record = {"seq": 1, "subject": "s", "at": isoformat(T0), "hash": "h"}
    sqlite_storage.write(lambda uow: uow.audit.append(record))
    with sqlite3.connect(sqlite_storage.path) as conn, pytest.raises(sqlite3.DatabaseError):
        conn.execute("UPDATE audit SET subject = 'other'")
    assert list(sqlite_storage.audit.iter()) == [record]


V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, message_id TEXT UNIQUE NOT NULL,
    profile_id TEXT NOT NULL, type TEXT, ts TEXT, received_at TEXT, record BLOB NOT NULL);
CREATE TABLE profiles (id TEXT PRIMARY KEY, record BLOB NOT NULL);
CREATE TABLE identities (identifier TEXT PRIMARY KEY, profile_id TEXT NOT NULL);
CREATE TABLE segment_history (id INTEGER PRIMARY KEY, profile_id TEXT NOT NULL,
    segment TEXT NOT NULL, change TEXT NOT NULL, at TEXT NOT NULL);
CREATE TABLE items (id TEXT PRIMARY KEY, record BLOB NOT NULL);
CREATE TABLE decisions (decision_id TEXT PRIMARY KEY, profile_id TEXT NOT NULL,
    created_at TEXT NOT NULL, record BLOB NOT NULL);
CREATE TABLE outcomes (id INTEGER PRIMARY KEY, decision_id TEXT NOT NULL, record BLOB NOT NULL);
CREATE TABLE config (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE consent (key TEXT PRIMARY KEY, record BLOB NOT NULL);
CREATE TABLE audit (seq INTEGER PRIMARY KEY, subject TEXT NOT NULL, at TEXT NOT NULL,
    record BLOB NOT NULL);
CREATE TABLE exposures (experiment TEXT NOT NULL, profile_id TEXT NOT NULL,
    exposed_at TEXT NOT NULL, record BLOB NOT NULL, PRIMARY KEY (experiment, profile_id));
"""


def test_a_round_1_database_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "loopwise.db"
    event = make_event("m1")
    with sqlite3.connect(path) as conn:
        conn.executescript(V1_SCHEMA)
        conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        conn.execute(
            "INSERT INTO profiles VALUES ('p1', ?)",
            (orjson.dumps({"id": "p1", "last_seen": isoformat(at(5))}),),
        )
        conn.execute(
            "INSERT INTO events (message_id, profile_id, type, ts, received_at, record) "
            "VALUES ('m1', 'p1', 'track', ?, ?, ?)",
            (
                isoformat(event.timestamp),
                isoformat(event.received_at),
                orjson.dumps(event.to_record()),
            ),
        )
    conn.close()
    storage = SqliteStorage(path)
    try:
        assert storage.config.meta("schema_version") == "3"
        assert storage.config.meta(REBUILD_ITEM_STATS_META) == "1"  # no checkpoint in v1
        profile = storage.profiles.get("p1")
        assert profile is not None and profile.last_seen == at(5)
        assert storage.profiles.last_seen_before(at(6)) == ["p1"]
        assert [e.event for e in storage.events.iter()] == [event]
        assert storage.warnings == []
        [seq] = storage.write(lambda uow: uow.events.append([make_event("m2")], ["p1"]))
        assert seq == 2
    finally:
        storage.close()


def test_a_missing_table_is_recreated_empty_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "loopwise.db"
    SqliteStorage(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE consent")
    conn.close()
    storage = SqliteStorage(path)
    try:
        [warning] = storage.warnings
        assert "'consent'" in warning and "loopwise backup" in warning
        assert storage.consent.count() == 0
    finally:
        storage.close()


def test_a_full_disk_fails_the_write_reports_it_and_recovers(
    sqlite_storage: SqliteStorage,
) -> None:
    big = [ProfileRecord(f"p{n}", T0, os.urandom(3000)) for n in range(60)]
    pages = sqlite_storage.write(lambda uow: uow.pragma("page_count"))
    sqlite_storage.set_max_page_count(int(pages) + 2)
    with pytest.raises(StorageUnavailable) as caught:
        sqlite_storage.write(lambda uow: uow.profiles.upsert(big))
    assert "full" in caught.value.detail and "free space" in caught.value.detail
    health = sqlite_storage.health()
    assert not health["ok"] and "full" in health["write"] and health["read"] == "ok"
    assert sqlite_storage.profiles.count() == 0  # nothing of the failed job is stored
    sqlite_storage.set_max_page_count(1_000_000)  # space again
    sqlite_storage.write(lambda uow: uow.profiles.upsert(big))
    assert sqlite_storage.profiles.count() == 60 and sqlite_storage.health()["ok"]


def test_backup_is_a_consistent_copy_while_writes_go_on(
    sqlite_storage: SqliteStorage, tmp_path: Path
) -> None:
    events = [make_event(f"m{n}") for n in range(500)]
    sqlite_storage.write(lambda uow: uow.events.append(events, ["p1"] * 500))
    destination = tmp_path / "backups" / "copy.db"
    with ThreadPoolExecutor(max_workers=1) as pool:
        writing = pool.submit(
            lambda: [
                sqlite_storage.write(lambda uow, n=n: uow.config.put_meta(f"k{n}", "v"))
                for n in range(50)
            ]
        )
        sqlite_storage.backup(destination)
        writing.result(timeout=60)
    copy = SqliteStorage(destination)
    try:
        assert copy.events.count() == 500
        assert [e.event.message_id for e in copy.events.iter()][-1] == "m499"
    finally:
        copy.close()


def test_reads_from_another_thread_see_each_new_commit(sqlite_storage: SqliteStorage) -> None:
    with ThreadPoolExecutor(max_workers=1) as reader:  # one thread, so one reader connection
        assert reader.submit(sqlite_storage.config.meta, "k").result() is None
        for value in ("1", "2"):
            sqlite_storage.write(lambda uow, v=value: uow.config.put_meta("k", v))
            assert reader.submit(sqlite_storage.config.meta, "k").result() == value


def test_opening_a_file_that_is_not_a_database_is_storage_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not an sqlite database" * 100)
    with pytest.raises(StorageUnavailable, match="check that the path"):
        SqliteStorage(path)


def test_a_newer_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "loopwise.db"
    storage = SqliteStorage(path)
    storage.write(lambda uow: uow.config.put_meta("schema_version", "99"))
    storage.close()
    with pytest.raises(StorageUnavailable) as caught:
        SqliteStorage(path)
    assert "schema version 99" in caught.value.detail and "upgrade Loopwise" in caught.value.detail
