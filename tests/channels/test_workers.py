"""A campaign over several processes: the audience split by profile id, each part decided by its
own process on the same data directory, the parts merged back in audience order."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from typer.testing import CliRunner

from loopwise.channels.batch import DecideBatchRequest, Shard
from loopwise.channels.workers import (
    EngineSource,
    WorkerFailed,
    _merged,
    _read_part,
    decide_in_workers,
)
from loopwise.cli import app
from loopwise.clock import FixedClock
from loopwise.config import SAMPLE_WORKSPACE
from loopwise.engine import Engine
from tests.channels.conftest import category, channel_document, consent, view
from tests.storage.conftest import PG_URL, _reachable

runner = CliRunner()
ENV = {"LOOPWISE_WRITE_KEY": "w", "LOOPWISE_SERVER_KEY": "s", "LOOPWISE_ADMIN_KEY": "a"}
PEOPLE = [f"u{n:02d}" for n in range(24)]


def populate(engine: Engine, clock: FixedClock) -> None:
    """Two dozen people: most consented to marketing, half of them running fans, some buyers."""
    running, yoga = category(engine, "running"), category(engine, "yoga")
    for n, user in enumerate(PEOPLE):
        if n % 6 != 5:
            consent(engine, user, marketing=True, analytics=True, personalization=True)
        view(engine, clock, user, (running if n % 2 else yoga)[n % 3 : n % 3 + 3])


def test_the_shards_of_an_audience_are_disjoint_and_cover_it_in_order(
    engine: Engine, clock: FixedClock
) -> None:
    populate(engine, clock)
    audience = [*PEOPLE, "never-seen", PEOPLE[3]]  # a stranger, and someone listed twice
    body = DecideBatchRequest.model_validate(
        {"slot": "newsletter", "users": audience, "campaign": "c"}
    )
    whole = list(engine.decide_batch(body).keyed_rows())
    parts = [list(engine.decide_batch(body, Shard(i, 3)).keyed_rows()) for i in range(3)]
    assert all(parts)  # 26 people in 3 parts: each part has some
    keys = [key for part in parts for key, _ in part]
    assert sorted(keys) == [key for key, _ in whole]  # each position in exactly one part
    assert [key[0] for key, _ in whole] == list(range(len(audience)))
    for part in parts:
        assert [key for key, _ in part] == sorted(key for key, _ in part)  # in audience order
    # both listings of one person are in one part (its frequency cap sees both)
    owners = {key[0]: index for index, part in enumerate(parts) for key, _ in part}
    assert owners[3] == owners[len(audience) - 1]


def test_a_segment_audience_is_split_without_reading_other_parts(
    engine: Engine, clock: FixedClock
) -> None:
    populate(engine, clock)
    body = DecideBatchRequest.model_validate({"slot": "email-hero", "segment": "running_fans"})
    whole = engine.decide_batch(body)
    everyone = list(whole.keyed_rows())
    assert everyone and all(key[0] == -1 for key, _ in everyone)
    summaries = []
    merged: list[tuple[Any, dict[str, Any]]] = []
    for index in range(2):
        part = engine.decide_batch(body, Shard(index, 2))
        merged += list(part.keyed_rows())
        summaries.append(part.summary)
    assert sorted(key for key, _ in merged) == [key for key, _ in everyone]  # profile id order
    assert sum(s.audience for s in summaries) == whole.summary.audience
    assert sum(s.anonymous for s in summaries) == whole.summary.anonymous


def test_a_shard_must_exist() -> None:
    with pytest.raises(ValueError, match="shard 2 of 2"):
        Shard(2, 2)


def test_parts_merge_in_audience_order_and_a_cut_off_last_line_is_dropped(tmp_path: Path) -> None:
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_bytes(
        orjson.dumps([[0, "p1"], {"n": 0}]) + b"\n" + orjson.dumps([[3, "p4"], {"n": 3}]) + b"\n"
    )
    cut = orjson.dumps([[2, "p3"], {"n": 2}])
    second.write_bytes(orjson.dumps([[1, "p2"], {"n": 1}]) + b"\n" + cut[:-4])
    assert [row["n"] for row in _merged([first, second, tmp_path / "missing.jsonl"])] == [0, 1, 3]
    assert len(list(_read_part(second))) == 1


# -- through the CLI, with real worker processes -------------------------------------------------


def stored_population(tmp_path: Path, database_url: str | None = None) -> tuple[Path, Path]:
    """A data directory (its stores on ``database_url`` when given) holding the population, and
    its workspace file (no frequency cap, so the same campaign can run twice)."""
    document = channel_document(batch={"frequency_cap": {"per_day": 0}})
    document["items"] = str(SAMPLE_WORKSPACE.parent / "items.jsonl")
    workspace = tmp_path / "loopwise.yaml"
    workspace.write_text(yaml.safe_dump(document))
    data = tmp_path / "data"
    clock = FixedClock(datetime.now(UTC) - timedelta(hours=2))  # the workers run on real time
    engine, _ = Engine.open(
        data, workspace, clock=clock, environ=ENV, watch=False, database_url=database_url
    )
    try:
        populate(engine, clock)
        engine.services.decide.flush()
    finally:
        engine.close()
    return data, workspace


@pytest.fixture()
def data_dir(tmp_path: Path) -> tuple[Path, Path]:
    return stored_population(tmp_path)


def campaign(tmp_path: Path, data: Path, workspace: Path, out: str, *extra: str) -> Any:
    args = ["decide-batch", "--out", str(tmp_path / out), "--data-dir", str(data)]
    return runner.invoke(app, [*args, "--workspace", str(workspace), *extra], env=ENV)


def rows_of(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_text().splitlines()]


def decisions(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows without what differs between two runs: decision ids, and item scores (the
    popularity behind them decays with the clock, which moves between the runs)."""
    out = []
    for row in rows:
        row = {k: v for k, v in row.items() if k != "decision_id"}
        if "slot" in row:
            items = [{k: v for k, v in i.items() if k != "score"} for i in row["slot"]["items"]]
            row["slot"] = {**row["slot"], "items": items}
        out.append(row)
    return out


