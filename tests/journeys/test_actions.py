"""Actions other than a plain webhook: set a trait, enter/leave a list segment, decide a slot
for later pickup, content decided for a slot inside a webhook, and segment entries and exits
out as webhooks."""

from __future__ import annotations

from typing import Any

from loopwise.engine import Engine
from loopwise.storage.journey_records import DELIVERED
from tests.journeys.conftest import ENDPOINT, T0, hours, ingest, message


def deliver_internal(engine: Engine) -> None:
    """Run the outbox once without any HTTP receiver (internal actions only)."""
    engine.deliver(timeout=10)


def test_set_trait_enter_a_list_segment_and_decide_for_pickup(make_engine: Any) -> None:
    journey = {
        "key": "vip",
        "trigger": {"event": "Order Completed"},
        "steps": [
            {"id": "mark", "action": "set_trait", "traits": {"vip": True}},
            {"id": "listed", "action": "enter_segment", "segment": "vip_list"},
            {"id": "pick", "action": "decide", "slot": "recommended"},
        ],
    }
    engine = make_engine([journey])
    ingest(engine, message("u1", T0, "Order Completed", revenue=50.0))
    deliver_internal(engine)
    profile = engine.profile_view("u1")
    assert profile is not None
    traits = profile["profile"]["traits"]
    assert traits["vip"] is True and traits["list_vip_list"] is True
    history = profile["journeys"]
    decided = next(d for d in history["deliveries"] if d["kind"] == "decide")
    assert decided["status"] == DELIVERED
    decision = engine.get_decision(decided["result"]["decision_id"])
    assert decision is not None and decision["slots"][0]["slot"] == "recommended"
    assert history["journeys"][0]["exit_reason"] == "completed"
    # a repeat of the trait's identify (same message id) changes nothing: exactly once
    identify = [d for d in engine.storage.outbox.for_profile(engine.resolve("u1") or "")]
    assert len({d.key for d in identify}) == len(identify) == 3


def test_a_webhook_carries_content_decided_for_its_slot(make_engine: Any) -> None:
    journey = {
        "key": "cart",
        "template": "cart_abandonment",
        "endpoint": "crm",
        "slot": "recommended",
    }
    engine = make_engine([journey])
    ingest(engine, message("u1", T0))
    ingest(engine, message("u2", T0 + hours(2), "Product Viewed"))
    worker = engine.services.delivery
    send = engine.storage.outbox.due(T0.replace(year=2100), 10)[0]
    person = worker._person(send.profile_id, "marketing")
    endpoint = engine.workspace.webhooks.endpoint("crm")
    assert endpoint is not None
    import json

    body = json.loads(worker._body(send, endpoint, person))
    assert body["content"]["slot"]["slot"] == "recommended"
    assert body["content"]["slot"]["items"], "items decided for the person"
    assert engine.get_decision(body["content"]["decision_id"]) is not None


def test_segment_entries_and_exits_go_out_as_webhooks(make_engine: Any) -> None:
    endpoint = {**ENDPOINT, "subscribe": ["segment.entered", "segment.exited"],
                "segments": ["buyer", "browser"]}  # fmt: skip
    engine = make_engine([], webhooks={"endpoints": [endpoint]})
    ingest(engine, message("u1", T0, "Product Viewed"))
    ingest(engine, message("u1", T0 + hours(1), "Order Completed", revenue=20.0))
    pid = engine.resolve("u1")
    assert pid is not None
    sent = [
        (d.payload["type"], d.payload["segment"]) for d in engine.storage.outbox.for_profile(pid)
    ]
    assert ("segment.entered", "browser") in sent
    assert ("segment.entered", "buyer") in sent and ("segment.exited", "browser") in sent
    assert all(segment in ("buyer", "browser") for _, segment in sent)


def test_journey_entries_and_exits_go_out_to_subscribed_endpoints(make_engine: Any) -> None:
    follower = {**ENDPOINT, "key": "crm2", "subscribe": ["journey.entered", "journey.exited"]}
    engine = make_engine(
        [{"key": "cart", "template": "cart_abandonment", "endpoint": "crm"}],
        webhooks={"endpoints": [ENDPOINT, follower]},
    )
    ingest(engine, message("u1", T0), message("u1", T0 + hours(0.5), "Order Completed"))
    pid = engine.resolve("u1")
    assert pid is not None
    sent = sorted(
        (d.payload["endpoint"], d.payload["type"], d.payload.get("detail", {}).get("reason"))
        for d in engine.storage.outbox.for_profile(pid)
    )
    assert sent == [
        ("crm2", "journey.entered", None),
        ("crm2", "journey.exited", "event:Order Completed"),
    ]
