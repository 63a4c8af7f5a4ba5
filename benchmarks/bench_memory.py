"""Memory per profile: what the engine's in-process profile cache costs per profile.

Profiles are built by the engine's reducer (:func:`loopwise.profiles.reducer.reduce`) from
synthetic events — ``events_per_profile`` track calls of a user who favours one category
(views, adds to cart, orders) — and kept in a dict keyed by profile id, as ``Engine`` keeps them.

- "reducer": every profile folded from its own events, parsed just before and dropped after;
  measured with ``tracemalloc`` (Python allocations still alive at the end: the profiles and
  what they keep of their events). "seconds" includes making and parsing the events.
- "profile view": the engine's bounded profile view (:class:`loopwise.views.profiles.ProfileView`)
  filled to its limit the way the projector fills it — ``templates`` reducer-built profiles,
  cloned under new ids — so what is measured is what a server holds per cached profile: the
  newest tenth decoded, the rest as encoded records. Measured as RSS growth (and tracemalloc up
  to 100k; its own bookkeeping would need gigabytes at 1M).
"""

from __future__ import annotations

import gc
import os
import random
import time
import tracemalloc
from typing import Any

import orjson

from benchmarks.population import START, catalog, sample_workspace, user_events
from loopwise.catalog.items import Item
from loopwise.events.normalize import parse_request
from loopwise.events.schema import Event
from loopwise.profiles import codec
from loopwise.profiles.identity import profile_id_for
from loopwise.profiles.model import Profile
from loopwise.profiles.reducer import reduce
from loopwise.profiles.settings import ProfileSettings
from loopwise.views.profiles import ProfileView


def rss_bytes() -> int:
    """Resident set size of this process (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _events(rng: random.Random, anon: str, items: list[Item], count: int) -> list[Event]:
    raw = user_events(rng, anon, items, count, START)
    return parse_request({"batch": raw}, kind="batch", received_at=START)


def fold(events: list[Event], settings: ProfileSettings, items: dict[str, Item]) -> Profile:
    ordered = sorted(events, key=lambda e: e.timestamp)
    profile = Profile.new(profile_id_for(ordered[0].identity), ordered[0].timestamp)
    for event in ordered:
        profile = reduce(profile, event, settings, items)
    return profile


def reducer_built(count: int, events_per_profile: int, seed: int = 1) -> dict[str, Any]:
    workspace = sample_workspace()
    items = catalog(10_000, workspace)
    by_id = {i.id: i for i in items}
    settings = workspace.profiles
    rng = random.Random(seed)
    gc.collect()
    tracemalloc.start()
    start = time.perf_counter()
    cache: dict[str, Profile] = {}
    for u in range(count):
        # events are parsed here and dropped after folding, as on a server: what stays
        # allocated is the profiles and whatever of the events they keep (e.g. item id strings)
        profile = fold(_events(rng, f"mem-{u}", items, events_per_profile), settings, by_id)
        cache[profile.id] = profile
    seconds = time.perf_counter() - start
    traced, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    gc.collect()
    result = {
        "method": "reducer",
        "profiles": len(cache),
        "events_per_profile": events_per_profile,
        "traced_bytes_per_profile": traced / len(cache),
        # RSS at this size mostly reuses memory freed earlier in the process: not a measure
        "rss_bytes_per_profile": None,
        "record_bytes_per_profile": _record_bytes(list(cache.values())[:1000]),
        "seconds": seconds,
    }
    del cache
    gc.collect()
    return result


def reloaded(
    count: int, events_per_profile: int, templates: int = 1000, traced: bool = False
) -> dict[str, Any]:
    """The engine's profile view holding ``count`` profiles (its limit), each published the
    way the projector publishes a committed state: the decoded profile and its encoded record.
    The view keeps the newest tenth decoded and the rest as records."""
    templates = min(templates, count)
    workspace = sample_workspace()
    items = catalog(10_000, workspace)
    by_id = {i.id: i for i in items}
    rng = random.Random(2)
    records = [
        orjson.dumps(
            fold(
                _events(rng, f"tpl-{u}", items, events_per_profile), workspace.profiles, by_id
            ).to_record()
        )
        for u in range(templates)
    ]
    gc.collect()
    rss_before = rss_bytes()
    if traced:
        tracemalloc.start()
    start = time.perf_counter()
    view = ProfileView(_NoStore(), count)  # type: ignore[arg-type]
    membership = frozenset({"browser", "first_time_visitor"})
    for u in range(count):
        record = orjson.loads(records[u % templates])  # fresh objects, as read from storage
        anon = f"mem-{u}"
        record["id"] = profile_id_for(anon)
        record["anonymous_ids"] = [anon]
        profile = Profile.from_record(record)
        view.publish(profile, membership, codec.encode(profile).data)
    seconds = time.perf_counter() - start
    traced_bytes = tracemalloc.get_traced_memory()[0] if traced else None
    tracemalloc.stop()
    gc.collect()
    rss = rss_bytes() - rss_before
    result = {
        "method": "profile view",
        "profiles": len(view),
        "events_per_profile": events_per_profile,
        "traced_bytes_per_profile": None if traced_bytes is None else traced_bytes / len(view),
        "rss_bytes_per_profile": rss / len(view),
        "record_bytes_per_profile": sum(len(r) for r in records) / len(records),
        "seconds": seconds,
    }
    del view
    gc.collect()
    return result


class _NoStore:
    """The view's store for this measurement: everything is published, nothing read back."""

    def get(self, profile_id: str) -> None:
        return None

    def get_many(self, profile_ids: Any) -> dict[str, Any]:
        return {}


def _record_bytes(profiles: list[Profile]) -> float:
    """Mean size of the stored JSON record (for comparison with the in-memory size)."""
    return sum(len(orjson.dumps(p.to_record())) for p in profiles) / len(profiles)


def run(
    sizes: tuple[int, ...] = (100_000, 1_000_000),
    events_per_profile: int = 12,
    reducer_size: int = 10_000,
    traced_limit: int = 100_000,
) -> list[dict[str, Any]]:
    """One reducer-built cache of ``reducer_size`` profiles (folding is ~1 ms per profile, so it
    is the cross-check, not the large run), then a reloaded cache of each of ``sizes``."""
    results = [reducer_built(reducer_size, events_per_profile)]
    for size in sizes:
        results.append(reloaded(size, events_per_profile, traced=size <= traced_limit))
    return results


if __name__ == "__main__":
    for row in run(sizes=(10_000,), reducer_size=1000):
        print(row)
