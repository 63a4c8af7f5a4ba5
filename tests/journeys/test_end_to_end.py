"""A journey through the engine: the ingest job moves its state and queues its sends."""

from __future__ import annotations

from typing import Any

from loopwise.profiles.identity import profile_id_for
from tests.journeys.conftest import T0, cart_journey, hours, ingest, message, sends


def test_a_cart_abandoner_gets_one_reminder_after_the_wait(make_engine: Any) -> None:
    engine = make_engine([cart_journey()])
    ingest(engine, message("u1", T0))
    assert sends(engine) == []
    ingest(engine, message("u2", T0 + hours(2), "Product Viewed"))  # the clock moves past 1 h
    found = sends(engine)
    assert len(found) == 1
    assert found[0].profile_id == profile_id_for("u1")
    assert found[0].created_at == T0 + hours(1)
    ingest(engine, message("u2", T0 + hours(30), "Product Viewed"))
    assert len(sends(engine)) == 1
    show = engine.services.journeys.show("cart")
    steps = {s["id"]: s for s in show["steps"]}
    assert steps["wait"]["entered"] == 1 and steps["wait"]["waiting"] == 0
    assert steps["reminder"]["sent"] == 1
    assert show["entered"] == 1 and show["exited"] == 1


def test_buying_first_means_no_reminder(make_engine: Any) -> None:
    engine = make_engine([cart_journey()])
    ingest(engine, message("u1", T0), message("u1", T0 + hours(0.5), "Order Completed"))
    ingest(engine, message("u2", T0 + hours(3), "Product Viewed"))
    assert sends(engine) == []
    show = engine.services.journeys.show("cart")
    assert show["converted"] == 1


def test_no_marketing_consent_no_journey(make_engine: Any) -> None:
    engine = make_engine([cart_journey()])
    ingest(engine, message("u1", T0, marketing=False), message("u3", T0, marketing=None))
    ingest(engine, message("u2", T0 + hours(3), "Product Viewed"))
    assert sends(engine) == []
