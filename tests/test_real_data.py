"""Real third-party data through the real ingest path: OTTO shopping sessions."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from loopwise.config import parse_workspace
from loopwise.engine import Engine
from loopwise.events.normalize import parse_request
from loopwise.storage.memory import MemoryStorage

OTTO = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "otto" / "train.jsonl"
EVENT_NAMES = {"clicks": "Product Viewed", "carts": "Product Added", "orders": "Order Completed"}


@pytest.mark.skipif(not OTTO.exists(), reason=f"OTTO fixture not found at {OTTO}")
def test_otto_sessions_become_profiles_with_views_carts_and_orders() -> None:
    sessions = [orjson.loads(line) for line in OTTO.read_text().splitlines() if line.strip()]
    engine = Engine(parse_workspace({}), MemoryStorage())
    counts = {"clicks": 0, "carts": 0, "orders": 0}
    for session in sessions:
        batch = []
        for i, event in enumerate(session["events"]):
            counts[event["type"]] += 1
            when = datetime.fromtimestamp(event["ts"] / 1000, UTC).isoformat()
            props: dict[str, object] = {"product_id": str(event["aid"])}
            if event["type"] == "orders":
                props = {
                    "order_id": f"{session['session']}-{i}",
                    "products": [{"product_id": str(event["aid"])}],
                }
            batch.append(
                {
                    "type": "track",
                    "anonymousId": f"otto-{session['session']}",
                    "event": EVENT_NAMES[event["type"]],
                    "properties": props,
                    "timestamp": when,
                    "messageId": f"otto-{session['session']}-{i}",
                }
            )
        engine.ingest(parse_request({"batch": batch}, kind="batch", received_at=datetime.now(UTC)))
    assert counts == {"clicks": 800, "carts": 52, "orders": 10}
    assert engine.counts()["events"] == 862
    assert engine.counts()["profiles"] == len(sessions) == 20
    profiles = [engine.profile_view(f"otto-{s['session']}") for s in sessions]
    assert sum(p["profile"]["item_views"] for p in profiles if p) == 800
    assert sum(p["profile"]["purchases"] for p in profiles if p) == 10
    # sessions spanning hours of real inactivity are split into several visits
    assert any(p and p["profile"]["sessions"] > 1 for p in profiles)
