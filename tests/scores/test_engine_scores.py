"""Scores end to end on a simulated shop: trained from the log through the one fold, served on
the live profile (and equal to the training features of the same moment), used by segments and
rules, explained in decisions and /why, exported and erased with the profile, stored as
versions, through the library, the CLI and HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from loopwise.api.app import create_app
from loopwise.cli import app as cli_app
from loopwise.clock import EventTimeClock
from loopwise.decide.request import DecideRequest
from loopwise.engine import Engine
from loopwise.errors import NotFound
from loopwise.events.normalize import parse_request
from loopwise.profiles.model import Profile
from loopwise.scores.artifacts import ScoreArtifactStore
from loopwise.scores.examples import build_examples
from loopwise.scores.features import scoring_attributes
from loopwise.scores.serving import ScoreModel
from loopwise.scores.spec import nest
from loopwise.sim.runner import SimConfig, Simulation, popular_policy
from loopwise.workspace.compiled import CompiledWorkspace

ENV = {"LOOPWISE_WRITE_KEY": "w", "LOOPWISE_SERVER_KEY": "s", "LOOPWISE_ADMIN_KEY": "a"}
CAPTURE_DAY = 12


def workspace_document(category: str) -> dict[str, Any]:
    return {
        "items": "items.jsonl",
        "scores": {
            "definitions": [
                {"key": "convert"},
                {"key": "churn", "horizon_days": 5},
                {"key": f"engage.{category}"},
            ],
            "min_examples": 40,
            "max_per_person": 40,
            "trees": 40,
        },
        "slots": [
            {
                "key": "hero",
                "kind": "block",
                "variants": [
                    {"id": "welcome", "content": {"headline": "Welcome"}},
                    {"id": "offer", "content": {"headline": "10% off today"}},
                ],
                "rules": [
                    {
                        "id": "likely-buyers",
                        "when": {"profile.scores.convert": {"$gte": 0.999}},
                        "then": {"variant": "offer"},
                    }
                ],
            }
        ],
    }


class Shop:
    def __init__(self, engine: Engine, data_dir: Path, workspace: Path) -> None:
        self.engine = engine
        self.data_dir = data_dir
        self.workspace = workspace
        self.captured: dict[str, Profile] = {}
        self.metadata: dict[str, Any] = {}


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    data_dir = tmp_path_factory.mktemp("scores") / "data"
    data_dir.mkdir()
    sim = Simulation(SimConfig(n_users=150, days=24, seed=4))
    with (data_dir / "items.jsonl").open("w", encoding="utf-8") as out:
        for item in sim.catalog.items:
            out.write(json.dumps(item.to_record()) + "\n")
    category = sim.catalog.items[0].categories[0]
    workspace = data_dir / "loopwise.yaml"
    workspace.write_text(yaml.safe_dump(workspace_document(category)), "utf-8")
    engine, _ = Engine.open(data_dir, workspace, clock=EventTimeClock(), environ=ENV, watch=False)
    shop = Shop(engine, data_dir, workspace)

    def on_day(day: int, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), 1000):
            chunk = messages[start : start + 1000]
            received = datetime.fromisoformat(chunk[-1]["timestamp"].replace("Z", "+00:00"))
            engine.ingest(parse_request({"batch": chunk}, kind="batch", received_at=received))
        if day == CAPTURE_DAY:  # the live profiles of this moment, kept (they never change)
            views = engine.services.views.profiles
            for record in engine.storage.profiles.iter():
                profile = views.get(record.id)
                if profile is not None:
                    shop.captured[record.id] = profile

    sim.run(popular_policy(sim.catalog), on_day=on_day, keep_messages=False)
    shop.metadata = engine.train_scores()
    try:
        yield shop
    finally:
        engine.close()


def served_model(shop: Shop) -> ScoreModel:
    model = shop.engine.services.scores.live.model
    assert model is not None
    return model


def test_training_reports_and_stores_a_version(shop: Shop) -> None:
    metadata = shop.metadata
    assert set(metadata["scores"]) == {"convert", "churn", f"engage.{_category(shop)}"}
    for key in metadata["scores"]:
        overall = metadata["report"][key]["overall"]
        assert {"auc", "pr_auc", "brier", "ece", "calibration"} <= set(overall)
        assert 0.0 <= overall["brier"] <= 1.0
        assert overall["n"] > 0
        assert metadata["report"][key]["calibration_method"] in ("isotonic", "platt")
    convert = metadata["report"]["convert"]
    # the trees rank better than chance on moments they never saw (and the slices are in order)
    assert convert["overall"]["auc"] > 0.55
    slices = convert["slices"]
    assert slices["train"]["to"] <= slices["calibration"]["from"]
    assert slices["calibration"]["to"] <= slices["test"]["from"]
    store = ScoreArtifactStore(shop.data_dir)
    version = store.current()
    assert version is not None and version.name == metadata["version"]
    assert {p.name for p in version.plots()} == {f"calibration-{k}.png" for k in metadata["scores"]}
    assert version.plots()[0].read_bytes().startswith(b"\x89PNG")
    assert version.document()["scores"][0]["model"].startswith("tree")


def _category(shop: Shop) -> str:
    keys = [d.key for d in shop.engine.workspace.scores.definitions]
    return next(k for k in keys if k.startswith("engage.")).split(".", 1)[1]


def test_served_features_equal_the_training_features_of_the_same_moment(shop: Shop) -> None:
    """The features served for a live profile (captured mid-run, and now) equal the features
    training recomputes for that moment by replaying the log through the fold."""
    engine = shop.engine
    model = served_model(shop)
    compiled = engine.services.workspace.compiled
    plain = CompiledWorkspace(compiled.workspace, compiled.strategies, compiled.clusters)
    settings = compiled.workspace.scores.model_copy(update={"max_per_person": 10_000})
    examples = build_examples(
        engine.storage.events.iter, plain, engine.services.catalog.items, settings, sample_rate=1.0
    )
    by_moment: dict[tuple[str, Any], int] = {}
    for i, (person, at) in enumerate(zip(examples.persons, examples.at, strict=True)):
        by_moment[(person, at)] = i  # the last event of a moment wins (the state after it)
    live = {r.id: engine.services.views.profiles.get(r.id) for r in engine.storage.profiles.iter()}
    cases = [("captured", p) for p in shop.captured.values()]
    cases += [("now", p) for p in live.values() if p is not None]
    checked = 0
    for _, profile in cases:
        index = by_moment.get((profile.id, profile.last_seen))
        if index is None:  # that person's later events were merged away: not comparable
            continue
        served = model.features(profile, compiled.settings)
        trained = model.spec.vector(examples.attributes[index])
        assert np.array_equal(served, trained), profile.id
        checked += 1
    assert checked >= len(cases) * 0.9
    assert checked > 50
    # and the served value of a profile is the model's prediction on those features
    some = next(p for p in live.values() if p is not None)
    view = engine.profile_view(some.id)
    assert view is not None
    expected = model.predict(model.spec.vector(scoring_attributes(some, compiled.settings)))
    assert view["profile"]["scores"]["convert"] == expected["convert"]


def test_scores_are_recomputed_when_a_profile_changes(shop: Shop) -> None:
    engine = shop.engine
    pid = next(iter(shop.captured))
    before = engine.services.views.profiles.get(pid)
    assert before is not None
    at = before.last_seen + timedelta(minutes=1)
    message = {
        "type": "track",
        "anonymousId": before.anonymous_ids[0],
        "event": "Product Added",
        "properties": {"product_id": before.recently_viewed[0] if before.recently_viewed else "x"},
        "timestamp": at.isoformat(),
    }
    engine.ingest(parse_request(message, kind="track", received_at=at))
    after = engine.services.views.profiles.get(pid)
    assert after is not None and after is not before
    # computed after the commit, before anyone read the profile
    assert after.scores_memo is not None
    assert after.scores_memo[0] is served_model(shop)
    view = engine.profile_view(pid)
    assert view is not None
    assert nest(after.scores_memo[2]) == view["profile"]["scores"]


def _decide(engine: Engine, anonymous_id: str) -> dict[str, Any]:
    request = DecideRequest.model_validate(
        {"user": {"anonymous_id": anonymous_id}, "slots": [{"slot": "hero"}]}
    )
    decided: dict[str, Any] = engine.decide(request).model_dump(mode="json")
    return decided


def test_rules_and_segments_read_scores_and_decisions_explain_them(shop: Shop) -> None:
    engine = shop.engine
    people = []
    for record in engine.storage.profiles.iter():
        view = engine.profile_view(record.id)
        if view is not None and view["profile"]["anonymous_ids"]:
            anonymous_id = view["profile"]["anonymous_ids"][0]
            # scores steer only the decisions of people who let them personalize
            if engine.get_consent(anonymous_id)["categories"].get("personalization"):
                people.append((view["profile"]["scores"]["convert"], anonymous_id))
    people.sort()
    threshold = people[len(people) // 2][0]
    high, low = people[-1], people[0]
    assert high[0] >= threshold > low[0]
    document = engine.workspace_document()
    document["slots"][0]["rules"][0]["when"] = {"profile.scores.convert": {"$gte": threshold}}
    document["segments"] = [
        {
            "key": "likely_buyer",
            "name": "Likely buyer",
            "condition": {"profile.scores.convert": {"$gte": threshold}},
        }
    ]
    engine.replace_workspace(document)
    decided = _decide(engine, high[1])
    slot = decided["slots"][0]
    assert slot["variant"]["id"] == "offer"
    assert slot["rule"] == "likely-buyers"
    assert "likely_buyer" in decided["segments"]
    assert slot["ai_influenced"] is True and decided["ai_influenced"] is True
    scored = [r for r in slot["reasons"] if r.get("ref") == "scores.convert"]
    assert len(scored) == 1
    text = scored[0]["text"]
    assert f"{high[0]:.0%}" in text and "purchase within 7 days" in text
    assert "mostly from:" in text and ("raises it" in text or "lowers it" in text)
    client = TestClient(create_app(engine))
    why = client.get(
        f"/v1/decisions/{decided['decision_id']}/why", headers={"Authorization": "Bearer w"}
    )
    assert why.status_code == 200, why.text
    reasons = why.json()["slots"][0]["reasons"]
    assert any("mostly from:" in r and "score convert" in r for r in reasons)
    low_decided = _decide(engine, low[1])
    assert low_decided["slots"][0]["variant"]["id"] == "welcome"
    assert not any(r.get("ref") == "scores.convert" for r in low_decided["slots"][0]["reasons"])
    assert "likely_buyer" not in low_decided["segments"]


def test_the_profile_api_shows_scores_and_export_carries_them(shop: Shop) -> None:
    engine = shop.engine
    pid = next(iter(shop.captured))
    client = TestClient(create_app(engine))
    response = client.get(f"/v1/profiles/{pid}", headers={"Authorization": "Bearer s"})
    assert response.status_code == 200, response.text
    scores = response.json()["profile"]["scores"]
    assert set(scores) == {"convert", "churn", "engage"}
    assert 0.0 <= scores["convert"] <= 1.0
    assert set(scores["engage"]) == {_category(shop)}
    exported = engine.export_profile(pid)
    assert exported["profile"]["scores"] == scores


def test_erasure_takes_the_scores_with_the_profile(shop: Shop) -> None:
    engine = shop.engine
    pid = list(shop.captured)[-1]
    assert engine.profile_view(pid)["profile"]["scores"]  # type: ignore[index]
    engine.erase_profile(pid)
    assert engine.profile_view(pid) is None
    assert engine.services.views.profiles.get(pid) is None
    with pytest.raises(NotFound):
        engine.export_profile(pid)


def test_a_restarted_engine_serves_the_stored_version(shop: Shop) -> None:
    engine = shop.engine
    fresh = Engine(engine.workspace, engine.storage, data_dir=shop.data_dir, clock=engine.clock)
    assert fresh.services.scores.live.model is None
    assert fresh.services.scores.load_current() == shop.metadata["version"]
    pid = next(r.id for r in engine.storage.profiles.iter())
    a = engine.profile_view(pid)["profile"]["scores"]  # type: ignore[index]
    b = fresh.profile_view(pid)["profile"]["scores"]  # type: ignore[index]
    assert a == b
    # another process makes a version current: refresh serves it
    assert fresh.services.scores.refresh() is False


def test_cli_train_and_evaluate_scores(shop: Shop, tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["--data-dir", str(shop.data_dir), "--workspace", str(shop.workspace)]
    result = runner.invoke(
        cli_app, ["evaluate-scores", *args, "--output", str(tmp_path / "ev")], env=ENV
    )
    assert result.exit_code == 0, result.output
    assert "AUC" in result.output and "Brier" in result.output
    report = json.loads((tmp_path / "ev" / "report.json").read_text())
    assert report["version"] == shop.metadata["version"]
    assert "auc" in report["report"]["convert"]["overall"]
    assert (tmp_path / "ev" / "calibration-convert.png").read_bytes().startswith(b"\x89PNG")
    result = runner.invoke(cli_app, ["train-scores", *args, "--json"], env=ENV)
    assert result.exit_code == 0, result.output
    trained = json.loads(result.output)
    assert trained["version"] != shop.metadata["version"]
    listing = runner.invoke(cli_app, ["evaluate-scores", *args, "--list"], env=ENV)
    assert listing.exit_code == 0 and trained["version"] in listing.output
    # the engine that was already running picks the new version up
    assert shop.engine.services.scores.refresh() is True
    assert served_model(shop).version == trained["version"]


def test_admin_api_lists_and_evaluates_versions(shop: Shop) -> None:
    client = TestClient(create_app(shop.engine))
    admin = {"Authorization": "Bearer a"}
    listing = client.get("/v1/admin/scores", headers=admin)
    assert listing.status_code == 200, listing.text
    assert listing.json()["serving"] == served_model(shop).version
    assert client.get("/v1/admin/scores", headers={"Authorization": "Bearer s"}).status_code == 403
    evaluated = client.post("/v1/admin/scores/evaluate", headers=admin)
    assert evaluated.status_code == 200, evaluated.text
    assert "brier" in evaluated.json()["report"]["convert"]["overall"]
    bad = client.post("/v1/admin/scores/evaluate", headers=admin, json={"version": 3})
    assert bad.status_code == 400
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert bad.json()["field"] == "version"
    unknown = client.post("/v1/admin/scores/evaluate", headers=admin, json={"version": "v99-x"})
    assert unknown.status_code == 404


def test_an_engine_opened_on_a_trained_data_dir_serves_without_lightgbm(shop: Shop) -> None:
    """Start-up loads the current version as numpy arrays; LightGBM is imported only for an
    explanation (and training)."""
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from loopwise.engine import Engine\n"
        f"engine, _ = Engine.open(Path({str(shop.data_dir)!r}), Path({str(shop.workspace)!r}), "
        f"environ={ENV!r}, watch=False)\n"
        "print(engine.services.scores.live.version, 'lightgbm' in sys.modules)\n"
        "engine.close()\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    version, imported = out.stdout.split()
    assert version == served_model(shop).version
    assert imported == "False"
