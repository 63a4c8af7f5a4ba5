"""Off-policy evaluation from Loopwise's own decision log: library, HTTP and CLI, with the
zero-support refusal."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from loopwise.api.app import create_app
from loopwise.api.keys import KeyKind, KeyRing
from loopwise.cli import app
from loopwise.clock import FixedClock
from loopwise.config import Workspace
from loopwise.decide.request import DecideRequest
from loopwise.engine import Engine
from loopwise.ope.evaluate import NotEstimable
from loopwise.storage.memory import MemoryStorage
from tests.api.conftest import ADMIN, SERVER, bearer
from tests.bandits.conftest import T0, bandit_workspace, decide, run_loop

RATES = {"a": 0.1, "b": 0.4, "c": 0.2}


def _workspace() -> Workspace:
    """hero: a bandit still warming up (uniform, propensity 1/3); banner: a fixed slot."""
    document = bandit_workspace(warmup=100_000).model_dump(mode="json", exclude_none=True)
    document["slots"].append(
        {
            "key": "banner",
            "kind": "block",
            "variants": [{"id": "x", "content": {}}, {"id": "y", "content": {}}],
        }
    )
    return Workspace.model_validate(document)


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    clock = FixedClock(T0)
    ring = KeyRing.from_plain({KeyKind.SERVER: [SERVER], KeyKind.ADMIN: [ADMIN]})
    engine = Engine(_workspace(), MemoryStorage(), keys=ring, clock=clock, seed=11)
    run_loop(engine, clock, RATES, 1500, seed=12)
    banner = {"user": {"anonymous_id": "v1"}, "slots": [{"slot": "banner"}]}
    engine.decide(DecideRequest.model_validate(banner))
    engine.services.decide.flush()
    yield engine


def test_a_fixed_variant_is_estimated_near_its_true_rate(engine: Engine) -> None:
    report = engine.run_ope({"policy": "variant:b", "slot": "hero", "bootstrap": 300})
    assert report["rounds"] == 1500
    for name in ("ipw", "snipw", "dr"):
        estimate = report["estimates"][name]
        assert estimate["interval"]["lower"] < 0.4 < estimate["interval"]["upper"], name
        assert estimate["value"] == pytest.approx(0.4, abs=0.06)
    worse = engine.run_ope({"policy": "variant:a", "slot": "hero", "bootstrap": 300})
    assert worse["estimates"]["ipw"]["value"] < report["estimates"]["ipw"]["value"]


def test_logged_policy_estimates_the_observed_rate(engine: Engine) -> None:
    report = engine.run_ope({"policy": "logged", "slot": "hero", "bootstrap": 200})
    observed = report["logged_reward_rate"]
    assert report["estimates"]["ipw"]["value"] == pytest.approx(observed)
    assert report["estimates"]["snipw"]["value"] == pytest.approx(observed)


def test_policy_documents_and_the_live_bandit(engine: Engine) -> None:
    document = {"variants": {"b": 0.5, "c": 0.5}}
    report = engine.run_ope({"policy": document, "slot": "hero", "bootstrap": 200})
    assert report["estimates"]["ipw"]["value"] == pytest.approx(0.3, abs=0.06)
    live = engine.run_ope({"policy": "bandit", "slot": "hero", "bootstrap": 200})
    assert live["estimates"]["ipw"]["value"] == pytest.approx(0.7 / 3, abs=0.05)  # warming up


def test_zero_support_is_refused(engine: Engine) -> None:
    with pytest.raises(NotEstimable, match="zero support") as caught:
        engine.run_ope({"policy": "variant:y", "slot": "banner"})
    assert caught.value.status == 422
    assert caught.value.extra["unsupported_actions"] == ["y"]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"policy": "variant:y", "slot": "banner"}, 422, "policy"),
        ({"policy": "uniform", "slot": "nope"}, 404, "slot"),
        ({"policy": "uniform"}, 400, "slot"),  # two block slots were decided
        ({"policy": "variant:zzz", "slot": "hero"}, 400, "policy"),
        ({"policy": {"variants": {"a": 0.2}}, "slot": "hero"}, 400, "policy.variants"),
        ({"policy": "uniform", "slot": "hero", "reward": "likes"}, 400, "reward"),
        ({"policy": "uniform", "slot": "hero", "to": "2000-01-01"}, 422, "slot"),
        ({"slot": "hero"}, 400, "policy"),
    ],
)
def test_http_problems(engine: Engine, body: dict[str, Any], status: int, field: str) -> None:
    with TestClient(create_app(engine)) as client:
        response = client.post("/v1/admin/ope", headers=bearer(ADMIN), json=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["field"] == field


def test_http_estimates_and_bandit_state(engine: Engine) -> None:
    with TestClient(create_app(engine)) as client:
        response = client.post(
            "/v1/admin/ope",
            headers=bearer(ADMIN),
            json={"policy": "uniform", "slot": "hero", "from": "2026-11-01T00:00:00Z"},
        )
        assert response.status_code == 200, response.text
        assert set(response.json()["estimates"]) == {"ipw", "snipw", "dr"}
        assert client.post("/v1/admin/ope", headers=bearer(SERVER), json={}).status_code == 403
        state = client.get("/v1/admin/bandits", headers=bearer(ADMIN)).json()["bandits"]
    assert state[0]["slot"] == "hero"


def test_cli_on_a_data_directory(tmp_path: Path) -> None:
    workspace_file = tmp_path / "loopwise.yaml"
    workspace_file.write_text(
        yaml.safe_dump(_workspace().model_dump(mode="json", exclude_none=True))
    )
    clock = FixedClock(T0)
    engine, _ = Engine.open(tmp_path / "data", workspace_file, clock=clock)
    run_loop(engine, clock, RATES, 300, seed=2)
    decide(engine, "v0")
    banner = {"user": {"anonymous_id": "v1"}, "slots": [{"slot": "banner"}]}
    engine.decide(DecideRequest.model_validate(banner))
    engine.close()
    policy = tmp_path / "policy.yaml"
    policy.write_text("variants: {b: 1.0}\n")
    runner = CliRunner()
    common = ["--data-dir", str(tmp_path / "data"), "--workspace", str(workspace_file)]
    result = runner.invoke(
        app,
        ["ope", "--policy", str(policy), "--slot", "hero", "--json", "--bootstrap", "200", *common],
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["policy"] == "document" and body["rounds"] == 301
    table = runner.invoke(app, ["ope", "--policy", "uniform", "--slot", "hero", *common])
    assert table.exit_code == 0 and "ipw" in table.output
    refused = runner.invoke(app, ["ope", "--policy", "variant:zzz", "--slot", "hero", *common])
    assert refused.exit_code == 2 and "unknown variant" in refused.output
    empty = runner.invoke(
        app, ["ope", "--policy", "uniform", "--slot", "hero", "--to", "2001-01-01", *common]
    )
    assert empty.exit_code == 3 and "not estimable" in empty.output
    unsupported = runner.invoke(app, ["ope", "--policy", "variant:y", "--slot", "banner", *common])
    assert unsupported.exit_code == 3 and "zero support" in unsupported.output
