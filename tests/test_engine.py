"""The engine as a library: the loop in-process, replay == live, attribution, workspace swaps."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from loopwise.catalog.importer import read_items
from loopwise.clock import FixedClock
from loopwise.config import SAMPLE_WORKSPACE, load_workspace_file
from loopwise.decide.request import DecideRequest
from loopwise.engine import Engine
from loopwise.errors import ConfigError, NotFound
from loopwise.events.normalize import parse_request
from loopwise.experiments.assignment import assign
from loopwise.profiles import codec
from loopwise.profiles.identity import profile_id_for
from loopwise.storage.memory import MemoryStorage

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


def send(engine: Engine, clock: FixedClock, kind: str, **message: Any) -> None:
    message.setdefault("messageId", str(uuid.uuid4()))
    message.setdefault("timestamp", clock().isoformat())
    engine.ingest(parse_request(message, kind=kind, received_at=clock()))


def category_items(engine: Engine, category: str) -> list[str]:
    items, _ = engine.list_items(0, 10_000)
    return [i.id for i in items if category in i.categories]


def decide(engine: Engine, **user: str) -> dict[str, Any]:
    request = DecideRequest.model_validate(
        {
            "user": user,
            "context": {"page": {"url": "https://shop.test/"}},
            "slots": [{"slot": "hero"}, {"slot": "recommended", "n": 4}],
        }
    )
    return engine.decide(request).model_dump(mode="json")


def personalized_visitor(engine: Engine) -> str:
    """An anonymous id in the sample experiment's personalized arm (the sample workspace runs
    popular vs category_affinity on the recommended slot)."""
    experiment = engine.workspace.experiment("recs-personalized")
    assert experiment is not None
    return next(
        anon
        for anon in (f"a{i}" for i in range(1, 100))
        if (found := assign(experiment.spec, profile_id_for(anon), {})) is not None
        and found.arm_key == "personalized"
    )


def test_views_of_one_category_shape_the_very_next_decision(
    engine: Engine, clock: FixedClock
) -> None:
    hiking = category_items(engine, "hiking")
    visitor = personalized_visitor(engine)
    for item_id in hiking[:3]:
        clock.advance(20)
        send(
            engine,
            clock,
            "track",
            anonymousId=visitor,
            event="Product Viewed",
            properties={"product_id": item_id},
        )
    view = engine.profile_view(visitor)
    assert view is not None and "hiking_fans" in view["segments"]
    body = decide(engine, anonymous_id=visitor)
    recommended = next(s for s in body["slots"] if s["slot"] == "recommended")
    assert {i["id"] for i in recommended["items"]} <= set(hiking)
    assert recommended["reasons"]


def test_replayed_profiles_equal_live_ones(engine: Engine, clock: FixedClock) -> None:
    running = category_items(engine, "running")
    yoga = category_items(engine, "yoga")
    send(engine, clock, "page", anonymousId="anon-x", name="Home")
    send(
        engine,
        clock,
        "track",
        anonymousId="anon-x",
        event="Product Viewed",
        properties={"product_id": running[0]},
    )
    send(
        engine,
        clock,
        "track",
        userId="u-7",
        event="Product Viewed",
        properties={"product_id": yoga[0]},
    )
    clock.advance(3600)  # a new session
    send(
        engine, clock, "identify", userId="u-7", anonymousId="anon-x", traits={"plan": "gold"}
    )  # merges two existing profiles
    send(
        engine,
        clock,
        "track",
        userId="u-7",
        event="Product Added",
        properties={"product_id": running[1]},
    )
    send(
        engine,
        clock,
        "track",
        userId="u-7",
        event="Order Completed",
        properties={
            "order_id": "o1",
            "revenue": 99.5,
            "products": [{"product_id": running[1], "price": 99.5}],
        },
    )
    send(engine, clock, "alias", userId="u-7-new", previousId="u-7")
    live = {r.id: codec.decode(r).to_record() for r in engine.storage.profiles.iter()}
    assert len(live) == 1
    rebuilt = engine.rebuild_profiles()
    assert {pid: p.to_record() for pid, p in rebuilt.profiles.items()} == live
    assert engine.replay()["differing"] == 0
    merged = engine.profile_view("u-7-new")
    assert merged is not None
    assert merged["profile"]["purchases"] == 1
    assert set(merged["identifiers"]) == {"anon-x", "u-7", "u-7-new"}


def test_conversion_without_decision_id_goes_to_the_last_decision_in_window(
    engine: Engine, clock: FixedClock
) -> None:
    send(engine, clock, "page", anonymousId="buyer", name="Home")
    first = decide(engine, anonymous_id="buyer")
    clock.advance(60)
    engine.storage.write(lambda uow: None)  # let the decision log land
    send(
        engine,
        clock,
        "track",
        anonymousId="buyer",
        event="Order Completed",
        properties={"order_id": "o9", "revenue": 10},
    )
    logged = engine.get_decision(first["decision_id"])
    assert logged is not None
    assert [o["kind"] for o in logged["outcomes"]] == ["purchase"]
    assert logged["outcomes"][0]["attributed_by"] == "last_decision_in_window"
    clock.advance(3 * 24 * 3600)  # outside the 24 h window
    send(
        engine,
        clock,
        "track",
        anonymousId="buyer",
        event="Order Completed",
        properties={"order_id": "o10", "revenue": 10},
    )
    logged = engine.get_decision(first["decision_id"])
    assert logged is not None and len(logged["outcomes"]) == 1


def test_duplicates_are_counted_not_applied(engine: Engine, clock: FixedClock) -> None:
    events = parse_request(
        {"anonymousId": "d", "event": "E", "messageId": "same"}, kind="track", received_at=clock()
    )
    assert engine.ingest(events).accepted == 1
    again = engine.ingest(events)
    assert (again.accepted, again.duplicates) == (0, 1)
    view = engine.profile_view("d")
    assert view is not None and view["profile"]["events"] == 1


def test_workspace_changes_apply_without_restart_and_bad_ones_apply_nothing(
    engine: Engine,
) -> None:
    engine.put_slot(
        "promo", {"kind": "block", "variants": [{"id": "x", "content": {"headline": "X"}}]}
    )
    body = engine.decide(
        DecideRequest.model_validate({"user": {"anonymous_id": "n"}, "slots": [{"slot": "promo"}]})
    )
    assert body.slots[0].variant is not None and body.slots[0].variant.id == "x"
    before = engine.workspace_document()
    with pytest.raises(ConfigError) as info:
        engine.put_slot("promo", {"kind": "list", "default_strategy": "no-such-strategy"})
    assert "no-such-strategy" in info.value.detail
    assert engine.workspace_document() == before
    engine.delete_slot("promo")
    with pytest.raises(NotFound):
        engine.delete_slot("promo")


def test_a_failed_write_leaves_no_trace_in_memory(
    engine: Engine, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    send(engine, clock, "track", anonymousId="anon-f", event="Seen")
    import loopwise.projection.fold as fold_module

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(fold_module, "reduce", broken)
    with pytest.raises(RuntimeError):
        send(engine, clock, "identify", userId="u-f", anonymousId="anon-f")
    monkeypatch.undo()
    assert engine.resolve("u-f") is None
    view = engine.profile_view("anon-f")
    assert view is not None and view["profile"]["events"] == 1
    assert engine.counts()["events"] == 1


def test_erasure_forgets_the_person_in_memory_too(engine: Engine, clock: FixedClock) -> None:
    send(engine, clock, "page", anonymousId="gone", name="Home")
    send(engine, clock, "identify", anonymousId="gone", userId="u-gone", traits={"email": "g@x"})
    decided = decide(engine, user_id="u-gone")
    engine.storage.write(lambda uow: None)
    receipt = engine.erase_profile("u-gone")
    assert receipt["identifiers"] == ["gone", "u-gone"]
    assert receipt["removed"]["decisions"] == 1 and receipt["removed"]["events"] == 2
    assert engine.get_decision(decided["decision_id"]) is None
    assert engine.resolve("gone") is None and engine.resolve("u-gone") is None
    # a purchase now is not attributed to the erased decision kept in memory
    send(engine, clock, "track", userId="u-gone", event="Order Completed", properties={})
    assert engine.storage.decisions.get(decided["decision_id"]) is None
    view = engine.profile_view("u-gone")
    assert view is not None and "email" not in view["profile"].get("traits", {})
    with pytest.raises(NotFound):
        engine.erase_profile("never-seen")


def test_a_bounded_profile_cache_reloads_evicted_profiles_from_storage(clock: FixedClock) -> None:
    workspace = load_workspace_file(SAMPLE_WORKSPACE)
    workspace = workspace.model_copy(
        update={"profiles": workspace.profiles.model_copy(update={"cache_profiles": 2})}
    )
    engine = Engine(workspace, MemoryStorage(), clock=clock, seed=1)
    engine.put_items(list(read_items(SAMPLE_WORKSPACE.parent / str(workspace.items))))
    hiking = category_items(engine, "hiking")
    for round_ in range(2):
        for user in ("u1", "u2", "u3", "u4"):
            clock.advance(5)
            send(
                engine,
                clock,
                "track",
                anonymousId=user,
                event="Product Viewed",
                properties={"product_id": hiking[round_]},
            )
    assert len(engine.services.views.profiles) == 2
    view = engine.profile_view("u1")  # evicted twice, reloaded from storage each time
    assert view is not None
    assert view["profile"]["item_views"] == 2
    assert view["profile"]["recently_viewed"] == [hiking[1], hiking[0]]
    assert engine.replay()["differing"] == 0
