"""A campaign decides each person exactly as ``/v1/decide`` would: same items or variant, same
rule, strategy and reasons, same experiment arm and first exposure, same segments logged."""

from __future__ import annotations

import gc
from datetime import UTC, datetime
from typing import Any

from loopwise.catalog.importer import read_items
from loopwise.channels.batch import DecideBatchRequest, _decide_request, _read_keys
from loopwise.clock import FixedClock
from loopwise.config import SAMPLE_WORKSPACE, parse_workspace
from loopwise.decide.request import DecideRequest, SlotRequest
from loopwise.engine import Engine
from loopwise.profiles import codec
from loopwise.profiles.context import request_context_attributes
from loopwise.segments.conditions import compile_condition
from loopwise.storage.memory import MemoryStorage
from tests.channels.conftest import category, channel_document, consent, send, view

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
USERS = [f"u{n}" for n in range(16)]


def document() -> dict[str, Any]:
    doc = channel_document(batch={"frequency_cap": {"per_day": 0}})
    for slot in doc["slots"]:
        if slot["key"] == "newsletter":  # a list slot with a segment rule, under an experiment
            slot["filters"] = {"in_stock": True, "exclude_purchased": True}
            slot["rules"] = [
                {
                    "id": "runners-running",
                    "segments": ["running_fans"],
                    "then": {"filters": {"categories": ["running"]}},
                }
            ]
    doc["experiments"] = [
        {
            "key": "email-recs",
            "slot": "newsletter",
            "status": "running",
            "arms": [
                {"key": "control", "strategy": "popular", "weight": 0.5},
                {"key": "personal", "strategy": "category_affinity", "weight": 0.5},
            ],
            "metrics": [{"key": "purchase", "kind": "conversion", "event": "Order Completed"}],
        }
    ]
    return doc


def population() -> Engine:
    """The same people, events and consent every time it is built (same seed, same clock)."""
    clock = FixedClock(T0)
    engine = Engine(parse_workspace(document()), MemoryStorage(), clock=clock, seed=5)
    engine.put_items(list(read_items(SAMPLE_WORKSPACE.parent / "items.jsonl")))
    running, yoga = category(engine, "running"), category(engine, "yoga")
    for n, user in enumerate(USERS):
        if n % 5 != 4:  # u4, u9, u14: no marketing consent (skipped)
            consent(engine, user, marketing=True, analytics=True, personalization=n % 7 != 3)
        viewed = (running if n % 2 else yoga)[n % 3 : n % 3 + 2 + n % 4]
        view(engine, clock, user, viewed)
        if n % 3 == 0:
            send(
                engine,
                clock,
                "track",
                userId=user,
                event="Order Completed",
                properties={
                    "order_id": f"o{n}",
                    "revenue": 40,
                    "products": [{"product_id": viewed[0]}],
                },
            )
    return engine


def slot_json(decision: Any) -> dict[str, Any]:
    return dict(decision.model_dump(mode="json", exclude_none=True))


def test_a_campaign_gives_everyone_the_decision_a_single_decide_gives() -> None:
    for slot in ("newsletter", "email-hero"):
        batch, single = population(), population()
        campaign = batch.decide_batch(
            DecideBatchRequest.model_validate({"slot": slot, "users": USERS})
        )
        rows = list(campaign.rows())
        decided = [row for row in rows if row["status"] == "decided"]
        assert {r["user_id"] for r in rows if r["status"] == "skipped"} == {"u4", "u9", "u14"}
        arms: dict[str, set[str]] = {}
        for row in decided:  # in audience order, as the campaign decided them
            request = DecideRequest.model_validate(
                {"user": {"user_id": row["user_id"]}, "slots": [{"slot": slot}]}
            )
            reply = single.decide(request)
            assert row["profile_id"] == reply.profile_id
            assert row["slot"] == slot_json(reply.slots[0]), row["user_id"]
            logged = batch.get_decision(row["decision_id"])
            alone = single.get_decision(reply.decision_id)
            assert logged is not None and alone is not None
            assert logged["segments"] == alone["segments"]
            assert logged["slots"] == alone["slots"]
            assert logged["channel"] == "campaign"
            if slot == "newsletter":
                for engine, decision_id in (
                    (batch, row["decision_id"]),
                    (single, reply.decision_id),
                ):
                    exposures = engine.services.storage.exposures.for_profiles([row["profile_id"]])
                    arms.setdefault(decision_id, set()).update(
                        f"{e.experiment}:{e.arm}:{e.slot}" for e in exposures
                    )
        if slot == "newsletter":
            # the experiment ran: both arms served, each person's arm the same both ways
            pairs = list(arms.values())
            assert all(pairs[i] == pairs[i + 1] for i in range(0, len(pairs), 2))
            served = {arm for pair in pairs for arm in pair}
            assert {a.split(":")[1] for a in served} == {"control", "personal"}
            rules = {row["slot"].get("rule") for row in decided}
            assert "runners-running" in rules
        batch.close()
        single.close()


