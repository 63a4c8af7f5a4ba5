"""The in-memory consent map: merged lookups, staged states, publishing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from loopwise.privacy.book import ConsentBook
from loopwise.privacy.consent import EMPTY, with_choices

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def test_lookup_merges_every_key_of_the_person_and_prefers_staged_states() -> None:
    anonymous = with_choices(EMPTY, {"analytics": False}, T0, "banner", "v1")
    known = with_choices(EMPTY, {"pricing": False}, T0 + timedelta(hours=1), "api", "v1")
    book = ConsentBook([("p_anon", anonymous.to_record()), ("p_user", known.to_record())])
    assert len(book) == 2
    assert book.state(["p_user", "p_anon"]).explicit() == {"analytics": False, "pricing": False}
    assert book.state(["p_nobody"]) is EMPTY
    staged = {
        "p_anon": with_choices(anonymous, {"analytics": True}, T0 + timedelta(days=1), "x", "v2")
    }
    assert book.state(["p_anon"], staged).explicit() == {"analytics": True}
    assert book.state(["p_anon"]).explicit() == {"analytics": False}  # not yet published
    book.publish(staged)
    assert book.state(["p_anon"]).explicit() == {"analytics": True}
    book.forget(["p_anon"])
    assert book.state(["p_anon"]) is EMPTY
