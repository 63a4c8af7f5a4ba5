"""``loopwise migrate``: bring the database a URL names up to the schema this Loopwise needs.

``loopwise.cli`` registers it: ``app.command("migrate")(migrate_command)``.

On PostgreSQL it applies the versioned migrations (:func:`loopwise.storage.postgres.migrate`),
safe to run while workers start; servers also migrate when they open the database, so running it
first is for operators who want schema changes as a separate deploy step. A SQLite file is
migrated in place when it is opened, which this command does too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from loopwise.cli_options import DEFAULT_DATA_DIR, DataDir, console, fail
from loopwise.errors import LoopwiseError

DATABASE_URL_ENV = "LOOPWISE_DATABASE_URL"


def migrate_command(
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            envvar=DATABASE_URL_ENV,
            help="postgresql://user@host/db, or sqlite:///path.db (default: the data "
            "directory's SQLite file).",
        ),
    ] = None,
    schema: Annotated[
        str | None,
        typer.Option(help="PostgreSQL schema for Loopwise's tables (created when missing)."),
    ] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Create or upgrade Loopwise's tables in the database."""
    try:
        console.print(migrate_database(database_url, schema, data_dir), highlight=False)
    except LoopwiseError as exc:
        raise fail(exc) from None


def migrate_database(url: str | None, schema: str | None, data_dir: Path) -> str:
    """Migrate what ``url`` names; returns what was done, for the operator."""
    from loopwise.storage import split_schema, sqlite_path, url_scheme

    scheme = url_scheme(url)
    if scheme in ("postgresql", "postgres"):
        from loopwise.storage.postgres import migrate
        from loopwise.storage.postgres.migrate import describe

        conninfo, named = split_schema(url or "")
        target = schema or named
        applied = migrate(conninfo, target)
        where = describe(conninfo) + (f" (schema {target})" if target else "")
        if not applied:
            return f"{where} is up to date."
        return f"{where}: applied " + ", ".join(f"migration {v:04d}" for v in applied) + "."
    if scheme == "memory":
        raise LoopwiseError("An in-memory database has nothing to migrate.", field="database_url")
    from loopwise.storage.sqlite import SqliteStorage

    storage = SqliteStorage(sqlite_path(url, data_dir))  # a SQLite file migrates on open
    try:
        version = storage.config.meta("schema_version")
    finally:
        storage.close()
    return f"SQLite database {storage.path} is at schema version {version}."


def backup_command(
    destination: Annotated[Path, typer.Argument(help="The file to write the copy to.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """A consistent copy of the data directory's database, safe while the server runs
    (SQLite's online backup API); the copy is checked before this reports success. For
    PostgreSQL use its own tools (pg_dump, base backups)."""
    from loopwise.storage.sqlite import SqliteStorage

    source = data_dir / "loopwise.db"
    if not source.is_file():
        raise fail(
            LoopwiseError(
                f"No database at {source}; point --data-dir at a Loopwise data directory.",
                field="data_dir",
            )
        )
    if destination.exists():
        raise fail(
            LoopwiseError(
                f"{destination} exists; choose a new file (a backup never overwrites one).",
                field="destination",
            )
        )
    storage = SqliteStorage(source)
    try:
        storage.backup(destination)
        events = storage.events.count()
    except LoopwiseError as exc:
        raise fail(exc) from None
    finally:
        storage.close()
    console.print(f"Backed up {source} to {destination} ({events} events); the copy is intact.")
