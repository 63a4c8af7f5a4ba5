"""Campaign decisions: consent, frequency caps, the decision log and attribution, audiences,
output files."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from loopwise.channels.batch import DecideBatchRequest, read_users, write_rows
from loopwise.clock import FixedClock
from loopwise.engine import Engine
from loopwise.errors import ValidationFailed
from tests.channels.conftest import category, consent, send, view


def run(engine: Engine, **body: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    campaign = engine.decide_batch(DecideBatchRequest.model_validate(body))
    rows = list(campaign.rows())
    return rows, campaign.summary.to_dict()


def by_user(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["user_id"]: row for row in rows}


def test_only_people_with_marketing_consent_are_decided(engine: Engine, clock: FixedClock) -> None:
    consent(engine, "yes", marketing=True)
    consent(engine, "no", marketing=False)
    rows, summary = run(engine, slot="newsletter", users=["yes", "no", "never-chose"])
    people = by_user(rows)
    assert people["yes"]["status"] == "decided"
    assert len(people["yes"]["slot"]["items"]) == 3
    assert people["no"] == {**people["no"], "status": "skipped", "reason": "no_consent"}
    assert people["never-chose"]["reason"] == "no_consent"  # marketing is opt-in by default
    assert "decision_id" not in people["no"]
    assert summary["decided"] == 1 and summary["skipped"] == {"no_consent": 2}
    assert [row["user_id"] for row in rows] == ["yes", "no", "never-chose"]  # audience order


def test_each_decision_is_logged_and_an_email_click_attributes_to_it(
    engine: Engine, clock: FixedClock
) -> None:
    consent(engine, "ann", marketing=True, analytics=True)
    view(engine, clock, "ann", category(engine, "running")[:3])
    rows, _ = run(engine, slot="newsletter", users=["ann"], campaign="spring-sale")
    row = rows[0]
    logged = engine.get_decision(row["decision_id"])
    assert logged is not None
    assert logged["channel"] == "campaign" and logged["campaign"] == "spring-sale"
    assert logged["profile_id"] == row["profile_id"]
    assert [i["id"] for i in logged["slots"][0]["items"]] == [i["id"] for i in row["slot"]["items"]]
    clicked = row["slot"]["items"][0]["id"]
    clock.advance(3600)
    send(
        engine,
        clock,
        "track",
        userId="ann",
        event="Email Opened",
        properties={"decision_id": row["decision_id"]},
    )
    send(
        engine,
        clock,
        "track",
        userId="ann",
        event="Email Link Clicked",
        properties={"decision_id": row["decision_id"], "product_id": clicked},
    )
    outcomes = engine.get_decision(row["decision_id"])["outcomes"]  # type: ignore[index]
    assert [o["kind"] for o in outcomes] == ["impression", "click"]
    assert outcomes[1]["item_ids"] == [clicked]


def test_the_frequency_cap_holds_per_person_per_slot_for_24_hours(
    make_engine: Callable[..., Engine], clock: FixedClock
) -> None:
    engine = make_engine(batch={"frequency_cap": {"per_day": 1, "slots": {"email-hero": 2}}})
    for user in ("a", "b"):
        consent(engine, user, marketing=True)
    first, _ = run(engine, slot="newsletter", users=["a"])
    assert first[0]["status"] == "decided"
    clock.advance(3600)
    second, summary = run(engine, slot="newsletter", users=["a", "b", "b"])
    assert [r.get("reason") for r in second] == ["frequency_cap", None, "frequency_cap"]
    assert summary["skipped"] == {"frequency_cap": 2}
    # another slot has its own count and its own cap
    hero = [run(engine, slot="email-hero", users=["a"])[0][0]["status"] for _ in range(3)]
    assert hero == ["decided", "decided", "skipped"]
    clock.advance(23 * 3600 + 1)  # 24 hours after the first newsletter decision
    again, _ = run(engine, slot="newsletter", users=["a"])
    assert again[0]["status"] == "decided"


def test_a_cap_of_zero_means_no_cap(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(batch={"frequency_cap": {"per_day": 0}})
    consent(engine, "a", marketing=True)
    statuses = [run(engine, slot="newsletter", users=["a"])[0][0]["status"] for _ in range(3)]
    assert statuses == ["decided"] * 3


def test_the_cap_survives_a_restart_because_it_counts_the_decision_log(
    make_engine: Callable[..., Engine], clock: FixedClock
) -> None:
    engine = make_engine()
    consent(engine, "a", marketing=True)
    run(engine, slot="newsletter", users=["a"])
    # a second service over the same storage (another process, or after a restart) sees it
    from loopwise.engine import Engine as EngineClass

    other = EngineClass(engine.workspace, engine.storage, clock=clock)
    rows, _ = run(other, slot="newsletter", users=["a"])
    assert rows[0]["reason"] == "frequency_cap"


def test_a_segment_audience_is_the_known_people_in_it_now(
    engine: Engine, clock: FixedClock
) -> None:
    running = category(engine, "running")
    for user in ("r1", "r2"):
        consent(engine, user, marketing=True)
        view(engine, clock, user, running[:3])
    consent(engine, "hiker", marketing=True)
    view(engine, clock, "hiker", category(engine, "hiking")[:3])
    send(
        engine,
        clock,
        "track",
        anonymousId="anon-runner",
        event="Product Viewed",
        properties={"product_id": running[0]},
    )
    for item in running[1:3]:
        send(
            engine,
            clock,
            "track",
            anonymousId="anon-runner",
            event="Product Viewed",
            properties={"product_id": item},
        )
    rows, summary = run(engine, slot="email-hero", segment="running_fans")
    assert sorted(row["user_id"] for row in rows) == ["r1", "r2"]
    assert all(row["slot"]["variant"]["id"] == "runners" for row in rows)
    assert summary["anonymous_left_out"] >= 1


def test_personal_content_needs_personalization_consent_too(
    engine: Engine, clock: FixedClock
) -> None:
    consent(engine, "private", marketing=True, personalization=False)
    view(engine, clock, "private", category(engine, "running")[:3])
    rows, _ = run(engine, slot="newsletter", users=["private"])
    kinds = {reason["kind"] for reason in rows[0]["slot"]["reasons"]}
    assert "consent" in kinds
    assert rows[0]["slot"]["ai_influenced"] is False


def test_unknown_slot_and_segment_are_refused_naming_the_field(engine: Engine) -> None:
    with pytest.raises(ValidationFailed) as slot:
        engine.decide_batch(DecideBatchRequest(slot="nope", users=[{"user_id": "a"}]))  # type: ignore[list-item]
    assert slot.value.field == "slot"
    with pytest.raises(ValidationFailed) as segment:
        engine.decide_batch(DecideBatchRequest(slot="newsletter", segment="nope"))
    assert segment.value.field == "segment"


def test_one_audience_exactly() -> None:
    with pytest.raises(ValueError, match="exactly one audience"):
        DecideBatchRequest.model_validate({"slot": "newsletter"})
    with pytest.raises(ValueError, match="exactly one audience"):
        DecideBatchRequest.model_validate({"slot": "s", "segment": "x", "users": ["a"]})


def test_rows_are_written_as_json_lines_or_csv(
    engine: Engine, clock: FixedClock, tmp_path: Path
) -> None:
    consent(engine, "a", marketing=True)
    campaign = engine.decide_batch(
        DecideBatchRequest.model_validate({"slot": "newsletter", "users": ["a", "b"]})
    )
    rows = list(campaign.rows())
    jsonl = tmp_path / "out.jsonl"
    assert write_rows(rows, jsonl) == 2
    assert [orjson.loads(line) for line in jsonl.read_text().splitlines()] == rows
    out = tmp_path / "out.csv"
    assert write_rows(rows, out) == 2
    table = list(csv.DictReader(out.open()))
    assert table[0]["status"] == "decided"
    assert table[0]["items"].split() == [i["id"] for i in rows[0]["slot"]["items"]]
    assert table[1]["reason"] == "no_consent"
    with pytest.raises(ValidationFailed) as bad:
        write_rows(rows, tmp_path / "out.txt")
    assert bad.value.field == "out"


def test_user_files_in_three_shapes(tmp_path: Path) -> None:
    lines = tmp_path / "users.txt"
    lines.write_text("a\n\n b \n")
    assert [u.user_id for u in read_users(lines)] == ["a", "b"]
    table = tmp_path / "users.csv"
    table.write_text("email,user_id\nx@y.z,u1\n,\n")
    assert [u.user_id for u in read_users(table)] == ["u1"]
    jsonl = tmp_path / "users.jsonl"
    jsonl.write_text('{"user_id": "u1"}\n{"anonymous_id": "a1"}\n')
    assert [(u.user_id, u.anonymous_id) for u in read_users(jsonl)] == [("u1", None), (None, "a1")]
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"user_id": "u1"}\n{"user": 3}\n')
    with pytest.raises(ValidationFailed) as bad:
        read_users(broken)
    assert bad.value.field == "users[1]"
    no_column = tmp_path / "nocol.csv"
    no_column.write_text("email\nx@y.z\n")
    with pytest.raises(ValidationFailed):
        read_users(no_column)


def test_erasure_removes_campaign_decisions_and_so_their_cap(
    engine: Engine, clock: FixedClock
) -> None:
    consent(engine, "gone", marketing=True, analytics=True)
    view(engine, clock, "gone", category(engine, "yoga")[:2])
    rows, _ = run(engine, slot="newsletter", users=["gone"])
    decision_id = rows[0]["decision_id"]
    engine.erase_profile("gone")
    assert engine.get_decision(decision_id) is None


def test_a_chunk_reads_consent_and_identities_once_not_per_person(
    make_engine: Callable[..., Engine], clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeding = make_engine()
    known = [f"known-{n}" for n in range(40)]
    for user in known:  # linked identities: their consent keys include their profile's ids
        send(seeding, clock, "identify", userId=user, anonymousId=f"anon-{user}")
    users = [*known, *(f"new-{n}" for n in range(1160))]
    for n, user in enumerate(users):
        consent(seeding, user, marketing=n % 4 != 0)
    seeding.services.decide.flush()
    engine = Engine(seeding.workspace, seeding.services.storage, clock=clock, seed=1)  # cold
    reads: dict[str, int] = {"consent": 0, "resolve": 0, "members": 0}
    stores = {"consent": (engine.services.storage.consent, "get")}
    stores["resolve"] = (engine.services.storage.identities, "resolve")
    stores["members"] = (engine.services.storage.identities, "members")
    for name, (store, method) in stores.items():
        original = getattr(type(store), method)

        def counted(self: Any, *args: Any, _name: str = name, _original: Any = original) -> Any:
            reads[_name] += 1
            return _original(self, *args)

        monkeypatch.setattr(type(store), method, counted)
    rows, summary = run(engine, slot="newsletter", users=users)
    assert summary["skipped"] == {"no_consent": 300} and summary["decided"] == 900
    assert [r["status"] == "skipped" for r in rows] == [n % 4 == 0 for n in range(1200)]
    assert all(count <= 3 * 2 for count in reads.values()), reads  # 3 chunks of 500 people
