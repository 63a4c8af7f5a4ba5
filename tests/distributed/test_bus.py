"""The change bus on a real Redis: what one worker notes, the others drop."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest

from loopwise.distributed.bus import ChangeBus, Changes, namespace_of
from tests.distributed.conftest import REDIS_URL, eventually


def test_changes_round_trip() -> None:
    changes = Changes(profiles={"p1"}, identifiers={"u1"}, consent={"p1"}, exposures={"p2"})
    changes.config = True
    origin, decoded = Changes.decode(changes.encode("me"))
    assert origin == "me" and decoded == changes
    _, everything = Changes.decode(Changes(everything=True).encode("me"))
    assert everything.everything and not everything.profiles
    assert not Changes() and Changes(config=True)


@pytest.fixture
def buses(servers_available: None) -> Iterator[tuple[ChangeBus, ChangeBus]]:
    namespace = namespace_of("test", uuid.uuid4().hex)
    one, two = ChangeBus(REDIS_URL, namespace), ChangeBus(REDIS_URL, namespace)
    yield one, two
    one.stop()
    two.stop()


def test_what_one_worker_notes_the_other_drops(buses: tuple[ChangeBus, ChangeBus]) -> None:
    one, two = buses
    heard: list[Changes] = []
    mine: list[Changes] = []
    config = threading.Event()
    two.apply = heard.append
    two.config_changed = config.set
    one.apply = mine.append
    one.start()
    two.start()
    eventually(lambda: one.connected and two.connected, timeout=10)
    heard.clear()  # the "drop everything" of connecting
    mine.clear()
    one.note(Changes(profiles={"p1"}, identifiers={"u1"}))
    one.note(Changes(config=True))
    eventually(lambda: any("p1" in c.profiles for c in heard), timeout=5)
    assert config.wait(timeout=5)
    assert not [c for c in mine if c.profiles]  # a worker ignores its own notes
    # applied twice: at once and again after the second-pass delay
    eventually(lambda: sum("p1" in c.profiles for c in heard) == 2, timeout=5)


def test_acknowledged_message_ids_are_known(buses: tuple[ChangeBus, ChangeBus]) -> None:
    one, two = buses
    one.start()
    assert two.known(["m1"]) == set()  # not connected yet: no Redis round trip at all
    two.start()
    one.remember(["m1", "m2"])
    eventually(lambda: two.known(["m1", "m2", "m3"]) == {"m1", "m2"}, timeout=5)


def test_an_unreachable_redis_costs_freshness_not_errors(servers_available: None) -> None:
    bus = ChangeBus("redis://127.0.0.1:1/0", namespace_of("nowhere"))
    dropped: list[Changes] = []
    bus.apply = dropped.append
    bus.start()
    try:
        assert bus.known(["m1"]) == set()  # PostgreSQL decides
        bus.note(Changes(profiles={"p1"}))  # kept for later, no exception
        eventually(lambda: any(c.everything for c in dropped), timeout=5)  # caches dropped
        assert not bus.connected
    finally:
        bus.stop()
