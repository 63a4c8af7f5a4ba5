"""Every storage test gets a fresh backend of every kind: memory, SQLite and PostgreSQL.

PostgreSQL runs against the server at ``LOOPWISE_TEST_DATABASE_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``) in a schema of its own, created for this test
session and dropped at its end; its tests skip, saying so, when the server is unreachable.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from loopwise.events.schema import Event

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
BACKENDS = ("memory", "sqlite", "postgres")
PG_URL = os.environ.get("LOOPWISE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def make_event(message_id: str, user: str = "u1", minutes: float = 0, **fields: Any) -> Event:
    """A track event at ``T0 + minutes`` (millisecond precision, as stored)."""
    when = at(minutes)
    values: dict[str, Any] = {
        "timestamp": when,
        "user_id": user,
        "event": "Product Viewed",
        "properties": {"item_id": f"item-{message_id}"},
        "received_at": when + timedelta(seconds=1),
        **fields,
    }
    return Event(message_id=message_id, type="track", **values)


@contextmanager
def writer_held(storage: Any) -> Iterator[None]:
    """Keep the writer busy inside a job, so what is submitted meanwhile queues up and runs as
    one group commit when the block ends."""
    started, release = threading.Event(), threading.Event()

    def gate(uow: object) -> None:
        started.set()
        release.wait(timeout=30)

    future = storage.submit(gate)
    assert started.wait(timeout=30)
    try:
        yield
    finally:
        release.set()
        future.result(timeout=30)


# -- PostgreSQL --------------------------------------------------------------------------------
def _reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5432), 2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def pg_schema() -> Iterator[str]:
    """A schema of this test session's own, migrated once and dropped at the end."""
    if not _reachable(PG_URL):
        parts = urlsplit(PG_URL)  # host and port only: the URL may carry a password
        pytest.skip(
            f"PostgreSQL is not reachable at {parts.hostname}:{parts.port or 5432}: start it "
            "(or point LOOPWISE_TEST_DATABASE_URL at one) to run the PostgreSQL storage tests"
        )
    import psycopg
    from psycopg import sql

    from loopwise.storage.postgres import migrate

    schema = f"loopwise_test_{uuid.uuid4().hex[:12]}"
    migrate(PG_URL, schema)
    yield schema
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def reset_pg_schema(schema: str) -> None:
    """Empty every table and restart every sequence, in one round trip (DELETE is much faster
    than TRUNCATE on small tables, and far faster than a schema per test)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND NOT c.relispartition "
            "AND c.relname <> 'schema_migrations'",
            [schema],
        ).fetchall()
        sequences = conn.execute(
            "SELECT sequencename FROM pg_sequences WHERE schemaname = %s", [schema]
        ).fetchall()
        statements = [
            sql.SQL("DELETE FROM {}").format(sql.Identifier(schema, name)) for (name,) in tables
        ] + [
            sql.SQL("ALTER SEQUENCE {} RESTART").format(sql.Identifier(schema, name))
            for (name,) in sequences
        ]
        conn.execute(sql.SQL("; ").join(statements))


# -- backends ------------------------------------------------------------------------------------
def open_backend(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    if kind == "memory":
        from loopwise.storage.memory import MemoryStorage

        return MemoryStorage()
    if kind == "sqlite":
        from loopwise.storage.sqlite import SqliteStorage

        return SqliteStorage(tmp_path / "loopwise.db")
    schema = request.getfixturevalue("pg_schema")
    reset_pg_schema(schema)
    from loopwise.storage.postgres import PostgresStorage

    return PostgresStorage(PG_URL, schema=schema)


@pytest.fixture(params=BACKENDS)
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    backend = open_backend(request.param, tmp_path, request)
    yield backend
    backend.close()


# -- raw access, for what no store method can do: damage a row, make a commit fail --------------
class Raw:
    """Backend-specific hands on the stored rows, so the contract can check how damaged rows are
    reported and what a failed commit leaves."""

    def __init__(self, storage: Any) -> None:
        self.storage = storage
        self.kind = storage.kind

    def corrupt(self, table: str, key: str | int) -> None:
        """Overwrite the blob of one row of ``table`` (a SQLite table name) with bytes that do
        not decode."""
        garbage = b"\xff{not json"
        if self.kind == "memory":
            _corrupt_memory(self.storage, table, key, garbage)
            return
        column = {"config": "value"}.get(table, "record")
        where = {
            "events": "seq",
            "items": "id",
            "config": "key",
            "consent": "key",
            "item_observations": "seq",
        }[table]
        if self.kind == "sqlite":
            with sqlite3.connect(self.storage.path) as conn:
                changed = conn.execute(
                    f"UPDATE {table} SET {column} = ? WHERE {where} = ?", (garbage, key)
                ).rowcount
        else:
            import psycopg
            from psycopg import sql

            with psycopg.connect(PG_URL, autocommit=True) as conn:
                changed = conn.execute(
                    sql.SQL("UPDATE {} SET {} = %s WHERE {} = %s").format(
                        sql.Identifier(self.storage.schema, table),
                        sql.Identifier(column),
                        sql.Identifier(where),
                    ),
                    [garbage, key],
                ).rowcount
        assert changed == 1, f"no {table} row {key!r} to damage"

    def failing_commit(self, *, skip: int = 0) -> AbstractContextManager[None]:
        """A commit fails as a database's does (the transaction is rolled back): on PostgreSQL
        every commit of a transaction that wrote ``meta``, elsewhere the one after ``skip``
        commits (a held writer's own transaction is one)."""
        if self.kind == "postgres":
            return _pg_failing_commit(self.storage)
        return _injected_commit_failure(self.storage, skip)


def _corrupt_memory(storage: Any, table: str, key: str | int, garbage: bytes) -> None:
    """Replace the blob (a row's last column) in the committed and the working copy."""
    copies = [storage._committed.tables]
    storage.write(lambda uow: copies.append(uow.events._db.tables))
    for tables in copies:
        row = tables[table].get(key)
        assert row is not None, f"no {table} row {key!r} to damage"
        tables[table].put(key, (*row[:-1], garbage))


@contextmanager
def _injected_commit_failure(storage: Any, skip: int) -> Iterator[None]:
    """Memory and SQLite: the session's COMMIT rolls back and raises, like an I/O error."""
    if storage.kind == "memory":
        from loopwise.storage.memory.storage import MemorySession as session_type
    else:
        from loopwise.storage.sqlite.storage import _Session as session_type
    original = session_type.commit
    countdown = [skip]

    def commit(self: Any) -> None:
        countdown[0] -= 1
        if countdown[0] == -1:
            self.rollback()
            raise OSError("disk I/O error (injected)")
        original(self)

    session_type.commit = commit  # type: ignore[method-assign]
    try:
        yield
    finally:
        session_type.commit = original  # type: ignore[method-assign]


@contextmanager
def _pg_failing_commit(storage: Any) -> Iterator[None]:
    """PostgreSQL: a deferred constraint trigger that fails at COMMIT, once."""
    import psycopg
    from psycopg import sql

    schema = sql.Identifier(storage.schema)
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "CREATE FUNCTION {}.fail_commit() RETURNS trigger LANGUAGE plpgsql AS $$ "
                "BEGIN RAISE EXCEPTION 'commit refused (test)'; END $$"
            ).format(schema)
        )
        conn.execute(
            sql.SQL(
                "CREATE CONSTRAINT TRIGGER fail_commit AFTER INSERT OR UPDATE ON {} "
                "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {}.fail_commit()"
            ).format(sql.Identifier(storage.schema, "meta"), schema)
        )
    try:
        yield
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP TRIGGER fail_commit ON {}").format(
                    sql.Identifier(storage.schema, "meta")
                )
            )
            conn.execute(sql.SQL("DROP FUNCTION {}.fail_commit()").format(schema))


@pytest.fixture
def raw(storage: Any) -> Raw:
    return Raw(storage)
