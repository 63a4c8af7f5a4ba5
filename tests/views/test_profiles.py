"""The profile view's two tiers: decoded hot profiles, compressed records for the rest."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from datetime import UTC, datetime

from loopwise.profiles import codec
from loopwise.profiles.model import Profile
from loopwise.storage.records import ProfileRecord
from loopwise.views.profiles import ProfileView

T0 = datetime(2026, 1, 5, tzinfo=UTC)


class Store:
    def __init__(self) -> None:
        self.records: dict[str, ProfileRecord] = {}
        self.reads = 0

    def get(self, profile_id: str) -> ProfileRecord | None:
        self.reads += 1
        return self.records.get(profile_id)

    def get_many(self, profile_ids: Iterable[str]) -> dict[str, ProfileRecord]:
        self.reads += 1
        return {p: self.records[p] for p in profile_ids if p in self.records}


def profile(pid: str, events: int = 3) -> Profile:
    p = Profile.new(pid, T0)
    p.events, p.sessions, p.traits = events, 1, {"plan": "pro", "note": "x" * 200}
    return p


def test_a_profile_leaving_the_hot_tier_is_kept_compressed_and_decodes_the_same() -> None:
    store = Store()
    view = ProfileView(store, limit=10, hot_limit=2)  # type: ignore[arg-type]
    for i in range(5):
        view.publish(profile(f"p{i}"), frozenset({"a"}))
    raw = codec.encode(profile("p0")).data
    held = OrderedDict.get(view._compact, "p0")
    assert held is not None and held[0][:1] != b"{" and len(held[0]) < len(raw)
    newest = OrderedDict.get(view._compact, "p4")
    assert newest is not None and newest[0] == codec.encode(profile("p4")).data
    entry = view.entry("p0")
    assert entry.profile == profile("p0") and entry.membership == frozenset({"a"})
    assert store.reads == 0  # served from the compact tier


def test_a_newer_publish_is_not_replaced_by_an_older_compressed_record() -> None:
    view = ProfileView(Store(), limit=10, hot_limit=1)  # type: ignore[arg-type]
    view.publish(profile("p0", 1), None)
    view.publish(profile("p0", 2), None)
    view.publish(profile("p1"), None)  # p0 leaves the hot tier
    assert view.entry("p0").profile == profile("p0", 2)


def test_equal_memberships_are_shared() -> None:
    view = ProfileView(Store(), limit=10)  # type: ignore[arg-type]
    view.publish(profile("p0"), frozenset({"a", "b"}))
    view.publish(profile("p1"), frozenset({"b", "a"}))
    assert view.entry("p0").membership is view.entry("p1").membership
