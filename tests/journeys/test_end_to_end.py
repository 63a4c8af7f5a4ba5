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


def test_an_order_in_the_entry_batch_counts_in_the_holdout_experiment(make_engine: Any) -> None:
    # the journey is entered after the batch's fold, which counted the order before the
    # exposure existed: the exposure starts from the batch's events at or after entry
    engine = make_engine([cart_journey(holdout_percent=50)])
    buyers = [f"u{i}" for i in range(40)]
    ingest(engine, *[
        m for u in buyers
        for m in (message(u, T0, "Order Completed", revenue=5.0), message(u, T0 + hours(0.1)),
                  message(u, T0 + hours(0.2), "Order Completed", revenue=20.0))
    ])  # fmt: skip
    exposures = list(engine.storage.exposures.iter("journey-cart"))
    assert len(exposures) == len(buyers)
    # the order before entry is not counted, the one after is, with its revenue
    assert all(e.after == {"Order Completed": (1.0, 20.0)} for e in exposures)
    # and the covariate before entry holds the earlier order only (revenue so far: 5)
    assert all(e.before == {"Order Completed": (1.0, 5.0)} for e in exposures)
    report = engine.experiment_results("journey-cart")
    converted = next(m for m in report["metrics"] if m["key"] == "converted")
    assert {r["arm"] for r in converted["results"]} == {"holdout", "journey"}
    assert all(r["value"] == 1.0 for r in converted["results"])


def test_a_send_reads_the_person_from_the_store_not_a_view_not_yet_published(
    make_engine: Any,
) -> None:
    # the worker is woken on the commit that queued the send, before the consent view is
    # published: a stale view must not drop it (nor let a withdrawal through)
    engine = make_engine([cart_journey()])
    ingest(engine, message("u1", T0))
    pid = profile_id_for("u1")
    person = engine.services.delivery._person
    assert person(pid, "marketing").consented
    engine.services.views.consent.forget([pid])  # the view as it was before the commit
    assert person(pid, "marketing").consented
    engine.services.views.profiles.mark_absent([pid])  # the absence ingest read before it
    assert person(pid, "marketing").exists and person(pid, "marketing").consented
    ingest(engine, message("u1", T0 + hours(0.1), "Product Viewed", marketing=False))
    engine.services.views.consent.forget([pid])
    assert not person(pid, "marketing").consented  # the stored withdrawal holds


def test_no_marketing_consent_no_journey(make_engine: Any) -> None:
    engine = make_engine([cart_journey()])
    ingest(engine, message("u1", T0, marketing=False), message("u3", T0, marketing=None))
    ingest(engine, message("u2", T0 + hours(3), "Product Viewed"))
    assert sends(engine) == []


def test_win_back_after_inactivity_and_a_segment_trigger(make_engine: Any) -> None:
    win_back = {"key": "win", "template": "win_back", "endpoint": "crm", "wait": "30d"}
    buyer = {
        "key": "buyer",
        "trigger": {"segment_entered": "buyer"},
        "steps": [{"id": "hello", "action": "webhook", "endpoint": "crm"}],
    }
    engine = make_engine([win_back, buyer])
    ingest(engine, message("u1", T0, "Order Completed", revenue=30.0))
    ingest(engine, message("u2", T0 + hours(24 * 10), "Product Viewed"))
    assert sends(engine, "win") == []
    assert len(sends(engine, "buyer")) == 1  # entered segment buyer with the order
    ingest(engine, message("u2", T0 + hours(24 * 31), "Product Viewed"))
    found = sends(engine, "win")
    assert [d.profile_id for d in found] == [profile_id_for("u1")]
    assert found[0].created_at == T0 + hours(24 * 30)
    # still away 14 days later: the second message; u2 never bought, so never entered
    ingest(engine, message("u3", T0 + hours(24 * 45), "Product Viewed"))
    found = sends(engine, "win")
    assert [d.profile_id for d in found] == [profile_id_for("u1")] * 2
    assert [d.created_at for d in found] == [T0 + hours(24 * 30), T0 + hours(24 * 44)]
    history = engine.profile_view("u1")
    assert history is not None
    assert {j["journey"] for j in history["journeys"]["journeys"]} == {"win", "buyer"}
