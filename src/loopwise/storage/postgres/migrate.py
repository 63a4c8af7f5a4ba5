"""Versioned schema migrations (``migrations/NNNN_name.sql``) and connection settings.

``migrate(url, schema)`` applies, in order, each migration not yet listed in
``schema_migrations``, each in its own transaction. It holds a session advisory lock keyed by the
schema while it runs, so when several workers start at once one migrates and the others wait,
then find nothing left to do. ``schema`` puts everything in a schema of its own (created when
missing, and set as the connection's ``search_path``): a test or CI run isolates itself there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.resources import files

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from loopwise.errors import StorageUnavailable
from loopwise.storage.postgres.base import MIGRATION_LOCK, Connection

_FILE = re.compile(r"^(\d{4})_(\w+)\.sql$")
CONNECT_TIMEOUT_S = 10


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    """Every migration this Loopwise ships, oldest first."""
    found = []
    for entry in (files("loopwise.storage.postgres") / "migrations").iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: m.version)


def describe(url: str) -> str:
    """Where ``url`` points, for messages: host, port and database, never the password."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "the configured PostgreSQL server"
    host, port, dbname = params.get("host"), params.get("port"), params.get("dbname")
    return f"{host or 'localhost'}:{port or 5432}/{dbname or '(default database)'}"


def unreachable(url: str, exc: Exception) -> StorageUnavailable:
    error = StorageUnavailable(
        f"Cannot use PostgreSQL at {describe(url)} ({type(exc).__name__}: {exc}); check that "
        "the server is running, the database exists and the user may connect, then retry."
    )
    error.__cause__ = exc
    return error


def configure(conn: Connection, schema: str | None, *, read_only: bool = False) -> None:
    """The session settings every Loopwise connection runs with (autocommit connections)."""
    conn.execute("SELECT set_config('TimeZone', 'UTC', false)")
    if schema is not None:
        path = sql.Identifier(schema).as_string(conn)
        conn.execute("SELECT set_config('search_path', %s, false)", [path])
    if read_only:  # read handles cannot write, as SQLite's query_only readers cannot
        conn.execute("SELECT set_config('default_transaction_read_only', 'on', false)")


def application_name(name: str, schema: str | None) -> str:
    """What ``pg_stat_activity`` shows for a connection: its role and, when the deployment has
    a schema of its own, that schema (several deployments share one server; PostgreSQL keeps
    63 bytes)."""
    return (f"{name}/{schema}" if schema else name)[:63]


def connect(url: str, schema: str | None, *, name: str = "loopwise") -> Connection:
    """An autocommit connection with :func:`configure`'s settings; ``name`` (with the schema,
    see :func:`application_name`) is what operators see in ``pg_stat_activity``."""
    conn = psycopg.connect(
        url,
        autocommit=True,
        connect_timeout=CONNECT_TIMEOUT_S,
        application_name=application_name(name, schema),
    )
    try:
        configure(conn, schema)
    except BaseException:
        conn.close()
        raise
    return conn


def migrate(url: str, schema: str | None = None) -> list[int]:
    """Bring the schema up to date; returns the versions applied now (none when current)."""
    try:
        with psycopg.connect(
            url,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT_S,
            application_name="loopwise-migrate",
        ) as conn:
            target = schema if schema is not None else _current_schema(conn)
            conn.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", [MIGRATION_LOCK, target])
            try:
                if schema is not None:
                    conn.execute(
                        sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema))
                    )
                configure(conn, schema)
                return _apply(conn, describe(url))
            finally:
                conn.execute(
                    "SELECT pg_advisory_unlock(%s, hashtext(%s))", [MIGRATION_LOCK, target]
                )
    except psycopg.Error as exc:  # unreachable, no such database, not allowed, ...
        raise unreachable(url, exc) from exc


def _current_schema(conn: Connection) -> str:
    row = conn.execute("SELECT current_schema()").fetchone()
    if row is None or row[0] is None:
        raise StorageUnavailable(
            "The connection has no schema to create tables in (its search_path names none "
            "that exists); pass a schema or create one."
        )
    return str(row[0])


def _apply(conn: Connection, where: str) -> list[int]:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
        "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
    )
    applied = {int(row[0]) for row in conn.execute("SELECT version FROM schema_migrations")}
    known = migrations()
    newest = known[-1].version
    if applied and max(applied) > newest:
        raise StorageUnavailable(
            f"The database at {where} has storage schema version {max(applied)}, this Loopwise "
            f"knows versions up to {newest}; upgrade Loopwise or point it at another schema."
        )
    done = []
    for migration in known:
        if migration.version in applied:
            continue
        with conn.transaction():
            conn.execute(migration.sql.encode())  # several statements: the simple protocol
            conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                [migration.version, migration.name],
            )
        done.append(migration.version)
    return done


def current_version(conn: Connection) -> int | None:
    """The newest version applied in the connection's schema (None when never migrated)."""
    if conn.execute("SELECT to_regclass('schema_migrations')").fetchone() == (None,):
        return None
    row = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
    return None if row is None or row[0] is None else int(row[0])
