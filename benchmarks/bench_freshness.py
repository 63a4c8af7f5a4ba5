"""Freshness: time from an event's 200 to the first decision that reflects it.

Against a real ``loopwise serve`` process: for each trial a user views a new item
(``POST /v1/track``, "Product Viewed"); the clock starts when the 200 arrives, and the client then
asks ``POST /v1/decide`` for the ``recently-viewed`` slot until the item is in it. Because ingest
replies only after the event is durable and applied to the profile, the first decide normally
already shows it; the figure is that reply's round trip (plus any polls).
"""

from __future__ import annotations

import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from benchmarks.bench_decide import percentile
from benchmarks.bench_ingest import SERVER_KEY, WRITE_KEY, start_server, stop_server
from loopwise.catalog.importer import read_items
from loopwise.config import SAMPLE_WORKSPACE

SLOT = "recently-viewed"
POLL_LIMIT_S = 5.0


def trial(write: httpx.Client, server: httpx.Client, anon: str, item_id: str) -> tuple[float, int]:
    """Milliseconds from the track's 200 to a decide showing ``item_id``, and decides needed."""
    event = {
        "anonymousId": anon,
        "event": "Product Viewed",
        "properties": {"product_id": item_id},
        "messageId": str(uuid.uuid4()),
        "timestamp": datetime.now(UTC).isoformat(),
    }
    write.post("/v1/track", json=event).raise_for_status()
    acked = time.perf_counter()
    body = {"user": {"anonymous_id": anon}, "slots": [{"slot": SLOT, "n": 4}]}
    polls = 0
    while time.perf_counter() - acked < POLL_LIMIT_S:
        polls += 1
        reply = server.post("/v1/decide", json=body)
        reply.raise_for_status()
        shown = [i["id"] for s in reply.json()["slots"] for i in s["items"]]
        if item_id in shown:
            return (time.perf_counter() - acked) * 1000, polls
    raise RuntimeError(f"item {item_id} not shown {POLL_LIMIT_S} s after its event's 200")


def run(trials: int = 200) -> dict[str, Any]:
    catalog = read_items(SAMPLE_WORKSPACE.parent / "items.jsonl")
    items = [i.id for i in catalog if i.in_stock is not False]  # the slot shows in-stock items
    with tempfile.TemporaryDirectory() as tmp:
        process, url = start_server(Path(tmp) / "data")
        try:
            with (
                httpx.Client(base_url=url, auth=(WRITE_KEY, ""), timeout=30) as write,
                httpx.Client(base_url=url, auth=(SERVER_KEY, ""), timeout=30) as server,
            ):
                for t in range(10):  # warm up
                    trial(write, server, f"warm-{t}", items[t])
                timings, polls = [], []
                for t in range(trials):
                    # a few users, each viewing item after item: every trial changes the slot
                    ms, n = trial(write, server, f"fresh-{t % 20}", items[t % len(items)])
                    timings.append(ms)
                    polls.append(n)
        finally:
            stop_server(process)
    timings.sort()
    return {
        "trials": trials,
        "p50_ms": percentile(timings, 0.50),
        "p99_ms": percentile(timings, 0.99),
        "max_ms": timings[-1],
        "max_decides": max(polls),
    }


if __name__ == "__main__":
    print(run(trials=30))
