"""``loopwise audit export`` and ``loopwise retention run`` on a real data directory."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from loopwise.cli import app
from loopwise.clock import FixedClock
from loopwise.engine import Engine
from loopwise.events.normalize import parse_request

runner = CliRunner()


def prepare(data_dir: Path) -> None:
    """Two people's consent, and events 500 days old (past the default 395-day retention)."""
    clock = FixedClock(datetime.now(UTC) - timedelta(days=500))
    engine, _ = Engine.open(data_dir, clock=clock, environ={})
    try:
        engine.put_consent("anon-1", {"categories": {"personalization": False}, "source": "banner"})
        message = {
            "anonymousId": "anon-1",
            "event": "Product Viewed",
            "messageId": str(uuid.uuid4()),
            "timestamp": clock().isoformat(),
        }
        engine.ingest(parse_request(message, kind="track", received_at=clock()))
        message = {"userId": "user-1", "anonymousId": "anon-1", "messageId": str(uuid.uuid4())}
        engine.ingest(parse_request(message, kind="identify", received_at=clock()))
        engine.put_consent("someone-else", {"categories": {"marketing": True}})
    finally:
        engine.close()


def test_audit_export_per_user_follows_identities(tmp_path: Path) -> None:
    prepare(tmp_path)
    result = runner.invoke(
        app, ["audit", "export", "--data-dir", str(tmp_path), "--user", "user-1", "--json"]
    )
    assert result.exit_code == 0, result.output
    records = json.loads(result.output)
    assert [r["after"] for r in records] == [{"personalization": False}]
    assert records[0]["user"] != "anon-1"  # a salted pseudonym
    everything = runner.invoke(app, ["audit", "export", "--data-dir", str(tmp_path)])
    lines = [json.loads(line) for line in everything.output.splitlines()]
    assert [r["seq"] for r in lines] == [1, 2]


def test_retention_run_dry_run_then_for_real(tmp_path: Path) -> None:
    prepare(tmp_path)
    dry = runner.invoke(
        app, ["retention", "run", "--data-dir", str(tmp_path), "--dry-run", "--json"]
    )
    assert dry.exit_code == 0, dry.output
    planned = json.loads(dry.output)
    assert planned["dry_run"] is True
    assert planned["removed"]["events"] == 2 and planned["removed"]["profiles"] == 1
    real = runner.invoke(app, ["retention", "run", "--data-dir", str(tmp_path)])
    assert real.exit_code == 0, real.output
    assert "removed 0 audit" in real.output and "2 events" in real.output
    again = json.loads(
        runner.invoke(app, ["retention", "run", "--data-dir", str(tmp_path), "--json"]).output
    )
    assert sum(again["removed"].values()) == 0
    # consent survives: the audit trail still verifies and lists both people
    verify = runner.invoke(app, ["audit", "verify", "--data-dir", str(tmp_path)])
    assert verify.exit_code == 0 and "2 records" in verify.output