def members_by_full_evaluation(engine: Engine, key: str) -> set[str]:
    """The segment's known members, every stored profile evaluated with its whole profile.*."""
    compiled = engine.services.workspace.compiled
    definition = compiled.registry.get(key)
    assert definition is not None
    condition = compile_condition(definition.condition, compiled.workspace.saved_groups)
    now = engine.services.clock()
    context = request_context_attributes({}, compiled.workspace.profiles, now)
    members = set()
    for record in engine.services.storage.profiles.iter():
        profile = codec.decode(record)
        attributes = compiled.profile_attributes(profile, now)
        if profile.user_id and condition({"profile": attributes, "context": context}):
            members.add(profile.user_id)
    return members


def test_a_segment_audience_is_decided_as_single_decides_and_evaluated_as_a_whole_profile() -> None:
    """Segment audiences evaluate the condition from the attributes it reads, and the whole
    profile.* for members only: the same members as evaluating the whole namespace, and each
    member decided as /v1/decide decides them."""
    for key in ("running_fans", "yoga_fans", "buyer", "customer"):
        batch, single = population(), population()
        members = members_by_full_evaluation(single, key)
        assert members and members < set(USERS), key  # some in, some out
        campaign = batch.decide_batch(
            DecideBatchRequest.model_validate({"slot": "newsletter", "segment": key})
        )
        rows = list(campaign.rows())
        assert {row["user_id"] for row in rows} == members, key
        for row in rows:
            if row["status"] != "decided":
                continue
            request = DecideRequest.model_validate(
                {"user": {"user_id": row["user_id"]}, "slots": [{"slot": "newsletter"}]}
            )
            reply = single.decide(request)
            assert row["slot"] == slot_json(reply.slots[0]), (key, row["user_id"])
            logged = batch.get_decision(row["decision_id"])
            alone = single.get_decision(reply.decision_id)
            assert logged is not None and alone is not None
            assert logged["segments"] == alone["segments"]
        batch.close()
        single.close()


def test_conditions_read_only_some_attributes_unless_they_need_the_whole_profile() -> None:
    assert _read_keys({"profile.affinity.categories.running"}) == frozenset({"affinity"})
    assert _read_keys({"profile.purchases", "context.country"}) == frozenset({"purchases"})
    assert _read_keys({"context.country"}) == frozenset()
    assert _read_keys({"profile"}) is None  # the whole namespace
    assert _read_keys({"profile.cluster"}) is None  # added by the compiled workspace
    assert _read_keys({"profile.scores.convert"}) is None
    assert _read_keys({"segments"}) is None


def test_the_campaign_request_is_the_validated_one() -> None:
    slots = [SlotRequest.model_validate({"slot": "newsletter"})]
    fast = _decide_request("u1", "a1", {"page": {"url": "/"}}, slots)
    validated = DecideRequest.model_validate(
        {
            "user": {"user_id": "u1", "anonymous_id": "a1"},
            "context": {"page": {"url": "/"}},
            "slots": [{"slot": "newsletter"}],
        }
    )
    assert fast == validated
    assert fast.model_dump() == validated.model_dump()
    assert fast.model_fields_set == validated.model_fields_set
    assert fast.caller_only is False


def test_the_cycle_collector_is_on_while_rows_go_out_and_unfrozen_after() -> None:
    engine = population()
    assert gc.isenabled() and gc.get_freeze_count() == 0
    for abandon in (False, True):
        request = DecideBatchRequest.model_validate({"slot": "newsletter", "users": USERS})
        rows = engine.decide_batch(request).rows()
        next(rows)
        assert gc.isenabled()  # off only while a chunk is decided
        assert gc.get_freeze_count() > 0  # what was alive then is not walked again
        if abandon:
            rows.close()
        else:
            assert len(list(rows)) == len(USERS) - 1
        assert gc.isenabled() and gc.get_freeze_count() == 0
    engine.close()
