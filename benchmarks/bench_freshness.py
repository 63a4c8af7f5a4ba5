"""Freshness: time from an event's 200 to the first decision that reflects it.

Against a real ``loopwise serve`` process: for each trial a user views a new item
(``POST /v1/track``, "Product Viewed"); the clock starts when the 200 arrives, and the client then
asks ``POST /v1/decide`` for the ``recently-viewed`` slot until the item is in it. Because ingest
replies only after the event is durable and applied to the profile, the first decide normally
already shows it; the figure is that reply's round trip (plus any polls).
"""

from __future__ import annotations

import tempfile
import threading
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


class BackgroundLoad:
    """Events at a steady rate from another thread (100-event batches over many users), so
    freshness is measured while the server ingests ``rate`` events per second."""

    def __init__(self, url: str, rate: float, items: list[str]) -> None:
        self.url, self.rate, self.items = url, rate, items
        self.sent = 0
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> BackgroundLoad:
        if self.rate > 0:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        interval = 100 / self.rate
        due = time.perf_counter()
        with httpx.Client(base_url=self.url, auth=(WRITE_KEY, ""), timeout=30) as client:
            n = 0
            while not self._stop.is_set():
                batch = [
                    {"type": "track", "anonymousId": f"load-{(n * 100 + i) % 20000}",
                     "event": "Product Viewed", "messageId": str(uuid.uuid4()),
                     "properties": {"product_id": self.items[(n + i) % len(self.items)]}}
                    for i in range(100)
                ]  # fmt: skip
                reply = client.post("/v1/batch", json={"batch": batch})
                self.failures += reply.status_code != 200
                self.sent += 100
                n += 1
                due += interval
                time.sleep(max(0.0, due - time.perf_counter()))


def run(trials: int = 200, background_rate: float = 2000.0) -> dict[str, Any]:
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
                with BackgroundLoad(url, background_rate, items) as load:
                    started = time.perf_counter()
                    for t in range(trials):
                        # a few users, each viewing item after item: every trial changes the slot
                        ms, n = trial(write, server, f"fresh-{t % 20}", items[t % len(items)])
                        timings.append(ms)
                        polls.append(n)
                    achieved = load.sent / (time.perf_counter() - started)
        finally:
            stop_server(process)
    timings.sort()
    return {
        "trials": trials,
        "background_rate": background_rate,
        "achieved_rate": achieved,
        "background_failures": load.failures,
        "p50_ms": percentile(timings, 0.50),
        "p99_ms": percentile(timings, 0.99),
        "max_ms": timings[-1],
        "max_decides": max(polls),
    }


if __name__ == "__main__":
    print(run(trials=30))
