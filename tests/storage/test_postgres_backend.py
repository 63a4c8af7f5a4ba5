"""PostgreSQL-only behaviour: migrations, schema isolation, partitions, positions across
processes, erasure leaving no rows, and recovering from dropped connections."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest

from loopwise.clock import isoformat
from loopwise.errors import StorageUnavailable
from loopwise.storage.records import Exposure, Observation, ProfileRecord
from tests.storage.conftest import PG_URL, T0, make_event, reset_pg_schema

psycopg = pytest.importorskip("psycopg")
from psycopg import sql  # noqa: E402

from loopwise.storage.postgres import PostgresStorage, migrate  # noqa: E402
from loopwise.storage.postgres.migrate import application_name  # noqa: E402
from loopwise.storage.postgres.storage import READER_NAME, WRITER_NAME  # noqa: E402


def run_sql(query: Any, params: Any = None) -> list[Any]:
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []


@pytest.fixture
def pg(pg_schema: str) -> Iterator[PostgresStorage]:
    reset_pg_schema(pg_schema)
    storage = PostgresStorage(PG_URL, schema=pg_schema)
    yield storage
    storage.close()


@pytest.fixture
def fresh_schema(pg_schema: str) -> Iterator[str]:
    """A schema that does not exist yet, dropped after the test."""
    name = f"{pg_schema}_{uuid.uuid4().hex[:6]}"
    yield name
    run_sql(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def in_schema(schema: str, query: str, params: Any = None) -> list[Any]:
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute("SELECT set_config('search_path', %s, false)", [f'"{schema}"'])
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []


# -- migrations ---------------------------------------------------------------------------------
def test_migrate_creates_the_schema_once_and_records_each_version(fresh_schema: str) -> None:
    assert migrate(PG_URL, fresh_schema) == [1, 2, 3]
    assert migrate(PG_URL, fresh_schema) == []
    rows = in_schema(fresh_schema, "SELECT version, name FROM schema_migrations ORDER BY version")
    assert rows == [(1, "initial"), (2, "console"), (3, "journeys")]
    tables = {
        row[0]
        for row in in_schema(
            fresh_schema, "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        )
    }
    assert {"events", "event_ids", "profiles", "audit", "checkpoints", "revisions"} <= tables
    assert {"users", "sessions", "workspace_history"} <= tables


def test_workers_starting_at_once_migrate_exactly_once(fresh_schema: str) -> None:
    barrier = threading.Barrier(4)

    def start() -> list[int]:
        barrier.wait()
        return migrate(PG_URL, fresh_schema)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: start(), range(4)))
    assert sorted(results) == [[], [], [], [1, 2, 3]]
    assert in_schema(fresh_schema, "SELECT count(*) FROM schema_migrations") == [(3,)]


def test_a_newer_schema_is_refused(fresh_schema: str) -> None:
    migrate(PG_URL, fresh_schema)
    in_schema(fresh_schema, "INSERT INTO schema_migrations (version, name) VALUES (99, 'future')")
    with pytest.raises(StorageUnavailable, match=r"version 99.*upgrade Loopwise"):
        PostgresStorage(PG_URL, schema=fresh_schema)


def test_opening_without_migrating_an_empty_schema_says_to_migrate(fresh_schema: str) -> None:
    run_sql(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(fresh_schema)))
    with pytest.raises(StorageUnavailable, match="loopwise migrate"):
        PostgresStorage(PG_URL, schema=fresh_schema, run_migrations=False)


def test_an_unreachable_server_is_unavailable_without_the_password() -> None:
    url = "postgresql://postgres:s3cret-pw@127.0.0.1:1/test"
    with pytest.raises(StorageUnavailable) as caught:
        PostgresStorage(url)
    assert "127.0.0.1:1/test" in caught.value.detail and "s3cret" not in caught.value.detail


# -- schema --------------------------------------------------------------------------------------
def test_schemas_isolate_their_data(pg: PostgresStorage, fresh_schema: str) -> None:
    other = PostgresStorage(PG_URL, schema=fresh_schema)
    try:
        pg.write(lambda uow: uow.config.put_meta("k", "mine"))
        assert other.config.meta("k") is None
        other.write(lambda uow: uow.events.append([make_event("m1")], ["p1"]))
        assert pg.events.count() == 0 and other.events.count() == 1
    finally:
        other.close()


def test_text_keys_sort_by_code_point_in_any_locale(pg: PostgresStorage) -> None:
    rows = in_schema(
        pg.schema or "",  # type: ignore[arg-type]
        "SELECT table_name, column_name, collation_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND data_type = 'text' "
        "AND column_name IN ('id', 'key', 'identifier', 'profile_id', 'message_id')",
    )
    assert rows and {collation for _, _, collation in rows} == {"C"}


def test_the_audit_table_refuses_updates(pg: PostgresStorage) -> None:
    pg.write(lambda uow: uow.audit.append({"seq": 1, "subject": "s", "at": isoformat(T0)}))
    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        in_schema(pg.schema, "UPDATE audit SET subject = 'other'")  # type: ignore[arg-type]
    assert [r["subject"] for r in pg.audit.iter()] == ["s"]


def test_read_handles_are_read_only(pg: PostgresStorage) -> None:
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        pg.profiles.upsert([ProfileRecord("p1", T0, b"x")])
    assert pg.profiles.count() == 0


# -- partitions ---------------------------------------------------------------------------------
def received(month: int, day: int = 15) -> datetime:
    return datetime(2025, month, day, 12, tzinfo=UTC)


def partitions(pg: PostgresStorage) -> list[str]:
    rows = in_schema(
        pg.schema,  # type: ignore[arg-type]
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'events'::regclass ORDER BY 1",
    )
    return [row[0] for row in rows]


def event_in(month: int, name: str, *, event_month: int | None = None) -> Any:
    return make_event(
        name,
        timestamp=received(event_month or month, 10),
        received_at=received(month),
    )


def test_events_land_in_a_partition_per_month_of_receipt(pg: PostgresStorage) -> None:
    for name in partitions(pg):  # left over from earlier tests in this session's schema
        in_schema(pg.schema, f"DROP TABLE {name}")  # type: ignore[arg-type]
    pg.write(lambda uow: uow.events.append([event_in(1, "a"), event_in(3, "b")], ["p", "p"]))
    pg.write(lambda uow: uow.events.append([event_in(3, "c"), event_in(11, "d")], ["p", "p"]))
    assert partitions(pg) == ["events_y2025m01", "events_y2025m03", "events_y2025m11"]
    rows = in_schema(pg.schema, "SELECT message_id FROM events_y2025m03 ORDER BY 1")  # type: ignore[arg-type]
    assert rows == [("b",), ("c",)]
    assert [e.event.message_id for e in pg.events.iter()] == ["a", "b", "c", "d"]


def test_purge_drops_whole_old_partitions_and_deletes_inside_the_rest(pg: PostgresStorage) -> None:
    for name in partitions(pg):
        in_schema(pg.schema, f"DROP TABLE {name}")  # type: ignore[arg-type]
    events = [
        event_in(1, "jan-1"),
        event_in(1, "jan-2"),
        event_in(2, "feb-ahead", event_month=4),  # sent with a time far ahead of its receipt
        event_in(2, "feb-old"),
        event_in(4, "apr-old", event_month=3),
        event_in(4, "apr-new"),
    ]
    pg.write(lambda uow: uow.events.append(events, ["p"] * 6))
    cutoff = received(4, 1)
    assert pg.write(lambda uow: uow.events.purge_before(cutoff)) == 4
    assert "events_y2025m01" not in partitions(pg)  # dropped whole
    assert "events_y2025m02" in partitions(pg)  # still holds the event ahead of its receipt
    assert [e.event.message_id for e in pg.events.iter()] == ["feb-ahead", "apr-new"]
    assert pg.events.known([e.message_id for e in events]) == {"feb-ahead", "apr-new"}
    # a month whose partition was dropped can receive events again
    assert pg.write(lambda uow: uow.events.append([event_in(1, "jan-3")], ["p"])) != [None]


def test_a_partition_made_by_a_failed_job_goes_with_it(pg: PostgresStorage) -> None:
    for name in partitions(pg):
        in_schema(pg.schema, f"DROP TABLE {name}")  # type: ignore[arg-type]

    def fails(uow: Any) -> None:
        uow.events.append([event_in(6, "lost")], ["p"])
        raise RuntimeError("after creating the June partition")

    with pytest.raises(RuntimeError):
        pg.write(fails)
    assert partitions(pg) == []
    pg.write(lambda uow: uow.events.append([event_in(6, "kept")], ["p"]))
    assert partitions(pg) == ["events_y2025m06"]
    assert [e.event.message_id for e in pg.events.iter()] == ["kept"]


# -- several processes on one schema --------------------------------------------------------------
def test_positions_commit_in_order_across_writers(pg: PostgresStorage) -> None:
    other = PostgresStorage(PG_URL, schema=pg.schema)  # a second worker's storage
    inside, release = threading.Event(), threading.Event()

    def slow(uow: Any) -> list[int | None]:
        seqs = uow.events.append([make_event("first")], ["p"])
        inside.set()
        release.wait(timeout=30)
        return list(seqs)

    try:
        held = pg.submit(slow)
        assert inside.wait(timeout=30)
        waiting = other.submit(lambda uow: uow.events.append([make_event("second")], ["p"]))
        time.sleep(0.3)
        assert not waiting.done()  # it waits for the first append's commit
        release.set()
        [first], [second] = held.result(timeout=30), waiting.result(timeout=30)
        assert second > first
    finally:
        release.set()
        other.close()


def test_a_retry_sent_to_two_workers_is_stored_once(pg: PostgresStorage) -> None:
    other = PostgresStorage(PG_URL, schema=pg.schema)
    try:
        barrier = threading.Barrier(2)

        def send(storage: PostgresStorage) -> list[int | None]:
            barrier.wait()
            return storage.write(lambda uow: uow.events.append([make_event("m1")], ["p"]))

        with ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(send, [pg, other]))
        assert sorted(r[0] is None for r in results) == [False, True]
        assert pg.events.count() == 1
    finally:
        other.close()


# -- erasure ----------------------------------------------------------------------------------
def test_erasure_leaves_no_row_that_mentions_the_person(pg: PostgresStorage) -> None:
    pid = f"erase-{uuid.uuid4().hex[:8]}"
    anon = f"anon-{uuid.uuid4().hex[:8]}"

    def seed(uow: Any) -> None:
        uow.events.append([make_event(f"{pid}-m1", pid), make_event(f"{pid}-m2", pid)], [pid] * 2)
        uow.profiles.upsert([ProfileRecord(pid, T0, f"profile of {pid}".encode())])
        uow.identities.link({anon: pid, pid: pid})
        uow.consent.put(pid, {"choices": {"ads": True}})
        uow.exposures.insert(Exposure("exp", pid, "a", T0))
        uow.decisions.insert(
            {"decision_id": f"{pid}-d", "profile_id": pid, "created_at": isoformat(T0)}
        )
        uow.decisions.add_outcome(f"{pid}-d", {"kind": "click", "user": pid})
        uow.segment_history.record(pid, ["buyer"], [], T0)
        uow.item_stats.observe([Observation(0, "view", ("i1",), T0)])  # anonymous: stays

    def erase(uow: Any) -> None:
        uow.events.delete_profile(pid)
        uow.profiles.delete([pid])
        uow.identities.delete_profile(pid)
        uow.consent.delete([pid])
        uow.exposures.delete_profile(pid)
        uow.decisions.delete_profile(pid)
        uow.segment_history.delete_profile(pid)

    pg.write(seed)
    schema = pg.schema
    tables = [
        row[0]
        for row in in_schema(
            schema,
            "SELECT tablename FROM pg_tables "  # type: ignore[arg-type]
            "WHERE schemaname = current_schema()",
        )
    ]

    def mentions() -> dict[str, int]:
        found = {}
        for table in tables:
            # a row as text shows text columns as they are and bytea as hex
            query = sql.SQL("SELECT count(*) FROM {} t WHERE t::text LIKE %s OR t::text LIKE %s")
            count = in_schema(
                schema,  # type: ignore[arg-type]
                query.format(sql.Identifier(table)).as_string(None),
                [f"%{pid}%", f"%{pid.encode().hex()}%"],
            )[0][0]
            if count:
                found[table] = count
        return found

    assert {"events", "event_ids", "profiles", "identities", "consent"} <= set(mentions())
    pg.write(erase)
    pg.checkpoint()
    assert mentions() == {}
    assert len(list(pg.item_stats.observations())) == 1


# -- connections lost and found -----------------------------------------------------------------
def terminate(storage: PostgresStorage, name: str) -> int:
    """Drop this storage's connections of one role (only its schema's: other tests running
    beside this one on the same server keep theirs)."""
    rows = run_sql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE application_name = %s AND pid <> pg_backend_pid()",
        [application_name(name, storage.schema)],
    )
    return len(rows)


def test_the_writer_reconnects_after_its_connection_is_dropped(pg: PostgresStorage) -> None:
    pg.write(lambda uow: uow.config.put_meta("k", "before"))
    assert terminate(pg, WRITER_NAME) >= 1
    pg.write(lambda uow: uow.config.put_meta("k", "after"))  # no failed write in between
    assert pg.config.meta("k") == "after" and pg.health()["ok"]


def test_a_connection_dropped_mid_transaction_fails_its_group_then_writes_go_on(
    pg: PostgresStorage,
) -> None:
    inside, release = threading.Event(), threading.Event()

    def held(uow: Any) -> None:
        uow.config.put_meta("k", "lost")
        inside.set()
        release.wait(timeout=30)

    future = pg.submit(held)
    assert inside.wait(timeout=30)
    terminate(pg, WRITER_NAME)
    release.set()
    with pytest.raises(StorageUnavailable):
        future.result(timeout=30)
    assert pg.config.meta("k") is None
    assert not pg.health()["ok"]
    pg.write(lambda uow: uow.config.put_meta("k", "kept"))
    assert pg.config.meta("k") == "kept" and pg.health()["ok"]


def test_reads_survive_their_pooled_connections_being_dropped(pg: PostgresStorage) -> None:
    pg.write(lambda uow: uow.config.put_meta("k", "v"))
    assert pg.config.meta("k") == "v"
    assert terminate(pg, READER_NAME) >= 1
    assert pg.config.meta("k") == "v"


def test_data_survives_close_and_reopen(pg: PostgresStorage) -> None:
    pg.write(lambda uow: uow.events.append([make_event("m1")], ["p1"]))
    pg.close()
    reopened = PostgresStorage(PG_URL, schema=pg.schema)
    try:
        assert [e.event.message_id for e in reopened.events.iter()] == ["m1"]
        assert reopened.write(lambda uow: uow.events.append([make_event("m1")], ["p1"])) == [None]
    finally:
        reopened.close()


def test_health_names_the_database_but_not_the_password(pg: PostgresStorage) -> None:
    health = pg.health()
    assert health["backend"] == "postgres" and health["schema"] == pg.schema
    assert health["database"].endswith("/test")
    assert os.environ.get("PGPASSWORD", "\0") not in str(health)
