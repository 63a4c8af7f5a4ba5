"""Journeys: steps processed per second with many people in a journey, and delivery throughput
of the outbox to a local receiver.

    python -m benchmarks --only journeys [--quick]

On SQLite (the default backend), an engine on the event-time clock with one journey (a cart
abandonment: enter on "Product Added", wait 1 h, send a webhook). ``people`` people add to their
cart (ingested in batches of 1,000: the journey hook runs inside each batch's unit of work), then
one event an hour later moves the clock past every wait and ``tick`` steps all of them: each
step reads the person's profile and consent, runs the state machine, writes the new state and
queues a delivery in the same transaction. Then the delivery worker sends every queued webhook,
signed, to a receiver on 127.0.0.1 that answers 200 (8 sends at a time).
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from loopwise.clock import EventTimeClock, isoformat
from loopwise.config import SAMPLE_WORKSPACE, load_workspace_file, parse_workspace
from loopwise.engine import Engine
from loopwise.events.normalize import parse_request
from loopwise.storage.sqlite import SqliteStorage

SECRET_ENV = "LOOPWISE_BENCH_WEBHOOK_SECRET"
T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
HEADING = "## journeys: steps per second, and outbox delivery to a local receiver"


class _Receiver:
    def __init__(self) -> None:
        self.count = 0
        lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with lock:
                    receiver.count += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _messages(run: str, start: int, count: int, at: datetime) -> list[dict[str, Any]]:
    consent = {"consent": {"categoryPreferences": {"marketing": True}}}
    return [
        {"type": "track", "userId": f"b{i}", "event": "Product Added",
         "messageId": f"{run}-{i}", "timestamp": isoformat(at),
         "properties": {"item_id": "sku-1"}, "context": consent}
        for i in range(start, start + count)
    ]  # fmt: skip


def run(people: int = 100_000, batch: int = 1_000) -> dict[str, Any]:
    os.environ[SECRET_ENV] = "bench-secret"
    receiver = _Receiver()
    document = load_workspace_file(SAMPLE_WORKSPACE).model_dump(mode="json", by_alias=True)
    document.pop("items", None)
    document["webhooks"] = {"endpoints": [{"key": "crm", "url": receiver.url,
                                           "secret_env": SECRET_ENV}]}  # fmt: skip
    document["journeys"] = [{"key": "cart", "template": "cart_abandonment", "endpoint": "crm"}]
    workspace = parse_workspace(document)
    with tempfile.TemporaryDirectory() as tmp:
        storage = SqliteStorage(Path(tmp) / "loopwise.db")
        engine = Engine(workspace, storage, clock=EventTimeClock(T0))
        try:
            run_id = uuid.uuid4().hex[:8]
            started = time.perf_counter()
            for first in range(0, people, batch):
                messages = _messages(run_id, first, min(batch, people - first), T0)
                engine.ingest(parse_request({"batch": messages}, kind="batch", received_at=T0))
            ingest_seconds = time.perf_counter() - started
            waiting = engine.journey("cart")["steps"][0]["waiting"]
            later = T0 + timedelta(hours=2)
            marker = _messages(run_id + "-late", people, 1, later)
            marker[0]["event"] = "Product Viewed"
            # the marker's own batch steps the first due states; the tick the rest
            started = time.perf_counter()
            engine.ingest(parse_request({"batch": marker}, kind="batch", received_at=later))
            stepped = engine.tick_journeys()
            tick_seconds = time.perf_counter() - started
            show = engine.journey("cart")
            sent = {s["id"]: s for s in show["steps"]}["reminder"]["sent"]
            started = time.perf_counter()
            delivered = 0
            while True:
                done = engine.deliver(timeout=600)
                delivered += done
                if not engine.storage.outbox.counts().get("pending"):
                    break
            delivery_seconds = time.perf_counter() - started
            counts = engine.storage.outbox.counts()
        finally:
            engine.close()
            receiver.stop()
    return {
        "people": people,
        "waiting": waiting,
        "ingest_seconds": ingest_seconds,
        "ingest_per_s": people / ingest_seconds,
        "stepped": stepped,
        "sent": sent,
        "tick_seconds": tick_seconds,
        "steps_per_s": sent / tick_seconds,
        "delivered": counts.get("delivered", 0),
        "received": receiver.count,
        "delivery_seconds": delivery_seconds,
        "deliveries_per_s": counts.get("delivered", 0) / delivery_seconds,
    }


def markdown(result: dict[str, Any]) -> list[str]:
    return [
        HEADING,
        "",
        "SQLite, one journey (cart abandonment: wait 1 h, then a webhook), the event-time clock. "
        f"{result['people']:,} people add to their cart (batches of 1,000 events; the journey "
        "hook enters each one in the batch's own transaction), then the clock moves past every "
        "wait and the runner steps them all: profile and consent read, state machine, new state "
        "and a queued delivery written in one transaction per 500 people. Then the delivery "
        "worker sends each webhook, HMAC-signed, to a receiver on 127.0.0.1 (8 at a time).",
        "",
        "| what | count | seconds | per second |",
        "| --- | --- | --- | --- |",
        f"| ingest with the journey hook (events) | {result['people']:,} | "
        f"{result['ingest_seconds']:.1f} | {result['ingest_per_s']:,.0f} |",
        f"| journey steps after the wait (people stepped and sent) | {result['sent']:,} | "
        f"{result['tick_seconds']:.1f} | {result['steps_per_s']:,.0f} |",
        f"| webhooks delivered to a local receiver | {result['delivered']:,} | "
        f"{result['delivery_seconds']:.1f} | {result['deliveries_per_s']:,.0f} |",
        "",
        f"People waiting in the journey before the clock moved: {result['waiting']:,}; "
        f"requests the receiver counted: {result['received']:,}.",
    ]


if __name__ == "__main__":
    print(run(people=2_000))
