from __future__ import annotations

from datetime import UTC, datetime

from loopwise.events.schema import Event
from loopwise.profiles.identity import IdentityGraph, profile_id_for

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def event(user_id: str | None = None, anonymous_id: str | None = None, **kw: object) -> Event:
    return Event(
        message_id="m",
        type=str(kw.pop("type", "track")),
        timestamp=T0,
        received_at=T0,
        user_id=user_id,
        anonymous_id=anonymous_id,
        **kw,  # type: ignore[arg-type]
    )


def no_owner(pid: str) -> str | None:
    return None


def test_first_identifier_names_the_profile_and_hides_the_raw_id() -> None:
    graph = IdentityGraph()
    res = graph.plan(event(anonymous_id="anon-1"), no_owner)
    assert res.profile_id == profile_id_for("anon-1")
    assert "anon-1" not in res.profile_id
    graph.apply(res)
    assert graph.resolve("anon-1") == res.profile_id


def test_identify_links_anonymous_id_to_the_same_profile() -> None:
    graph = IdentityGraph()
    graph.apply(graph.plan(event(anonymous_id="a"), no_owner))
    res = graph.plan(event(user_id="u", anonymous_id="a", type="identify"), no_owner)
    assert res.profile_id == profile_id_for("a")
    assert res.new_links == ["u"] and res.merge_from is None
    graph.apply(res)
    assert graph.resolve("u") == graph.resolve("a")


def test_two_profiles_merge_into_the_known_users_profile() -> None:
    graph = IdentityGraph()
    graph.apply(graph.plan(event(user_id="u"), no_owner))
    graph.apply(graph.plan(event(anonymous_id="a"), no_owner))
    res = graph.plan(event(user_id="u", anonymous_id="a"), no_owner)
    assert res.profile_id == profile_id_for("u")
    assert res.merge_from == profile_id_for("a")
    graph.apply(res)
    assert graph.resolve("a") == profile_id_for("u")
    assert graph.identifiers(profile_id_for("u")) == {"u", "a"}
    assert profile_id_for("a") not in graph.members


def test_alias_links_previous_id() -> None:
    graph = IdentityGraph()
    graph.apply(graph.plan(event(anonymous_id="old"), no_owner))
    res = graph.plan(event(user_id="new", type="alias", previous_id="old"), no_owner)
    graph.apply(res)
    assert graph.resolve("new") == graph.resolve("old")


def test_shared_device_never_merges_two_known_users() -> None:
    graph = IdentityGraph()
    graph.apply(graph.plan(event(user_id="alice", anonymous_id="device"), no_owner))
    alice = profile_id_for("alice")

    def owner(pid: str) -> str | None:
        return "alice" if pid == alice else None

    res = graph.plan(event(user_id="bob", anonymous_id="device"), owner)
    assert res.merge_from is None
    assert res.profile_id == profile_id_for("bob")
    assert res.moved == ["device"]
    graph.apply(res)
    assert graph.resolve("device") == profile_id_for("bob")
    assert graph.resolve("alice") == alice
    assert "device" not in graph.identifiers(alice)


def test_forget_removes_every_link() -> None:
    graph = IdentityGraph()
    graph.apply(graph.plan(event(user_id="u", anonymous_id="a"), no_owner))
    pid = graph.resolve("u")
    assert pid is not None
    assert graph.forget(pid) == {"u", "a"}
    assert graph.resolve("a") is None
