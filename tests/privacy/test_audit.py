"""The hash-chained consent audit trail: appends, verification, tampering, erasure records."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from loopwise.cli import app
from loopwise.clock import FixedClock
from loopwise.engine import Engine
from loopwise.privacy import audit
from loopwise.storage.memory import MemoryStorage

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def body(user: str, after: dict[str, bool], at: datetime) -> dict:
    return audit.consent_record(
        user=user, subject="p_" + user, before={}, after=after, source="api",
        policy_version="v1", at=at,
    )  # fmt: skip


def chain_of(n: int) -> list[dict]:
    records: list[dict] = []
    for i in range(n):
        previous = records[-1] if records else None
        at = T0 + timedelta(minutes=i)
        records.append(audit.chain(previous, None, body(f"u{i}", {"analytics": i % 2 == 0}, at)))
    return records


def test_each_record_carries_the_hash_of_the_one_before() -> None:
    records = chain_of(3)
    assert records[0]["prev_hash"] == audit.GENESIS
    assert [r["prev_hash"] for r in records[1:]] == [r["hash"] for r in records[:-1]]
    assert [r["seq"] for r in records] == [1, 2, 3]
    assert audit.verify_chain(records) == audit.Verification(True, 3)


def test_the_hash_is_sha256_of_canonical_json_with_sorted_keys() -> None:
    import hashlib

    record = chain_of(1)[0]
    without = {k: v for k, v in record.items() if k != "hash"}
    expected = hashlib.sha256(orjson.dumps(without, option=orjson.OPT_SORT_KEYS)).hexdigest()
    assert record["hash"] == expected
    shuffled = dict(reversed(list(record.items())))
    assert audit.record_hash(shuffled) == record["hash"]


@pytest.mark.parametrize(
    ("tamper", "broken"),
    [
        (lambda rs: rs[1]["after"].update(analytics=True), 2),  # a changed choice
        (lambda rs: rs.pop(1), 2),  # a removed record
        (lambda rs: rs.insert(0, rs.pop(2)), 3),  # reordered
        (lambda rs: rs[2].update(hash="0" * 64), 3),  # a forged hash
    ],
)
def test_verify_names_the_first_broken_record(tamper, broken: int) -> None:  # type: ignore[no-untyped-def]
    records = chain_of(4)
    tamper(records)
    result = audit.verify_chain(records)
    assert not result.ok and result.broken_seq == broken and result.problem


def test_a_chain_cut_by_retention_verifies_from_its_anchor() -> None:
    records = chain_of(4)
    kept = records[2:]
    assert not audit.verify_chain(kept).ok
    assert audit.verify_chain(kept, anchor=kept[0]["prev_hash"]).ok


def test_pseudonymous_ids_are_salted_and_stable() -> None:
    a = audit.pseudonymous_id("user@example.com", "salt-1")
    assert a == audit.pseudonymous_id("user@example.com", "salt-1")
    assert a != audit.pseudonymous_id("user@example.com", "salt-2")
    assert "user" not in a and len(a) == 64


def test_erasure_records_keep_only_the_pseudonymous_id() -> None:
    storage = MemoryStorage()
    from loopwise.config import SAMPLE_WORKSPACE, load_workspace_file

    engine = Engine(load_workspace_file(SAMPLE_WORKSPACE), storage, clock=FixedClock(T0))
    engine.put_consent("erase-me", {"categories": {"analytics": True}})
    pseudonym = engine.pseudonymous_id("erase-me")
    assert pseudonym == engine.pseudonymous_id("erase-me")
    record = engine.append_erasure_record(pseudonym, {"events": 3, "profiles": 1})
    assert record["kind"] == "erasure" and record["user"] == pseudonym
    assert "erase-me" not in orjson.dumps(record).decode()
    records = list(storage.audit.iter())
    assert [r["kind"] for r in records] == ["consent", "erasure"]
    assert audit.verify_chain(records).ok


def test_tampering_with_sqlite_is_named_by_loopwise_audit_verify(tmp_path: Path) -> None:
    engine, _ = Engine.open(tmp_path, environ={})
    try:
        for i, source in enumerate(["banner", "settings", "banner"]):
            engine.put_consent(f"user-{i}", {"categories": {"analytics": i != 1}, "source": source})
    finally:
        engine.close()
    runner = CliRunner()
    ok = runner.invoke(app, ["audit", "verify", "--data-dir", str(tmp_path)])
    assert ok.exit_code == 0, ok.output
    assert "3 records" in ok.output

    conn = sqlite3.connect(tmp_path / "loopwise.db")
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("UPDATE audit SET at = 'x' WHERE seq = 2")
        # an attacker with file access can drop the trigger; the chain still gives them away
        (blob,) = conn.execute("SELECT record FROM audit WHERE seq = 2").fetchone()
        record = orjson.loads(blob)
        record["after"] = {"analytics": True}
        conn.execute("DROP TRIGGER audit_append_only")
        conn.execute("UPDATE audit SET record = ? WHERE seq = 2", (orjson.dumps(record),))
        conn.commit()
    finally:
        conn.close()
    broken = runner.invoke(app, ["audit", "verify", "--data-dir", str(tmp_path), "--json"])
    assert broken.exit_code == 1
    report = orjson.loads(broken.output)
    assert report["ok"] is False and report["broken_seq"] == 2 and report["checked"] == 1
    text = runner.invoke(app, ["audit", "verify", "--data-dir", str(tmp_path)])
    assert text.exit_code == 1 and "record 2" in text.output


def test_verify_without_a_database_is_an_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["audit", "verify", "--data-dir", str(tmp_path / "none")])
    assert result.exit_code == 2
