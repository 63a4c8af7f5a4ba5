"""The delivery worker against a real HTTP receiver on 127.0.0.1: signatures, idempotency keys,
retries with backoff after failed first attempts, the dead-letter list, consent and erasure."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from loopwise.journeys.delivery import backoff, sign, verify
from loopwise.storage.journey_records import DEAD, DELIVERED, DROPPED
from tests.journeys.conftest import SECRET_ENV, T0, cart_journey, hours, ingest, message
from tests.journeys.receiver import Receiver

SECRET = "test-secret-0123456789"


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    os.environ[SECRET_ENV] = SECRET
    found = Receiver(SECRET, fail_first=2).start()
    yield found
    found.stop()
    os.environ.pop(SECRET_ENV, None)


def endpoint(receiver: Receiver, **extra: Any) -> dict[str, Any]:
    found = {"key": "crm", "url": receiver.url, "secret_env": SECRET_ENV}
    found |= {"backoff_seconds": 0.01, "max_backoff_seconds": 0.05, **extra}
    return {"endpoints": [found]}


def drain_until_settled(engine: Any, rounds: int = 200) -> None:
    import time

    for _ in range(rounds):
        engine.deliver()
        if not engine.storage.outbox.counts().get("pending"):
            return
        time.sleep(0.02)


def test_signing_is_hmac_sha256_over_timestamp_and_body() -> None:
    header = sign("s3cret", 1_700_000_000, b'{"a":1}')
    import hashlib
    import hmac

    digest = hmac.new(b"s3cret", b'1700000000.{"a":1}', hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={digest}"
    import time

    now = int(time.time())
    assert verify("s3cret", sign("s3cret", now, b"x"), b"x")
    assert not verify("other", sign("s3cret", now, b"x"), b"x")
    assert not verify("s3cret", sign("s3cret", now, b"x"), b"y")
    assert not verify("s3cret", sign("s3cret", now - 3600, b"x"), b"x")  # replayed late


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [backoff(n, 30, 200) for n in (1, 2, 3, 4, 5)] == [30, 60, 120, 200, 200]


def test_retries_until_acknowledged_with_one_key_and_a_signed_body(
    make_engine: Any, receiver: Receiver
) -> None:
    engine = make_engine([cart_journey()], webhooks=endpoint(receiver))
    users = [f"u{i}" for i in range(5)]
    ingest(engine, *(message(u, T0) for u in users))
    ingest(engine, message("late", T0 + hours(2), "Product Viewed"))
    drain_until_settled(engine)
    assert engine.storage.outbox.counts() == {DELIVERED: 5}
    assert len(receiver.acknowledged) == 5 and set(receiver.acknowledged.values()) == {1}
    assert all(n == 3 for n in receiver.attempts.values())  # two failures on purpose, then 200
    assert all(r["signed"] for r in receiver.requests)
    body = next(iter(receiver.bodies.values()))
    assert body["journey"] == "cart" and body["step"] == "reminder"
    assert body["type"] == "journey.step" and "pseudonymous_id" in body["person"]
    assert "u0" not in str(receiver.bodies)  # pseudonymous by default
    delivered = engine.storage.outbox.list(DELIVERED)
    assert {d.attempts for d in delivered} == {3}


def test_after_max_attempts_a_delivery_is_a_dead_letter(
    make_engine: Any, receiver: Receiver
) -> None:
    engine = make_engine([cart_journey()], webhooks=endpoint(receiver, max_attempts=2))
    ingest(engine, message("u1", T0))
    ingest(engine, message("late", T0 + hours(2), "Product Viewed"))
    drain_until_settled(engine)
    dead = engine.outbox("dead")
    assert dead["counts"][DEAD] == 1 and dead["deliveries"][0]["last_error"] == "HTTP 503"
    retried = engine.retry_delivery(dead["deliveries"][0]["id"])
    assert retried["status"] == "pending"
    drain_until_settled(engine)
    assert engine.storage.outbox.counts() == {DELIVERED: 1}


def test_withdrawn_consent_and_erasure_drop_pending_sends(
    make_engine: Any, receiver: Receiver
) -> None:
    engine = make_engine([cart_journey()], webhooks=endpoint(receiver))
    ingest(engine, message("u1", T0), message("u2", T0), message("u3", T0))
    ingest(engine, message("late", T0 + hours(2), "Product Viewed"))
    assert engine.storage.outbox.counts() == {"pending": 3}
    erased = engine.resolve("u2")
    engine.put_consent("u1", {"categories": {"marketing": False}})
    receipt = engine.erase_profile("u2")
    assert receipt["removed"]["journey_states"] == 1 and receipt["removed"]["outbox"] == 1
    drain_until_settled(engine)
    assert engine.storage.outbox.counts() == {DROPPED: 1, DELIVERED: 1}
    assert len(receiver.acknowledged) == 1
    export = engine.export_profile("u3")
    assert export["journeys"]["journeys"][0]["journey"] == "cart"
    assert export["journeys"]["deliveries"][0]["status"] == DELIVERED
    assert engine.storage.journeys.for_profiles([erased]) == []
    assert engine.storage.outbox.for_profile(erased) == []
