"""``serve``'s options for several workers, and the worker app's configuration."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from loopwise.cli import app
from loopwise.distributed.serve import CONFIG_ENV, WorkerConfig, _people, check_options

PG = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.mark.parametrize(
    ("database_url", "redis_url", "workers", "problem"),
    [
        (None, None, 1, None),  # the default: SQLite, one process
        (PG, None, 1, None),  # PostgreSQL, one process
        (PG, "redis://127.0.0.1:6379/0", 4, None),
        (None, None, 2, "shared database"),
        ("sqlite:///x.db", "redis://127.0.0.1:6379/0", 2, "shared database"),
        (PG, None, 2, "--redis-url"),
        (None, "redis://127.0.0.1:6379/0", 1, "goes with --database-url"),
        (PG, "http://cache:6379", 1, "must start with redis://"),
        (PG, "redis://127.0.0.1:6379/0", 0, "at least 1"),
    ],
)
def test_option_combinations(
    database_url: str | None, redis_url: str | None, workers: int, problem: str | None
) -> None:
    found = check_options(database_url, redis_url, workers)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_serve_refuses_several_workers_on_sqlite(tmp_path: object) -> None:
    result = CliRunner().invoke(app, ["serve", "--workers", "2", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "shared database" in result.output


def test_serve_takes_the_urls_from_the_environment(tmp_path: object) -> None:
    result = CliRunner().invoke(
        app,
        ["serve", "--data-dir", str(tmp_path)],
        env={"LOOPWISE_WORKERS": "3", "LOOPWISE_DATABASE_URL": PG},
    )
    assert result.exit_code == 2 and "--redis-url" in result.output  # read both variables


def test_worker_config_round_trips_through_the_environment() -> None:
    config = WorkerConfig("/data", None, PG, "redis://r:6379/0", False, {"body_timeout": 5.0})
    assert WorkerConfig.from_env({CONFIG_ENV: config.to_env()}) == config
    with pytest.raises(RuntimeError):
        WorkerConfig.from_env({})


def test_the_people_a_decide_body_names() -> None:
    body = b'{"user": {"user_id": "u1", "anonymous_id": "a1"}, "slots": []}'
    assert _people(body, everyone=True) == ["u1", "a1"]
    assert _people(body, everyone=False) == ["a1"]  # the write key: its own anonymous id only
    assert _people(body, everyone=None) == []
    assert _people(b"not json", everyone=True) == []
    assert _people(b'{"user": "x"}', everyone=True) == []
