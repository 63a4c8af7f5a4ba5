"""The change bus on Redis: what one worker committed, told to every other worker.

After a commit, a worker's views learn of the change (``on_commit``); the shared views
(:mod:`loopwise.distributed.views`) also note *which keys* changed — profile ids, identifiers,
consent keys, exposures, "the workspace" — here. A publisher thread sends the notes, many commits
per message, on one pub/sub channel per database; every other worker's subscriber thread drops
those keys from its caches, so its next read loads them from PostgreSQL. Nothing on the bus is
data: the keys are pseudonymous ids (never traits or events), and losing a message costs
freshness, never a write.

Redis is a cache, so the bus plans for losing it:

- while the subscriber is not connected (Redis restarted, flushed connections, network gone) a
  message may have been missed, so the worker drops its caches when the connection is lost, once
  a second while it stays lost, and again when it is back: reads then come from PostgreSQL and
  are at most about a second stale;
- a note the publisher cannot send is kept (merged with later ones; beyond
  :data:`MAX_PENDING_KEYS` it becomes "drop everything") and sent once Redis answers;
- a reader may load a key from PostgreSQL just before its invalidation arrives and cache what it
  read just after: every invalidation is applied twice, at once and :data:`SECOND_PASS_S`
  later, so such a stale entry lives at most that long.

Bandit deltas (:mod:`loopwise.bandits.shared`) ride the same publisher in messages of their own
(``{"o": origin, "bandit": [...]}``): additive counts, so losing one costs freshness until the
bandits' periodic re-derivation from PostgreSQL, never correctness.

It also keeps recently acknowledged message ids (``SET ... EX``) so a retried batch whose every
event is known is answered without a write (PostgreSQL's ``event_ids`` stays the authority).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis

log = logging.getLogger(__name__)

SECOND_PASS_S = 0.25
LOST_CLEAR_EVERY_S = 1.0
MAX_PENDING_KEYS = 50_000
DEDUPE_TTL_S = 600  # retries come within minutes; PostgreSQL dedupes forever
_RECONNECT_S = 0.5


@dataclass(slots=True)
class Changes:
    """Keys whose cached state is out of date."""

    profiles: set[str] = field(default_factory=set)
    identifiers: set[str] = field(default_factory=set)
    consent: set[str] = field(default_factory=set)
    exposures: set[str] = field(default_factory=set)
    config: bool = False  # the workspace, catalog or clusters changed: check the revisions
    everything: bool = False  # drop every cache (a replay, or too much to list)

    def __bool__(self) -> bool:
        return bool(
            self.profiles
            or self.identifiers
            or self.consent
            or self.exposures
            or self.config
            or self.everything
        )

    def size(self) -> int:
        return len(self.profiles) + len(self.identifiers) + len(self.consent) + len(self.exposures)

    def merge(self, other: Changes) -> None:
        self.profiles |= other.profiles
        self.identifiers |= other.identifiers
        self.consent |= other.consent
        self.exposures |= other.exposures
        self.config = self.config or other.config
        self.everything = self.everything or other.everything

    def encode(self, origin: str) -> bytes:
        if self.everything:
            return orjson.dumps({"o": origin, "all": True, "w": self.config})
        return orjson.dumps(
            {
                "o": origin,
                "p": sorted(self.profiles),
                "i": sorted(self.identifiers),
                "c": sorted(self.consent),
                "x": sorted(self.exposures),
                "w": self.config,
            }
        )

    @staticmethod
    def decode(data: bytes | str) -> tuple[str, Changes]:
        return Changes.from_body(orjson.loads(data))

    @staticmethod
    def from_body(body: dict[str, Any]) -> tuple[str, Changes]:
        changes = Changes(
            profiles=set(body.get("p", ())),
            identifiers=set(body.get("i", ())),
            consent=set(body.get("c", ())),
            exposures=set(body.get("x", ())),
            config=bool(body.get("w")),
            everything=bool(body.get("all")),
        )
        return str(body.get("o", "")), changes


def namespace_of(*parts: str | None) -> str:
    """A short stable name for one database (and schema): Redis keys and channels of different
    databases never meet."""
    return hashlib.sha256("\x00".join(p or "" for p in parts).encode()).hexdigest()[:16]


Handler = Callable[[Changes], None]


class ChangeBus:
    """Publishes this worker's changes and applies the others'. ``apply`` drops keys from this
    worker's caches (``everything``: all of them); ``config_changed`` re-reads the revisions."""

    def __init__(self, url: str, namespace: str, *, origin: str | None = None) -> None:
        self.origin = origin or uuid.uuid4().hex[:12]
        self.namespace = namespace
        self.channel = f"loopwise:{namespace}:changes"
        self._redis = redis.Redis.from_url(
            url, socket_timeout=2, socket_connect_timeout=2, health_check_interval=5
        )
        self.apply: Handler = lambda changes: None
        self.config_changed: Callable[[], None] = lambda: None
        self.bandit_apply: Callable[[list[object]], None] = lambda ops: None
        self._bandit: list[object] = []
        self._pending = Changes()
        self._remember: list[str] = []
        self._cond = threading.Condition()
        self._stopped = threading.Event()
        self._second_pass: list[tuple[float, Changes]] = []
        self.connected = False
        # counters (for /healthz and tests)
        self.published = 0
        self.received = 0
        self.lost = 0  # times the subscription was lost (and the caches dropped)
        self.publish_failures = 0
        self._threads = [
            threading.Thread(target=self._publish_loop, name="loopwise-bus-out", daemon=True),
            threading.Thread(target=self._subscribe_loop, name="loopwise-bus-in", daemon=True),
        ]

    def start(self) -> ChangeBus:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        with self._cond:
            self._cond.notify_all()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=5)
        self._redis.close()

    # -- this worker's changes -----------------------------------------------------------------
    def note(self, changes: Changes) -> None:
        if not changes:
            return
        with self._cond:
            self._pending.merge(changes)
            if self._pending.size() > MAX_PENDING_KEYS:
                self._pending = Changes(everything=True, config=self._pending.config)
            self._cond.notify()

    def note_bandit(self, ops: Sequence[object]) -> None:
        """Bandit deltas to send (batched with whatever else is pending)."""
        if not ops:
            return
        with self._cond:
            if len(self._bandit) < MAX_PENDING_KEYS:  # beyond: the re-derivation catches up
                self._bandit.extend(ops)
            self._cond.notify()

    def remember(self, message_ids: Sequence[str]) -> None:
        """Acknowledged message ids, for the dedupe fast path."""
        if not message_ids:
            return
        with self._cond:
            if len(self._remember) < MAX_PENDING_KEYS:
                self._remember.extend(message_ids)
            self._cond.notify()

    def known(self, message_ids: Sequence[str]) -> set[str]:
        """The ids acknowledged recently (an empty set when Redis does not answer)."""
        if not message_ids or not self.connected:  # no Redis: no waiting for it either
            return set()
        keys = [self._message_key(m) for m in message_ids]
        try:
            values = self._redis.mget(keys)
        except (redis.RedisError, OSError):
            return set()
        return {m for m, v in zip(message_ids, values, strict=True) if v is not None}

    def _message_key(self, message_id: str) -> str:
        return f"loopwise:{self.namespace}:msg:{message_id}"

    def _publish_loop(self) -> None:
        backoff = 0.0
        while not self._stopped.is_set():
            with self._cond:
                if not self._pending and not self._remember and not self._bandit:
                    self._cond.wait(timeout=0.5)
                changes, self._pending = self._pending, Changes()
                remember, self._remember = self._remember, []
                bandit, self._bandit = self._bandit, []
            if not changes and not remember and not bandit:
                continue
            try:
                pipe = self._redis.pipeline(transaction=False)
                if changes:
                    pipe.publish(self.channel, changes.encode(self.origin))
                if bandit:
                    pipe.publish(self.channel, orjson.dumps({"o": self.origin, "bandit": bandit}))
                for message_id in remember:
                    pipe.set(self._message_key(message_id), b"1", ex=DEDUPE_TTL_S)
                pipe.execute()
                if changes:
                    self.published += 1
                backoff = 0.0
            except (redis.RedisError, OSError) as exc:
                self.publish_failures += 1
                log.warning("publishing changes to Redis failed (%s); retrying", type(exc).__name__)
                self.note(changes)  # kept for the next round (the dedupe ids are not needed)
                backoff = min(max(backoff * 2, 0.05), 1.0)
                self._stopped.wait(backoff)

    # -- the others' changes -------------------------------------------------------------------
    def _subscribe_loop(self) -> None:
        last_clear = 0.0
        while not self._stopped.is_set():
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(self.channel)
                # whatever was published while we were not listening is gone
                self._drop_everything()
                self.connected = True
                while not self._stopped.is_set():
                    message = pubsub.get_message(timeout=0.1)
                    if message is not None and message.get("type") == "message":
                        self._received(message["data"])
                    self._run_second_pass()
            except (redis.RedisError, OSError, ValueError) as exc:
                if self.connected:
                    log.warning(
                        "lost the Redis change channel (%s); serving from PostgreSQL until it "
                        "is back",
                        type(exc).__name__,
                    )
                    self.lost += 1
                self.connected = False
                now = time.monotonic()
                if now - last_clear >= LOST_CLEAR_EVERY_S:
                    self._drop_everything()
                    last_clear = now
                self._stopped.wait(_RECONNECT_S)
            finally:
                with contextlib.suppress(redis.RedisError, OSError):
                    pubsub.close()

    def _received(self, data: bytes | str) -> None:
        try:
            body = orjson.loads(data)
            if isinstance(body, dict) and "bandit" in body:
                self._received_bandit(body)  # {"o": origin, "bandit": [...]}
                return
            origin, changes = Changes.from_body(body)
        except (orjson.JSONDecodeError, TypeError, AttributeError):
            log.warning("ignored a malformed message on the change channel")
            return
        if origin == self.origin:
            return
        self.received += 1
        self._apply(changes)
        if changes.config:
            try:
                self.config_changed()
            except Exception:
                log.exception("refreshing the workspace after a change on another worker failed")
        self._second_pass.append((time.monotonic() + SECOND_PASS_S, changes))

    def _received_bandit(self, body: dict[str, Any]) -> None:
        origin, ops = str(body.get("o", "")), body["bandit"]
        if not isinstance(ops, list):
            log.warning("ignored a malformed bandit message on the change channel")
            return
        if origin == self.origin:
            return
        try:
            self.bandit_apply(ops)
        except Exception:
            log.exception("applying another worker's bandit deltas failed")

    def _run_second_pass(self) -> None:
        if not self._second_pass:
            return
        now = time.monotonic()
        due = [c for at, c in self._second_pass if at <= now]
        if due:
            self._second_pass = [(at, c) for at, c in self._second_pass if at > now]
            for changes in due:
                self._apply(changes)

    def _apply(self, changes: Changes) -> None:
        try:
            self.apply(changes)
        except Exception:
            log.exception("dropping changed keys from the caches failed")

    def _drop_everything(self) -> None:
        self._apply(Changes(everything=True))

    def ping(self) -> bool:
        try:
            return bool(self._redis.ping())
        except (redis.RedisError, OSError):
            return False


def all_keys(*groups: Iterable[str]) -> set[str]:
    return {key for group in groups for key in group}
