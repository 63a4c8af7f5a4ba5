"""The delivery worker: sends the outbox's pending deliveries, at least once, exactly as queued.

Per delivery: check the person may still get it (their consent category granted, not erased;
otherwise it is dropped), finish the body once (person ids, content decided for the slot) and
store it, then send. A webhook is a POST of the JSON body with

- ``Loopwise-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`` (the secret is
  read from the endpoint's ``secret_env`` at send time),
- ``Idempotency-Key: <key>`` (the same on every attempt: a receiver drops repeats),
- ``Loopwise-Attempt: <n>``.

A 2xx acknowledges it; anything else (or no answer) is retried with exponential backoff
(``backoff_seconds`` doubling up to ``max_backoff_seconds``) until ``max_attempts``, after which
it moves to the dead-letter list (status ``dead``). The outcome of every attempt is committed;
a crash between a receiver's 2xx and that commit re-sends the delivery once more with the same
idempotency key — the documented at-least-once. Internal actions (set a trait, enter or leave a
list segment: an identify event with the delivery key as its message id; decide a slot) run
through the engine itself, where the message id makes them exactly-once.

Retries use the wall clock (a receiver's outage is real time even in a simulation).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import orjson

from loopwise.clock import Clock, system_clock
from loopwise.journeys.outbox import DECIDE, IDENTIFY, WEBHOOK
from loopwise.journeys.spec import Endpoint, WebhookSettings
from loopwise.storage.journey_records import DEAD, DELIVERED, DROPPED, PENDING, Delivery
from loopwise.storage.stores import Storage, UnitOfWork

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "Loopwise-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
ATTEMPT_HEADER = "Loopwise-Attempt"
BATCH = 200
INTERNAL_MAX_ATTEMPTS = 8


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for ``body`` sent at ``timestamp`` (unix seconds)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify(secret: str, header: str, body: bytes, *, tolerance: float = 300.0) -> bool:
    """Check a ``Loopwise-Signature`` header (receivers can copy this): the HMAC matches and
    the timestamp is within ``tolerance`` seconds of now."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    if abs(time.time() - timestamp) > tolerance:
        return False
    return hmac.compare_digest(expected, parts.get("v1", ""))


@dataclass(frozen=True, slots=True)
class Person:
    """What the worker needs to know about a delivery's person right before sending."""

    exists: bool
    consented: bool
    user_id: str | None
    anonymous_id: str | None
    pseudonymous_id: str


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    error: str | None = None
    payload: Mapping[str, Any] | None = None  # a finished body / result to keep


