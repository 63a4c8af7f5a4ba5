from __future__ import annotations

from pathlib import Path

import orjson
from typer.testing import CliRunner

from loopwise.cli import app
from loopwise.config import SAMPLE_WORKSPACE
from loopwise.engine import Engine
from loopwise.events.normalize import parse_request

runner = CliRunner()
ENV = {"LOOPWISE_WRITE_KEY": "w", "LOOPWISE_SERVER_KEY": "s", "LOOPWISE_ADMIN_KEY": "a"}


def test_check_accepts_the_sample_and_names_the_line_of_an_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["check", str(SAMPLE_WORKSPACE)])
    assert result.exit_code == 0, result.output
    assert "ok" in result.output
    broken = tmp_path / "broken.yaml"
    broken.write_text("slots:\n  - key: hero\n    kind: banner\n")
    result = runner.invoke(app, ["check", str(broken)])
    assert result.exit_code == 2
    assert ":3:" in result.output and "slots[0].kind" in result.output


def test_import_items_upserts_and_rejects_a_bad_file_whole(tmp_path: Path) -> None:
    data = tmp_path / "data"
    items = tmp_path / "items.jsonl"
    items.write_text(
        "\n".join(
            orjson.dumps({"id": f"x-{i}", "title": f"Thing {i}", "price": i}).decode()
            for i in range(5)
        )
    )
    result = runner.invoke(app, ["import", "items", str(items), "--data-dir", str(data)], env=ENV)
    assert result.exit_code == 0, result.output
    assert "Imported 5 items" in result.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "y-1", "title": "ok"}\n{"id": "y-2", "price": -3}\n')
    result = runner.invoke(app, ["import", "items", str(bad), "--data-dir", str(data)], env=ENV)
    assert result.exit_code == 2
    assert "line 2" in result.output.lower()
    engine, _ = Engine.open(data, environ=ENV)
    try:
        assert engine.get_item("x-3") is not None
        assert engine.get_item("y-1") is None  # nothing from the bad file was applied
    finally:
        engine.close()


def test_replay_rebuilds_profiles_equal_to_live(tmp_path: Path) -> None:
    data = tmp_path / "data"
    engine, _ = Engine.open(data, environ=ENV)
    try:
        now = engine.clock()
        batch = [
            {"type": "page", "anonymousId": "a", "name": "Home"},
            {
                "type": "track",
                "anonymousId": "a",
                "event": "Product Viewed",
                "properties": {"product_id": "run-001"},
            },
            {"type": "identify", "anonymousId": "a", "userId": "u", "traits": {"x": 1}},
        ]
        engine.ingest(parse_request({"batch": batch}, kind="batch", received_at=now))
    finally:
        engine.close()
    result = runner.invoke(app, ["replay", "--data-dir", str(data)], env=ENV)
    assert result.exit_code == 0, result.output
    assert "3 events into 1 profiles; 0 differed" in result.output


def test_keys_are_printed_once_when_generated(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _, first = Engine.open(data, environ={})
    assert set(first) == {"write", "server", "admin"}
    engine, second = Engine.open(data, environ={})
    engine.close()
    assert second == {}
    stored = (data / "keys.json").read_text()
    assert first["admin"] not in stored and first["server"] not in stored


def test_experiments_list_and_report_read_the_data_directory(tmp_path: Path) -> None:
    from loopwise.decide.request import DecideRequest

    data = tmp_path / "data"
    engine, _ = Engine.open(data, environ=ENV)
    try:
        for i in range(30):
            request = DecideRequest.model_validate(
                {"user": {"anonymous_id": f"v{i}"}, "slots": [{"slot": "recommended"}]}
            )
            engine.decide(request)
        order = {
            "type": "track",
            "anonymousId": "v1",
            "event": "Order Completed",
            "properties": {"revenue": 30},
        }
        engine.ingest(parse_request(order, kind="track", received_at=engine.clock()))
    finally:
        engine.close()
    listed = runner.invoke(app, ["experiments", "list", "--data-dir", str(data), "--json"], env=ENV)
    assert listed.exit_code == 0, listed.output
    [experiment] = orjson.loads(listed.output)["experiments"]
    assert experiment["key"] == "recs-personalized" and experiment["exposed_users"] == 30
    as_json = runner.invoke(
        app,
        ["experiments", "report", "recs-personalized", "--data-dir", str(data), "--json"],
        env=ENV,
    )
    assert as_json.exit_code == 0, as_json.output
    body = orjson.loads(as_json.output)
    assert sum(arm["users"] for arm in body["arms"]) == 30
    purchase = body["metrics"][0]["results"]
    assert sum(row["conversions"] for row in purchase) == 1
    table = runner.invoke(
        app, ["experiments", "report", "recs-personalized", "--data-dir", str(data)], env=ENV
    )
    assert table.exit_code == 0, table.output
    assert "Verdict:" in table.output and "purchase" in table.output
    missing = runner.invoke(
        app,
        [
            "experiments",
            "report",
            "recs-personalized",
            "--segment",
            "nobody",
            "--data-dir",
            str(data),
        ],
        env=ENV,
    )
    assert missing.exit_code == 2 and "nobody" in missing.output


def test_keys_rotate_without_downtime_through_the_cli(tmp_path: Path) -> None:
    """create new -> both work in the running app -> revoke old -> old is 401, new still works."""
    from fastapi.testclient import TestClient

    from loopwise.api.app import create_app
    from loopwise.api.keys import KeyRing
    from tests.api.fake_engine import FakeEngine

    data = tmp_path / "data"
    ring, first = KeyRing.load_or_create(data, {})
    client = TestClient(create_app(FakeEngine(keys=ring)))

    def status(key: str) -> int:
        ring._next_check = 0.0  # the server re-checks keys.json at most once a second
        headers = {"Authorization": f"Bearer {key}"}
        return client.get("/v1/profiles/nobody", headers=headers).status_code

    created = runner.invoke(app, ["keys", "create", "--kind", "server", "--data-dir", str(data)])
    assert created.exit_code == 0, created.output
    new = created.output.strip().splitlines()[1]
    assert new.startswith("lw_server_")
    assert status(first["server"]) == 404 and status(new) == 404  # both accepted

    listed = runner.invoke(app, ["keys", "list", "--json", "--data-dir", str(data)])
    assert listed.exit_code == 0, listed.output
    assert new not in listed.output and first["server"] not in listed.output
    rows = orjson.loads(listed.output)
    servers = [row for row in rows if row["kind"] == "server"]
    assert len(servers) == 2
    old_id = next(row["id"] for row in servers if not new.startswith(row["prefix"]))

    revoked = runner.invoke(app, ["keys", "revoke", old_id, "--data-dir", str(data)])
    assert revoked.exit_code == 0, revoked.output
    assert status(first["server"]) == 401
    assert status(new) == 404

    last = runner.invoke(app, ["keys", "revoke", "nope", "--data-dir", str(data)])
    assert last.exit_code == 2 and "keys list" in last.output
