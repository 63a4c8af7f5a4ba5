"""The engine with published K-Means clusters: segments cluster_<n> from ingested events, kept
current as profiles change, durable across restarts and targetable by rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from loopwise.catalog.importer import read_items
from loopwise.clock import FixedClock
from loopwise.config import SAMPLE_WORKSPACE, load_workspace_file
from loopwise.decide.request import DecideRequest
from loopwise.engine import Engine
from loopwise.errors import Conflict
from loopwise.storage.memory import MemoryStorage
from loopwise.workspace.service import CLUSTERS_CONFIG_KEY
from tests.segments.population import ingest, ingest_groups, runner_messages

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture()
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture()
def engine(clock: FixedClock) -> Engine:
    workspace = load_workspace_file(SAMPLE_WORKSPACE)
    engine = Engine(workspace, MemoryStorage(), clock=clock, seed=1)
    engine.put_items(list(read_items(SAMPLE_WORKSPACE.parent / str(workspace.items))))
    return engine


@pytest.fixture()
def clustered(engine: Engine, clock: FixedClock) -> tuple[Engine, dict[str, str]]:
    """Engine with 3 x 10 visitors, clustered; returns the cluster key of each group."""
    members = ingest_groups(engine, clock, per_group=10)
    clock.advance(60)
    report = engine.cluster(2, 6, seed=0)
    assert report["k"] == 3
    keys = {}
    for group, ids in members.items():
        seen = set()
        for anonymous_id in ids:
            view = engine.profile_view(anonymous_id)
            assert view is not None
            seen.add(view["profile"]["cluster"])
        assert len(seen) == 1, (group, seen)  # every visitor of a kind in one cluster
        keys[group] = seen.pop()
    assert len(set(keys.values())) == 3
    return engine, keys


def decide(engine: Engine, anonymous_id: str, slots: list[str]) -> dict[str, Any]:
    request = DecideRequest.model_validate(
        {"user": {"anonymous_id": anonymous_id}, "slots": [{"slot": s} for s in slots]}
    )
    return engine.decide(request).model_dump(mode="json")


def test_clusters_become_segments_in_profile_view_and_decide(
    clustered: tuple[Engine, dict[str, str]],
) -> None:
    engine, keys = clustered
    names = {c["key"]: c["name"] for c in engine.clusters()["clusters"]}
    assert "running" in names[keys["runner"]].lower()
    assert "lapsed" in names[keys["hiker"]].lower()
    view = engine.profile_view("runner-3")
    assert view is not None
    assert keys["runner"] in view["segments"]
    assert keys["yoga"] not in view["segments"]
    body = decide(engine, "yoga-2", ["hero"])
    assert keys["yoga"] in body["segments"]
    assert {keys["runner"], keys["hiker"]}.isdisjoint(body["segments"])


def test_membership_follows_new_events_and_is_recorded(
    clustered: tuple[Engine, dict[str, str]], clock: FixedClock
) -> None:
    engine, keys = clustered
    before = engine.profile_view("yoga-4")
    assert before is not None and before["profile"]["cluster"] == keys["yoga"]
    clock.advance(4 * 86_400)
    ingest(engine, clock, runner_messages(engine, "yoga-4", clock(), 4))  # starts buying running
    after = engine.profile_view("yoga-4")
    assert after is not None
    assert after["profile"]["cluster"] == keys["runner"]
    assert keys["runner"] in after["segments"] and keys["yoga"] not in after["segments"]
    changes = {(h["segment"], h["change"]) for h in after["segment_history"]}
    assert (keys["yoga"], "left") in changes
    assert (keys["runner"], "entered") in changes


def test_published_clusters_survive_a_restart_and_a_workspace_change(
    clustered: tuple[Engine, dict[str, str]], clock: FixedClock
) -> None:
    engine, keys = clustered
    stored = engine.storage.config.get(CLUSTERS_CONFIG_KEY)
    assert stored is not None and stored["k"] == 3
    restarted = Engine(engine.workspace, engine.storage, clock=clock)
    view = restarted.profile_view("hiker-1")
    assert view is not None and keys["hiker"] in view["segments"]
    restarted.put_segment("big", {"name": "Big", "condition": {"profile.purchases": {"$gte": 9}}})
    view = restarted.profile_view("hiker-1")
    assert view is not None and keys["hiker"] in view["segments"]
    assert restarted.clusters()["published"] is True


def test_a_rule_targets_a_cluster_on_the_next_decision(
    clustered: tuple[Engine, dict[str, str]],
) -> None:
    engine, keys = clustered
    slot = {
        "kind": "block",
        "variants": [{"id": "plain", "content": {}}, {"id": "vip", "content": {}}],
        "default_variant": "plain",
        "rules": [{"id": "vip", "segments": [keys["runner"]], "then": {"variant": "vip"}}],
    }
    engine.put_slot("offer", slot)
    runner = decide(engine, "runner-0", ["offer"])["slots"][0]
    assert runner["variant"]["id"] == "vip"
    names = {c["key"]: c["name"] for c in engine.clusters()["clusters"]}
    assert any(names[keys["runner"]] in r["text"] for r in runner["reasons"])
    assert decide(engine, "yoga-0", ["offer"])["slots"][0]["variant"]["id"] == "plain"


def test_rules_on_unpublished_clusters_are_reported(
    clustered: tuple[Engine, dict[str, str]],
) -> None:
    engine, _ = clustered
    slot = {
        "kind": "block",
        "variants": [{"id": "a", "content": {}}],
        "rules": [{"id": "r9", "segments": ["cluster_9"], "then": {"variant": "a"}}],
    }
    engine.put_slot("later", slot)  # accepted: cluster keys are published at run time
    warnings = engine.clusters()["warnings"]
    assert len(warnings) == 1 and "cluster_9" in warnings[0]


def test_refit_keeps_keys_for_the_same_kinds_of_visitors(
    clustered: tuple[Engine, dict[str, str]], clock: FixedClock
) -> None:
    engine, keys = clustered
    clock.advance(3600)
    engine.cluster(2, 6, seed=5)
    for group, key in keys.items():
        view = engine.profile_view(f"{group}-0")
        assert view is not None and view["profile"]["cluster"] == key


def test_too_few_profiles_is_refused_and_nothing_is_published(
    engine: Engine, clock: FixedClock
) -> None:
    ingest_groups(engine, clock, per_group=3)
    with pytest.raises(Conflict, match="at least 20"):
        engine.cluster()
    assert engine.storage.config.get(CLUSTERS_CONFIG_KEY) is None
    assert engine.clusters() == {"published": False, "clusters": [], "warnings": []}
    view = engine.profile_view("runner-0")
    assert view is not None and "cluster" not in view["profile"]


def test_a_profile_without_clusters_published_has_no_cluster_attribute(
    engine: Engine, clock: FixedClock
) -> None:
    ingest_groups(engine, clock, per_group=1)
    clock.advance(timedelta(minutes=1).total_seconds())
    view = engine.profile_view("yoga-0")
    assert view is not None and "cluster" not in view["profile"]


def test_a_damaged_stored_model_is_skipped_and_can_be_replaced(
    engine: Engine, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    ingest_groups(engine, clock, per_group=8)
    engine.storage.write(lambda uow: uow.config.put(CLUSTERS_CONFIG_KEY, {"v": 1, "k": 3}))
    restarted = Engine(engine.workspace, engine.storage, clock=clock)
    assert restarted.clusters()["published"] is False
    assert "clusters not loaded" in caplog.text
    assert restarted.cluster(2, 5)["k"] == 3
    again = Engine(engine.workspace, engine.storage, clock=clock)
    assert again.clusters()["k"] == 3
