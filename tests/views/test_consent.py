"""The consent view: a person's state is the merge of every key that is theirs; a published
change applies to the next read; a forgotten key reads as no choice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from loopwise.privacy.consent import EMPTY, with_choices
from loopwise.storage.memory import MemoryStorage
from loopwise.views.consent import ConsentView

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def test_lookup_merges_every_key_of_the_person_and_follows_published_changes() -> None:
    storage = MemoryStorage()
    anonymous = with_choices(EMPTY, {"analytics": False}, T0, "banner", "v1")
    known = with_choices(EMPTY, {"pricing": False}, T0 + timedelta(hours=1), "api", "v1")

    def seed(uow: object) -> None:
        uow.consent.put("p_anon", anonymous.to_record())  # type: ignore[attr-defined]
        uow.consent.put("p_user", known.to_record())  # type: ignore[attr-defined]

    storage.write(seed)
    view = ConsentView(storage.consent, limit=10)
    assert view.anyone_chose()
    assert view.state(["p_user", "p_anon"]).explicit() == {"analytics": False, "pricing": False}
    assert view.state(["p_nobody"]) is EMPTY
    later = with_choices(anonymous, {"analytics": True}, T0 + timedelta(days=1), "x", "v2")
    view.publish({"p_anon": later})
    assert view.state(["p_anon"]).explicit() == {"analytics": True}
    view.forget(["p_anon"])
    assert view.state(["p_anon"]) is EMPTY
    storage.close()


def test_a_fresh_install_skips_every_lookup() -> None:
    storage = MemoryStorage()
    view = ConsentView(storage.consent, limit=10)
    assert not view.anyone_chose()
    assert view.state(["p_x"]) is EMPTY
    view.publish({"p_x": with_choices(EMPTY, {"analytics": False}, T0, "banner", "v1")})
    assert view.anyone_chose()
    storage.close()
