"""Experiments through the library engine: assignment, exposures, holdout, merges and results."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from loopwise.catalog.importer import read_items
from loopwise.clock import FixedClock
from loopwise.config import SAMPLE_WORKSPACE, load_workspace_file, parse_workspace
from loopwise.decide.request import DecideRequest
from loopwise.engine import Engine
from loopwise.errors import ConfigError, NotFound
from loopwise.events.normalize import parse_request
from loopwise.storage.codec import encode_exposure
from loopwise.storage.memory import MemoryStorage
from loopwise.storage.sqlite import SqliteStorage

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
KEY = "recs-personalized"


def make_engine(clock: FixedClock, storage: Any = None, **changes: Any) -> Engine:
    document = load_workspace_file(SAMPLE_WORKSPACE).document()
    document.update(changes)
    workspace = parse_workspace(document)
    engine = Engine(workspace, storage or MemoryStorage(), clock=clock, seed=1)
    if not engine.list_items(0, 1)[0]:
        engine.put_items(list(read_items(SAMPLE_WORKSPACE.parent / str(workspace.items))))
    return engine


@pytest.fixture()
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture()
def engine(clock: FixedClock) -> Engine:
    return make_engine(clock)


def send(engine: Engine, clock: FixedClock, kind: str, **message: Any) -> None:
    message.setdefault("messageId", str(uuid.uuid4()))
    message.setdefault("timestamp", clock().isoformat())
    engine.ingest(parse_request(message, kind=kind, received_at=clock()))


def decide(engine: Engine, slots: tuple[str, ...] = ("recommended",), **user: str) -> Any:
    request = DecideRequest.model_validate(
        {"user": user, "context": {}, "slots": [{"slot": s} for s in slots]}
    )
    return engine.decide(request)


def arm_of(response: Any, slot: str = "recommended") -> str | None:
    decision = next(s for s in response.slots if s.slot == slot)
    reason = next((r for r in decision.reasons if r.kind == "experiment"), None)
    return reason.ref.split(":")[1] if reason is not None and reason.ref else None


def exposures(engine: Engine, key: str = KEY) -> list[dict[str, Any]]:
    engine.storage.write(lambda uow: None)
    return [orjson.loads(encode_exposure(e)) for e in engine.storage.exposures.iter(key)]


def test_arm_is_deterministic_and_overrides_the_slot_strategy(engine: Engine) -> None:
    arms = {}
    for i in range(40):
        first = decide(engine, anonymous_id=f"v{i}")
        second = decide(engine, anonymous_id=f"v{i}")
        arms[i] = arm_of(first)
        assert arm_of(second) == arms[i]
        strategy = next(s for s in first.slots if s.slot == "recommended").strategy
        assert strategy == {"control": "popular", "personalized": "category_affinity"}[arms[i]]
    assert set(arms.values()) == {"control", "personalized"}
    # another engine (a restart, another process) hashes the same way
    other = make_engine(FixedClock(T0))
    assert all(arm_of(decide(other, anonymous_id=f"v{i}")) == arms[i] for i in range(40))


def test_exposure_once_per_user_and_only_when_the_slot_is_served(engine: Engine) -> None:
    decide(engine, ("hero",), anonymous_id="x1")
    assert exposures(engine) == []  # the experiment's slot was not requested
    for _ in range(3):
        response = decide(engine, ("hero", "recommended"), anonymous_id="x1")
    rows = exposures(engine)
    assert len(rows) == 1
    assert rows[0]["arm"] == arm_of(response)
    assert rows[0]["profile_id"] == response.profile_id
    assert rows[0]["exposed_at"].startswith("2026-11-02T09:00")
    assert engine.list_experiments()[0]["exposed_users"] == 1


def test_anonymous_visitor_keeps_the_arm_after_identify(engine: Engine, clock: FixedClock) -> None:
    before = {f"anon{i}": arm_of(decide(engine, anonymous_id=f"anon{i}")) for i in range(20)}
    for anon in before:
        clock.advance(5)
        send(engine, clock, "identify", anonymousId=anon, userId=f"user-{anon}")
    after = {anon: arm_of(decide(engine, user_id=f"user-{anon}")) for anon in before}
    assert after == before
    assert len(exposures(engine)) == 20


def test_merge_into_an_older_profile_keeps_the_first_exposure(
    engine: Engine, clock: FixedClock
) -> None:
    # a known user exposed on one device, then an anonymous visit exposed elsewhere
    send(engine, clock, "track", userId="u-old", event="Product Viewed", properties={})
    known = decide(engine, user_id="u-old")
    candidates = [f"dev{i}" for i in range(50)]
    anon = next(a for a in candidates if arm_of(decide(engine, anonymous_id=a)) != arm_of(known))
    clock.advance(60)
    send(engine, clock, "identify", anonymousId=anon, userId="u-old")  # merges the anon profile
    rows = [r for r in exposures(engine) if r["profile_id"] == known.profile_id]
    assert len(rows) == 1 and rows[0]["arm"] == arm_of(known)
    assert arm_of(decide(engine, anonymous_id=anon)) == arm_of(known)


def test_forced_arm_is_served_without_an_exposure(clock: FixedClock) -> None:
    document = load_workspace_file(SAMPLE_WORKSPACE).document()
    experiment = document["experiments"][0]
    experiment["force"] = {"qa-1": "personalized", "qa-2": "control"}
    engine = make_engine(clock, experiments=[experiment])
    assert arm_of(decide(engine, anonymous_id="qa-1")) == "personalized"
    assert arm_of(decide(engine, user_id="qa-2")) == "control"
    assert exposures(engine) == []


def test_draft_experiment_changes_nothing(clock: FixedClock) -> None:
    document = load_workspace_file(SAMPLE_WORKSPACE).document()
    experiment = {**document["experiments"][0], "status": "draft"}
    engine = make_engine(clock, experiments=[experiment])
    response = decide(engine, anonymous_id="v1")
    assert arm_of(response) is None
    assert next(s for s in response.slots if s.slot == "recommended").strategy == (
        "category_affinity"
    )
    assert exposures(engine) == []


def test_holdout_users_get_impersonal_decisions_and_no_experiment(
    clock: FixedClock,
) -> None:
    engine = make_engine(clock, holdout={"percent": 50})
    held, personalized = [], []
    for i in range(40):
        response = decide(engine, anonymous_id=f"h{i}")
        decision = next(s for s in response.slots if s.slot == "recommended")
        if any(r.kind == "holdout" for r in decision.reasons):
            held.append(i)
            assert arm_of(response) is None
            assert decision.strategy == "popular" and not decision.ai_influenced
        else:
            personalized.append(i)
    assert held and personalized
    rows = exposures(engine, "holdout")
    assert {r["arm"] for r in rows} == {"holdout", "personalized"}
    assert sum(r["arm"] == "holdout" for r in rows) == len(held)
    assert len(exposures(engine)) == len(personalized)  # holdout users are not in experiments
    results = engine.experiment_results("holdout")
    assert results["control"] == "holdout"
    assert [a["key"] for a in results["arms"]] == ["holdout", "personalized"]


def test_events_before_exposure_do_not_count(engine: Engine, clock: FixedClock) -> None:
    order = {"revenue": 40.0}
    send(engine, clock, "track", anonymousId="b1", event="Order Completed", properties=order)
    clock.advance(60)
    decide(engine, anonymous_id="b1")
    results = engine.experiment_results(KEY)
    rows = {r["arm"]: r for r in results["metrics"][0]["results"]}
    assert sum(r["users"] for r in rows.values()) == 1
    assert sum(r["conversions"] for r in rows.values()) == 0
    clock.advance(60)
    send(engine, clock, "track", anonymousId="b1", event="Order Completed", properties=order)
    results = engine.experiment_results(KEY)
    revenue = {r["arm"]: r for r in results["metrics"][1]["results"]}
    assert sum(r["sum"] for r in revenue.values()) == 40.0


def test_unknown_experiment_or_segment_is_not_found(engine: Engine) -> None:
    with pytest.raises(NotFound) as missing:
        engine.experiment_results("nope")
    assert missing.value.field == "key"
    with pytest.raises(NotFound) as segment:
        engine.experiment_results(KEY, "nobody")
    assert segment.value.field == "segment"
    with pytest.raises(NotFound):
        engine.experiment_results("holdout")  # the sample's holdout is off


def test_unknown_arm_strategy_is_a_config_error(clock: FixedClock) -> None:
    document = load_workspace_file(SAMPLE_WORKSPACE).document()
    experiment = document["experiments"][0]
    experiment["arms"][1]["strategy"] = "nonexistent"
    with pytest.raises(ConfigError) as error:
        make_engine(clock, experiments=[experiment])
    assert error.value.field == "experiments[0].arms[1].strategy"


def test_exposures_survive_a_restart_on_sqlite(clock: FixedClock, tmp_path: Any) -> None:
    engine = make_engine(clock, SqliteStorage(tmp_path / "db.sqlite"))
    arm = arm_of(decide(engine, anonymous_id="r1"))
    engine.close()
    reopened = make_engine(clock, SqliteStorage(tmp_path / "db.sqlite"))
    try:
        assert reopened.list_experiments()[0]["exposed_users"] == 1
        assert arm_of(decide(reopened, anonymous_id="r1")) == arm
        assert len(exposures(reopened)) == 1
    finally:
        reopened.close()


def test_seeded_traffic_where_personalized_converts_more_shows_in_results(
    engine: Engine, clock: FixedClock
) -> None:
    rng = random.Random(5)
    rates = {"control": 0.10, "personalized": 0.30}
    for i in range(600):
        clock.advance(1)
        user = f"t{i}"
        arm = arm_of(decide(engine, anonymous_id=user))
        assert arm is not None
        if rng.random() < rates[arm]:
            send(
                engine,
                clock,
                "track",
                anonymousId=user,
                event="Order Completed",
                properties={"revenue": 50.0},
            )
    results = engine.experiment_results(KEY)
    assert results["srm"]["flagged"] is False
    purchase = {r["arm"]: r for r in results["metrics"][0]["results"]}
    treated = purchase["personalized"]
    assert treated["value"] > purchase["control"]["value"]
    assert treated["p_value"] < 0.01 and treated["chance_to_win"] > 0.99
    assert treated["lift"]["ci_low"] > 0
    assert results["verdict"].startswith("personalized beats control")
    first_segment = results["segments"][0] if results["segments"] else None
    if first_segment is not None:
        assert {"segment", "metric", "arm", "p_adjusted"} <= set(first_segment)
    assert clock() - T0 < timedelta(hours=1)


def test_results_over_http_on_the_real_engine(clock: FixedClock) -> None:
    from fastapi.testclient import TestClient

    from loopwise.api.app import create_app
    from loopwise.api.keys import KeyKind, KeyRing

    document = load_workspace_file(SAMPLE_WORKSPACE).document()
    workspace = parse_workspace(document)
    keys = KeyRing.from_plain({KeyKind.SERVER: ["srv"], KeyKind.WRITE: ["wr"]})
    engine = Engine(workspace, MemoryStorage(), clock=clock, keys=keys, seed=1)
    engine.put_items(list(read_items(SAMPLE_WORKSPACE.parent / str(workspace.items))))
    with TestClient(create_app(engine)) as client:
        auth = {"Authorization": "Bearer srv"}
        for i in range(10):
            reply = client.post(
                "/v1/decide",
                json={"user": {"anonymous_id": f"w{i}"}, "slots": [{"slot": "recommended"}]},
                headers=auth,
            )
            assert reply.status_code == 200, reply.text
        listed = client.get("/v1/experiments", headers=auth).json()["experiments"]
        assert [e["key"] for e in listed] == [KEY] and listed[0]["exposed_users"] == 10
        body = client.get(f"/v1/experiments/{KEY}/results", headers=auth).json()
        assert set(body) == {
            "experiment",
            "slot",
            "status",
            "control",
            "segment",
            "arms",
            "srm",
            "metrics",
            "segments",
            "verdict",
        }
        assert body["slot"] == "recommended" and body["control"] == "control"
        assert sum(a["users"] for a in body["arms"]) == 10
        assert [m["key"] for m in body["metrics"]] == ["purchase", "revenue"]
        segment = client.get(
            f"/v1/experiments/{KEY}/results",
            params={"segment": "first_time_visitor"},
            headers=auth,
        )
        assert segment.status_code == 200 and segment.json()["segment"] == "first_time_visitor"
        missing = client.get("/v1/experiments/nope/results", headers=auth)
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")
        assert (
            client.get("/v1/experiments", headers={"Authorization": "Bearer wr"}).status_code == 403
        )


def test_targeting_can_name_the_workspaces_saved_groups(clock: FixedClock) -> None:
    """An experiment's targeting compiles with the workspace's saved groups ($savedGroup,
    $inGroup): people in the group take part, others are never exposed."""
    document = load_workspace_file(SAMPLE_WORKSPACE).document()
    for experiment in document["experiments"]:
        if experiment["key"] == KEY:
            experiment["targeting"] = {"$savedGroup": {"id": "beta"}}
            experiment["coverage"] = 1.0
    groups = {"beta": {"type": "list", "attributeKey": "profile.user_id", "values": ["in-1"]}}
    engine = make_engine(clock, experiments=document["experiments"], saved_groups=groups)
    for user in ("in-1", "out-1"):
        send(engine, clock, "identify", userId=user, traits={"plan": "free"})
    assert arm_of(decide(engine, user_id="in-1")) is not None
    assert arm_of(decide(engine, user_id="out-1")) is None
    assert [e["profile_id"] for e in exposures(engine)] == [engine.resolve("in-1")]
