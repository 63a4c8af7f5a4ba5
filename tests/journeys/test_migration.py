"""A SQLite database of storage schema 2 (before journeys) opens as schema 3 with the journey
tables, keeping what it held."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from loopwise.storage.sqlite import SqliteStorage


def test_a_version_2_database_gains_the_journey_tables(tmp_path: Path) -> None:
    path = tmp_path / "loopwise.db"
    storage = SqliteStorage(path)
    storage.write(lambda uow: uow.config.put_meta("kept", "yes"))
    storage.close()
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE journey_states")
    conn.execute("DROP TABLE outbox")
    conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    reopened = SqliteStorage(path)
    try:
        assert reopened.config.meta("schema_version") == "3"
        assert reopened.config.meta("kept") == "yes"
        assert reopened.journeys.count() == 0 and reopened.outbox.counts() == {}
        assert not reopened.warnings  # new tables, not missing ones
    finally:
        reopened.close()