def logged(data: Path, workspace: Path, ids: list[str]) -> dict[str, dict[str, Any] | None]:
    """The decision log's records of ``ids``, read by a fresh engine on the data directory."""
    engine, _ = Engine.open(data, workspace, environ=ENV, watch=False)
    try:
        return {decision_id: engine.get_decision(decision_id) for decision_id in ids}
    finally:
        engine.close()


def test_two_workers_decide_a_user_list_as_one_process_does(
    tmp_path: Path, data_dir: tuple[Path, Path]
) -> None:
    data, workspace = data_dir
    users = tmp_path / "users.txt"
    users.write_text("\n".join([*PEOPLE, "never-seen"]) + "\n")
    audience = ["--slot", "newsletter", "--users", str(users), "--campaign", "split"]
    one = campaign(tmp_path, data, workspace, "one.jsonl", *audience)
    two = campaign(tmp_path, data, workspace, "two.jsonl", *audience, "--workers", "2")
    assert one.exit_code == 0, one.output
    assert two.exit_code == 0, two.output
    assert "2 workers" in two.output
    assert "Decided 20 of 25 people" in two.output and "wrote 25 rows" in two.output
    single, split = rows_of(tmp_path / "one.jsonl"), rows_of(tmp_path / "two.jsonl")
    assert [r["user_id"] for r in split] == [*PEOPLE, "never-seen"]  # the list's order
    assert decisions(split) == decisions(single)  # the same decisions
    decided = [row for row in split if row["status"] == "decided"]
    records = logged(data, workspace, [row["decision_id"] for row in decided])
    for row in decided:  # every decided row's decision is in the log, marked as the campaign's
        record = records[row["decision_id"]]
        assert record is not None and record["campaign"] == "split"
        assert record["profile_id"] == row["profile_id"]


def test_two_workers_decide_a_segment_in_profile_id_order(
    tmp_path: Path, data_dir: tuple[Path, Path]
) -> None:
    data, workspace = data_dir
    audience = ["--slot", "email-hero", "--segment", "running_fans"]
    one = campaign(tmp_path, data, workspace, "one.csv", *audience)
    two = campaign(tmp_path, data, workspace, "two.csv", *audience, "--workers", "2")
    assert one.exit_code == 0 and two.exit_code == 0, two.output
    single = (tmp_path / "one.csv").read_text().splitlines()
    split = (tmp_path / "two.csv").read_text().splitlines()
    column = single[0].split(",").index("decision_id")
    assert len(split) == len(single) > 2
    strip = [[v for i, v in enumerate(line.split(",")) if i != column] for line in split]
    assert strip == [[v for i, v in enumerate(line.split(",")) if i != column] for line in single]


def test_a_worker_count_out_of_range_is_refused_before_anything_runs(
    tmp_path: Path, data_dir: tuple[Path, Path]
) -> None:
    data, workspace = data_dir
    users = tmp_path / "users.txt"
    users.write_text("u00\n")
    many = campaign(
        tmp_path, data, workspace, "o.jsonl", "--slot", "newsletter", "--users", str(users),
        "--workers", "99",
    )  # fmt: skip
    assert many.exit_code == 2 and "--workers is 99: give 1 to 32" in many.output
    assert not (tmp_path / "o.jsonl").exists()


def test_a_failing_worker_fails_the_campaign_naming_it_after_the_others_wrote_their_rows(
    tmp_path: Path, data_dir: tuple[Path, Path]
) -> None:
    data, _ = data_dir
    request = DecideBatchRequest.model_validate({"slot": "newsletter", "users": PEOPLE})
    gone = EngineSource(data, tmp_path / "deleted.yaml")  # each worker fails to open the engine
    out = tmp_path / "rows.jsonl"
    with pytest.raises(WorkerFailed, match=r"Campaign worker 1 of 2 failed: .*deleted\.yaml"):
        decide_in_workers(gone, request, 2, out)
    assert out.exists() and out.read_text() == ""  # no worker decided anyone: no row


def test_two_workers_on_postgresql(tmp_path: Path) -> None:
    if not _reachable(PG_URL):
        pytest.skip("PostgreSQL is not reachable: start it to run the PostgreSQL campaign test")
    import psycopg
    from psycopg import sql

    schema = f"loopwise_test_{uuid.uuid4().hex[:12]}"
    url = f"{PG_URL}?schema={schema}"
    try:
        data, workspace = stored_population(tmp_path, url)
        users = tmp_path / "users.txt"
        users.write_text("\n".join(PEOPLE) + "\n")
        result = campaign(
            tmp_path, data, workspace, "pg.jsonl", "--slot", "newsletter", "--users", str(users),
            "--database-url", url, "--workers", "2", "--campaign", "pg",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert "Decided 20 of 24 people" in result.output
        rows = rows_of(tmp_path / "pg.jsonl")
        assert [row["user_id"] for row in rows] == PEOPLE
        decided = [row["decision_id"] for row in rows if row["status"] == "decided"]
        engine, _ = Engine.open(data, workspace, environ=ENV, watch=False, database_url=url)
        try:  # logged in the database, by both workers
            assert all(engine.get_decision(d) is not None for d in decided)
        finally:
            engine.close()
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            drop = sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
            conn.execute(drop)
