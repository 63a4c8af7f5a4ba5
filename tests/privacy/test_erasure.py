"""Erasure and export of a person on the real SQLite data directory: after ``erase_profile`` no
table row and no byte of any file under the data directory (database, WAL, keys) names them."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from loopwise.clock import FixedClock
from loopwise.decide.request import DecideRequest
from loopwise.engine import Engine
from loopwise.errors import NotFound
from loopwise.events.normalize import parse_request

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
USER = "user-erase-4242"
ANON = "anon-erase-7f3e9c"
EMAIL = "erase.me@example.com"
OTHER = "user-keep-1717"
NEEDLES = (USER, ANON, EMAIL)


@pytest.fixture()
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture()
def opened(tmp_path: Path, clock: FixedClock) -> Iterator[tuple[Engine, Path]]:
    data_dir = tmp_path / "data"
    engine, _ = Engine.open(data_dir, clock=clock, environ={})
    yield engine, data_dir
    engine.close()


def send(engine: Engine, clock: FixedClock, kind: str, **message: Any) -> None:
    clock.advance(15)
    message.setdefault("messageId", str(uuid.uuid4()))
    message.setdefault("timestamp", clock().isoformat())
    message.setdefault("context", {"ip": "203.0.113.77", "userAgent": "Mozilla/5.0 Firefox/120"})
    engine.ingest(parse_request(message, kind=kind, received_at=clock()))


def decide(engine: Engine, **user: str) -> str:
    request = DecideRequest.model_validate(
        {
            "user": user,
            "context": {"page": {"url": "https://shop.test/"}},
            "slots": [{"slot": "hero"}, {"slot": "recommended", "n": 4}],
        }
    )
    return engine.decide(request).decision_id


def session(engine: Engine, clock: FixedClock, user: str, anon: str, email: str) -> None:
    """Browse anonymously, decide, sign in (identify with an email), browse, decide, see the
    recommendations, click and buy: every table gets rows about the person."""
    items = [item.id for item in engine.list_items(0, 50)[0]]
    for item_id in items[:3]:
        send(engine, clock, "page", anonymousId=anon, name="Product")
        send(
            engine,
            clock,
            "track",
            anonymousId=anon,
            event="Product Viewed",
            properties={"product_id": item_id},
        )
    decide(engine, anonymous_id=anon)
    send(engine, clock, "identify", userId=user, anonymousId=anon, traits={"email": email})
    engine.put_consent(user, {"categories": {"marketing": True}, "source": "banner"})
    send(
        engine,
        clock,
        "track",
        userId=user,
        event="Product Viewed",
        properties={"product_id": items[5]},
    )
    decision = decide(engine, user_id=user)
    engine.storage.write(lambda uow: None)  # the decision log is written behind the reply
    props = {"decision_id": decision, "slot": "recommended", "product_id": items[5]}
    send(engine, clock, "track", userId=user, event="Product Clicked", properties=props)
    send(
        engine,
        clock,
        "track",
        userId=user,
        event="Order Completed",
        properties={"order_id": "o-1", "revenue": 42.5, "products": [{"product_id": items[5]}]},
    )
    decide(engine, user_id=user)  # a decision with an attributed conversion comes before it
    engine.storage.write(lambda uow: None)


def rows_naming(db: Path, needles: tuple[str, ...]) -> list[tuple[str, str]]:
    """(table, needle) for every row of every table whose text or blob contains a needle."""
    found = []
    with sqlite3.connect(db) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                text = " ".join(
                    v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in row
                )
                found += [(table, needle) for needle in needles if needle in text]
    return found


def files_naming(data_dir: Path, needles: tuple[str, ...]) -> list[tuple[str, str]]:
    found = []
    for path in sorted(p for p in data_dir.rglob("*") if p.is_file()):
        raw = path.read_bytes()
        found += [(path.name, n) for n in needles if n.encode() in raw]
    return found


def test_erasure_leaves_no_trace_in_any_table_or_file(
    opened: tuple[Engine, Path], clock: FixedClock
) -> None:
    engine, data_dir = opened
    session(engine, clock, USER, ANON, EMAIL)
    session(engine, clock, OTHER, "anon-keep-99", "keep@example.com")
    db = data_dir / "loopwise.db"
    assert {t for t, _ in rows_naming(db, NEEDLES)} >= {"events", "profiles", "identities"}

    receipt = engine.erase_profile(ANON)  # any of the person's ids will do

    assert receipt["profile_id"].startswith("p_")
    assert receipt["identifiers"] == sorted([USER, ANON])
    removed = receipt["removed"]
    assert removed["events"] == 10 and removed["identities"] == 2 and removed["profiles"] == 1
    assert removed["decisions"] == 3 and removed["outcomes"] >= 2
    assert removed["segment_history"] >= 1
    assert removed["consent"] == 1 and removed["exposures"] >= 1
    assert receipt["erased_at"]
    assert rows_naming(db, NEEDLES) == []
    # the audit trail keeps a pseudonymous record of the erasure, and still verifies
    from loopwise.privacy.audit import verify_chain

    trail = list(engine.storage.audit.iter())
    assert [r["kind"] for r in trail].count("erasure") == 1
    assert trail[-1]["receipt"]["removed"]["events"] == 10
    assert verify_chain(trail).ok
    assert engine.get_consent(USER)["categories"]["marketing"] is False  # back to the default
    assert files_naming(data_dir, NEEDLES) == []
    # the other person is untouched, and the erased one is gone from memory too
    assert engine.profile_view(OTHER) is not None
    assert rows_naming(db, (OTHER,))
    for identifier in (USER, ANON):
        assert engine.profile_view(identifier) is None
        with pytest.raises(NotFound):
            engine.erase_profile(identifier)
    # a new visit with the same id starts from nothing
    send(engine, clock, "track", userId=USER, event="Product Viewed", properties={})
    view = engine.profile_view(USER)
    assert view is not None and view["identifiers"] == [USER]


def test_erasure_survives_a_restart(tmp_path: Path, clock: FixedClock) -> None:
    data_dir = tmp_path / "data"
    engine, _ = Engine.open(data_dir, clock=clock, environ={})
    session(engine, clock, USER, ANON, EMAIL)
    engine.erase_profile(USER)
    engine.close()
    reopened, _ = Engine.open(data_dir, clock=clock, environ={})
    try:
        assert reopened.profile_view(USER) is None and reopened.profile_view(ANON) is None
        assert reopened.rebuild_profiles().profiles == {}
    finally:
        reopened.close()
    assert files_naming(data_dir, NEEDLES) == []


def test_export_holds_everything_about_the_person(
    opened: tuple[Engine, Path], clock: FixedClock
) -> None:
    engine, _ = opened
    session(engine, clock, USER, ANON, EMAIL)
    session(engine, clock, OTHER, "anon-keep-99", "keep@example.com")
    document = engine.export_profile(USER)
    assert document["identifiers"] == sorted([USER, ANON])
    assert document["profile"]["traits"]["email"] == EMAIL
    assert len(document["events"]) == 10
    assert {e["user_id"] or e["anonymous_id"] for e in document["events"]} <= {USER, ANON}
    assert len(document["decisions"]) == 3
    assert any(d["outcomes"] for d in document["decisions"])
    assert document["segment_history"]
    # the experiment arm the person was served is data held about them too
    assert [e["experiment"] for e in document["exposures"]] == ["recs-personalized"]
    assert document["exposures"][0]["arm"] in {"control", "personalized"}
    assert OTHER not in str(document)
    with pytest.raises(NotFound):
        engine.export_profile("nobody")


def test_a_person_known_only_by_consent_and_decisions_can_be_erased(
    opened: tuple[Engine, Path], clock: FixedClock
) -> None:
    # refused analytics on the banner: no event, no profile, no identity link is ever stored,
    # but the consent state and the decisions (with the experiment exposure) of a visit
    # before the refusal are; erasure must find them rather than answer "no profile"
    from loopwise.profiles.identity import profile_id_for

    engine, data_dir = opened
    visitor = "anon-refused-5150"
    decide(engine, anonymous_id=visitor)
    engine.put_consent(visitor, {"categories": {"analytics": False}, "source": "banner"})
    engine.storage.write(lambda uow: None)
    needle = (profile_id_for(visitor),)
    db = data_dir / "loopwise.db"
    assert {t for t, _ in rows_naming(db, needle)} >= {"consent", "decisions", "exposures"}

    assert len(engine.export_profile(visitor)["decisions"]) == 1
    receipt = engine.erase_profile(visitor)

    assert receipt["removed"]["consent"] == 1 and receipt["removed"]["decisions"] == 1
    assert receipt["removed"]["exposures"] >= 1
    assert rows_naming(db, needle) == []
    assert engine.get_consent(visitor)["explicit"] == {}
    with pytest.raises(NotFound):
        engine.erase_profile(visitor)  # nothing is left to erase