class DeliveryWorker:
    """Sends pending deliveries in batches, ``concurrency`` at a time."""

    def __init__(
        self,
        storage: Storage,
        webhooks: Callable[[], WebhookSettings],
        person: Callable[[str, str], Person],
        decide: Callable[[Person, str, Mapping[str, Any]], dict[str, Any]],
        identify: Callable[[Delivery, Person], None],
        *,
        clock: Clock = system_clock,
        environ: Mapping[str, str] | None = None,
        concurrency: int = 8,
        poll_seconds: float = 0.25,
    ) -> None:
        import httpx

        self._storage = storage
        self._webhooks = webhooks
        self._person = person
        self._decide = decide
        self._identify = identify
        self._clock = clock
        self._environ = environ if environ is not None else os.environ
        self._poll = poll_seconds
        self._concurrency = concurrency
        limits = httpx.Limits(max_connections=concurrency * 2)
        self._http = httpx.Client(timeout=10.0, trust_env=False, limits=limits)
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="loopwise-delivery")
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent = 0  # attempts acknowledged, since start

    # -- running ---------------------------------------------------------------------------
    def start(self) -> DeliveryWorker:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="loopwise-outbox", daemon=True)
            self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while not self._stopped.is_set():
            try:
                done = self.run_once()
            except Exception as exc:  # the next round may succeed (database or receiver back)
                log.warning("delivering the outbox failed: %s", type(exc).__name__)
                done = 0
            if not done:
                self._wake.wait(self._poll)
                self._wake.clear()

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=10)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._http.close()

    def run_once(self, limit: int = BATCH) -> int:
        """One round: every due delivery (up to ``limit``) attempted once; returns how many."""
        due = self._storage.outbox.due(self._clock(), limit)
        if not due:
            return 0
        settings = self._webhooks()
        results = list(self._pool.map(lambda d: (d, self._attempt(d, settings)), due))
        self._storage.write(lambda uow: self._record(uow, results, settings))
        return len(due)

    def drain(self, timeout: float = 60.0) -> int:
        """Deliver until nothing is due (tests, the CLI); returns the deliveries attempted."""
        deadline = time.monotonic() + timeout
        total = 0
        while time.monotonic() < deadline:
            done = self.run_once()
            total += done
            if not done:
                return total
        return total

    # -- one attempt -----------------------------------------------------------------------
    def _attempt(self, delivery: Delivery, settings: WebhookSettings) -> Outcome | str:
        """An :class:`Outcome`, or a status string (``dropped``) when it must not be sent."""
        category = str(delivery.payload.get("consent") or "marketing")
        person = self._person(delivery.profile_id, category)
        if not person.exists:
            return "dropped:erased"
        if not person.consented:
            return f"dropped:no {category} consent"
        try:
            if delivery.kind == WEBHOOK:
                return self._webhook(delivery, settings, person)
            if delivery.kind == IDENTIFY:
                self._identify(delivery, person)
                return Outcome(True)
            if delivery.kind == DECIDE:
                result = self._decide(person, str(delivery.payload["slot"]), delivery.payload)
                return Outcome(True, payload={**delivery.payload, "result": result})
            return Outcome(False, f"unknown delivery kind {delivery.kind!r}")
        except Exception as exc:  # a failed attempt is retried; its reason is kept
            return Outcome(False, f"{type(exc).__name__}: {exc}"[:500])

    def _webhook(self, delivery: Delivery, settings: WebhookSettings, person: Person) -> Outcome:
        endpoint = settings.endpoint(str(delivery.payload.get("endpoint")))
        if endpoint is None:
            return Outcome(False, f"no webhook endpoint {delivery.payload.get('endpoint')!r}")
        payload = dict(delivery.payload)
        body = payload.get("body")
        finished: Mapping[str, Any] | None = None
        if not isinstance(body, str):
            body = self._body(delivery, endpoint, person)
            payload["body"] = body
            finished = payload
        secret = self._environ.get(endpoint.secret_env)
        if not secret:
            return Outcome(
                False, f"environment variable {endpoint.secret_env} (the secret) is not set",
                finished,
            )  # fmt: skip
        raw = body.encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(secret, int(time.time()), raw),
            IDEMPOTENCY_HEADER: delivery.key,
            ATTEMPT_HEADER: str(delivery.attempts + 1),
            "User-Agent": "loopwise-webhooks",
        }
        import httpx

        try:
            response = self._http.post(
                endpoint.url, content=raw, headers=headers, timeout=endpoint.timeout_seconds
            )
        except httpx.HTTPError as exc:
            return Outcome(False, f"{type(exc).__name__}: {exc}"[:500], finished)
        if 200 <= response.status_code < 300:
            return Outcome(True, payload=finished)
        return Outcome(False, f"HTTP {response.status_code}", finished)

    def _body(self, delivery: Delivery, endpoint: Endpoint, person: Person) -> str:
        p = delivery.payload
        who: dict[str, Any] = {"pseudonymous_id": person.pseudonymous_id}
        if endpoint.identify_by == "user_id":
            who["user_id"] = person.user_id
        document: dict[str, Any] = {
            "id": delivery.key,
            "type": p.get("type"),
            "at": p.get("at"),
            "person": who,
        }
        for name in ("journey", "step", "entry", "segment", "detail"):
            if p.get(name) is not None:
                document[name] = p[name]
        slot = p.get("slot")
        if slot:
            document["content"] = self._decide(person, str(slot), p)
        return orjson.dumps(document).decode()

    # -- recording outcomes ----------------------------------------------------------------
    def _record(
        self,
        uow: UnitOfWork,
        results: list[tuple[Delivery, Outcome | str]],
        settings: WebhookSettings,
    ) -> None:
        now = self._clock()
        for delivery, outcome in results:
            current = uow.outbox.get(delivery.id)
            if current is None or current.status != PENDING:
                continue  # erased or dropped meanwhile
            if isinstance(outcome, str):
                uow.outbox.update(
                    replace(current, status=DROPPED, last_error=outcome.split(":", 1)[1],
                            done_at=now)
                )  # fmt: skip
                continue
            payload = dict(outcome.payload) if outcome.payload is not None else current.payload
            attempts = current.attempts + 1
            if outcome.ok:
                self.sent += 1
                uow.outbox.update(
                    replace(current, status=DELIVERED, attempts=attempts, payload=payload,
                            done_at=now, last_error=None)
                )  # fmt: skip
                continue
            endpoint = settings.endpoint(str(current.payload.get("endpoint")))
            max_attempts = endpoint.max_attempts if endpoint else INTERNAL_MAX_ATTEMPTS
            if attempts >= max_attempts:
                uow.outbox.update(
                    replace(current, status=DEAD, attempts=attempts, payload=payload,
                            last_error=outcome.error, done_at=now)
                )  # fmt: skip
                continue
            first = endpoint.backoff_seconds if endpoint else 1.0
            cap = endpoint.max_backoff_seconds if endpoint else 300.0
            wait = backoff(attempts, first, cap)
            uow.outbox.update(
                replace(current, attempts=attempts, payload=payload, last_error=outcome.error,
                        next_attempt_at=now + timedelta(seconds=wait))
            )  # fmt: skip


def backoff(attempts: int, first: float, cap: float) -> float:
    """Seconds before attempt ``attempts + 1`` (``attempts`` already failed)."""
    return min(cap, first * 2 ** (attempts - 1))


def retry_now(storage: Storage, delivery_id: int, at: datetime) -> bool:
    """Put a dead (or dropped) delivery back in the queue with its attempts reset."""

    def job(uow: UnitOfWork) -> bool:
        current = uow.outbox.get(delivery_id)
        if current is None or current.status not in (DEAD,):
            return False
        uow.outbox.update(
            replace(current, status=PENDING, attempts=0, next_attempt_at=at, done_at=None)
        )
        return True

    return storage.write(job)
