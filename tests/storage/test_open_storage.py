"""open_storage: the backend a database URL names."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopwise.errors import ValidationFailed
from loopwise.storage import open_storage, split_schema
from loopwise.storage.memory import MemoryStorage
from loopwise.storage.sqlite import SqliteStorage
from tests.storage.conftest import PG_URL


@pytest.mark.parametrize("url", [None, "", "sqlite://", "sqlite:///"])
def test_no_url_is_sqlite_in_the_data_directory(url: str | None, tmp_path: Path) -> None:
    storage = open_storage(url, tmp_path / "data")
    try:
        assert isinstance(storage, SqliteStorage)
        assert storage.path == tmp_path / "data" / "loopwise.db" and storage.path.exists()
    finally:
        storage.close()


def test_sqlite_paths_are_relative_to_the_working_directory_or_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    relative = open_storage("sqlite:///sub/rel.db", tmp_path / "unused")
    absolute = open_storage(f"sqlite:///{tmp_path}/abs.db", tmp_path / "unused")
    try:
        assert isinstance(relative, SqliteStorage) and isinstance(absolute, SqliteStorage)
        assert relative.path.resolve() == tmp_path / "sub" / "rel.db"
        assert absolute.path == tmp_path / "abs.db"
        assert (tmp_path / "abs.db").exists() and not (tmp_path / "unused").exists()
    finally:
        relative.close()
        absolute.close()


def test_memory_url_is_the_memory_backend(tmp_path: Path) -> None:
    storage = open_storage("memory://", tmp_path)
    try:
        assert isinstance(storage, MemoryStorage)
        assert list(tmp_path.iterdir()) == []
    finally:
        storage.close()


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_a_postgresql_url_with_a_schema_parameter(
    scheme: str, pg_schema: str, tmp_path: Path
) -> None:
    url = PG_URL.replace("postgresql", scheme, 1) + f"?connect_timeout=5&schema={pg_schema}"
    storage = open_storage(url, tmp_path)
    try:
        assert storage.health()["schema"] == pg_schema
        storage.write(lambda uow: uow.config.put_meta("opened-by", scheme))
        assert storage.config.meta("opened-by") == scheme
    finally:
        storage.close()


def test_the_schema_argument_wins_over_the_url(pg_schema: str, tmp_path: Path) -> None:
    storage = open_storage(f"{PG_URL}?schema=elsewhere", tmp_path, schema=pg_schema)
    try:
        assert storage.health()["schema"] == pg_schema
    finally:
        storage.close()


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("mysql://admin:hunter2@db/loopwise", "'mysql' is not one"),
        ("loopwise.db", "no scheme"),
        ("sqlite:relative.db", "starts with sqlite://"),
    ],
)
def test_an_unusable_url_is_a_validation_problem_without_the_url(
    url: str, says: str, tmp_path: Path
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        open_storage(url, tmp_path)
    assert caught.value.field == "database_url"
    assert says in caught.value.detail and "postgresql://user@host/db" in caught.value.detail
    assert "hunter2" not in caught.value.detail


def test_split_schema_keeps_the_other_parameters() -> None:
    assert split_schema("postgresql://h/db?sslmode=disable&schema=s1") == (
        "postgresql://h/db?sslmode=disable",
        "s1",
    )
    assert split_schema("postgresql://u@h:5433/db") == ("postgresql://u@h:5433/db", None)
