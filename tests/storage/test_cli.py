"""``loopwise migrate`` (loopwise.storage.cli)."""

from __future__ import annotations

from pathlib import Path

import typer
from typer.testing import CliRunner

from loopwise.storage.cli import migrate_command
from tests.storage.conftest import PG_URL

runner = CliRunner()
app = typer.Typer()  # wired as loopwise.cli wires it
app.command("migrate")(migrate_command)
app.callback()(lambda: None)


def test_migrate_a_postgresql_schema_then_find_it_up_to_date(pg_schema: str) -> None:
    schema = f"{pg_schema}_cli"
    try:
        first = runner.invoke(app, ["migrate", "--database-url", PG_URL, "--schema", schema])
        assert first.exit_code == 0, first.output
        assert (
            f"(schema {schema}): applied migration 0001, migration 0002, migration 0003."
            in first.output
        )
        again = runner.invoke(
            app, ["migrate", "--schema", schema], env={"LOOPWISE_DATABASE_URL": PG_URL}
        )
        assert again.exit_code == 0 and "is up to date" in again.output
    finally:
        import psycopg

        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_migrate_a_sqlite_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["migrate", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "schema version 3" in result.output and (tmp_path / "loopwise.db").exists()
    named = runner.invoke(app, ["migrate", "--database-url", f"sqlite:///{tmp_path}/other.db"])
    assert named.exit_code == 0 and (tmp_path / "other.db").exists()


def test_an_unreachable_server_is_an_error_without_the_password() -> None:
    result = runner.invoke(
        app, ["migrate", "--database-url", "postgresql://u:s3cret@127.0.0.1:1/db"]
    )
    assert result.exit_code == 2
    assert "127.0.0.1:1/db" in result.output and "s3cret" not in result.output


def test_memory_has_nothing_to_migrate() -> None:
    result = runner.invoke(app, ["migrate", "--database-url", "memory://"])
    assert result.exit_code == 2 and "nothing to migrate" in result.output
