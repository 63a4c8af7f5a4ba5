"""decide over HTTP under load, against the same server's ``/healthz`` (the stack's ceiling).

A real ``loopwise serve`` process (SQLite, the sample workspace and catalog) gets ``users``
seeded users through ``/v1/batch``, then:

- ``wrk`` with a fixed connection count measures saturated throughput of ``POST /v1/decide``
  (a Lua script sends the 3-slot page for random users with the server key) and of
  ``GET /healthz``; the ratio of the two is the figure that travels across machines;
- a paced client (threads over urllib3 keep-alive connections) sends decide requests open-loop
  at fixed rates (a request is due at ``t0 + i / rate`` whether or not earlier ones returned)
  and measures each latency from its due time, so a stalled server cannot hide queueing
  (no coordinated omission).

``wrk`` comes from Debian (``apt-get install wrk``); without it the wrk rows are skipped with a
note. wrk2 (fixed-rate wrk) is not packaged in Debian, hence the paced Python client.
"""

from __future__ import annotations

import base64
import random
import re
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import urllib3

from benchmarks.bench_decide import decide_body, percentile
from benchmarks.bench_ingest import SERVER_KEY, WRITE_KEY, start_server, stop_server
from benchmarks.population import START, user_events
from loopwise.catalog.importer import read_items
from loopwise.config import SAMPLE_WORKSPACE

WRK_INSTALL = "wrk not found: install it with `apt-get install -y wrk` (Debian/Ubuntu)"

LUA = """
local bodies = {}
for line in io.lines("%(bodies)s") do bodies[#bodies + 1] = line end
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Basic %(auth)s"
request = function()
  i = i %% #bodies + 1
  return wrk.format(nil, "/v1/decide", nil, bodies[i])
end
"""


def seed_users(url: str, users: int, events_per_user: int = 10) -> list[str]:
    """``users`` users with ``events_per_user`` events each, ingested over HTTP."""
    workspace_items = list(read_items(SAMPLE_WORKSPACE.parent / "items.jsonl"))
    rng = random.Random(1)
    ids = [f"http-{u}" for u in range(users)]
    bodies = []
    for start in range(0, users, 10):
        batch = [
            e
            for anon in ids[start : start + 10]
            for e in user_events(rng, anon, workspace_items, events_per_user, START)
        ]
        bodies.append(orjson.dumps({"batch": batch}))
    with (
        httpx.Client(base_url=url, auth=(WRITE_KEY, ""), timeout=60) as client,
        ThreadPoolExecutor(4) as pool,
    ):
        statuses = list(
            pool.map(
                lambda body: (
                    client.post(
                        "/v1/batch", content=body, headers={"Content-Type": "application/json"}
                    ).status_code
                ),
                bodies,
            )
        )
    if any(s != 200 for s in statuses):
        raise RuntimeError(f"seeding failed: statuses {sorted(set(statuses))}")
    return ids


def _wrk_seconds(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def parse_wrk(output: str) -> dict[str, Any]:
    """Requests/s, latency p50/p99 (ms) and non-2xx count from ``wrk --latency`` output."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors:.*", output)
    if rps is None or p50 is None or p99 is None:
        raise RuntimeError(f"could not read wrk output:\n{output}")
    return {
        "requests_per_s": float(rps.group(1)),
        "p50_ms": _wrk_seconds(p50.group(1)) * 1000,
        "p99_ms": _wrk_seconds(p99.group(1)) * 1000,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errors.group(0) if errors else "",
    }


def run_wrk(
    url: str, path: str, seconds: int, connections: int, script: Path | None = None
) -> dict[str, Any]:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if script is not None:
        command += ["-s", str(script)]
    done = subprocess.run(
        [*command, url + path], capture_output=True, text=True, timeout=seconds + 60, check=True
    )
    return parse_wrk(done.stdout)


def paced(
    url: str, bodies: list[bytes], rate: float, seconds: float, workers: int = 64
) -> dict[str, Any]:
    """Open loop: request ``i`` is due at ``t0 + i / rate``; a pool of threads with keep-alive
    connections sends each as soon as it is due (urllib3: far less client CPU per request than
    an asyncio client, which matters when client and server share two cores)."""
    total = int(rate * seconds)
    parts = urlsplit(url)
    pool = urllib3.HTTPConnectionPool(
        parts.hostname or "127.0.0.1", parts.port, maxsize=workers, block=True, retries=False
    )
    headers = {
        "Content-Type": "application/json",
        "Authorization": "Basic " + base64.b64encode(f"{SERVER_KEY}:".encode()).decode(),
    }
    latencies: list[float] = []
    statuses: list[int] = []

    def send(i: int, due: float) -> None:
        response = pool.urlopen("POST", "/v1/decide", body=bodies[i % len(bodies)], headers=headers)
        latencies.append((time.perf_counter() - due) * 1000)
        statuses.append(response.status)

    with ThreadPoolExecutor(workers) as executor:
        # open the connections first: a burst of new connects overflows the listen backlog and
        # costs a 1 s SYN retransmit, which is the client's doing, not the server's
        list(executor.map(lambda _: pool.urlopen("GET", "/healthz").status, range(workers)))
        start = time.perf_counter()
        futures = []
        for i in range(total):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            futures.append(executor.submit(send, i, due))
        for future in futures:
            future.result()
        elapsed = time.perf_counter() - start
    pool.close()
    latencies.sort()
    return {
        "rate": rate,
        "requests": total,
        "achieved_per_s": total / elapsed,
        "p50_ms": percentile(latencies, 0.50),
        "p99_ms": percentile(latencies, 0.99),
        "non_200": sum(1 for s in statuses if s != 200),
    }


def run(
    users: int = 2000,
    seconds: int = 10,
    connections: int = 16,
    rates: tuple[float, ...] = (100.0, 500.0),
) -> dict[str, Any]:
    result: dict[str, Any] = {"users": users, "seconds": seconds, "connections": connections}
    with tempfile.TemporaryDirectory() as tmp:
        process, url = start_server(Path(tmp) / "data")
        try:
            ids = seed_users(url, users)
            rng = random.Random(3)
            bodies = [orjson.dumps(decide_body(rng.choice(ids))) for _ in range(1000)]
            with httpx.Client(base_url=url, auth=(SERVER_KEY, "")) as client:
                for body in bodies[:100]:  # warm up and check the route works
                    reply = client.post(
                        "/v1/decide", content=body, headers={"Content-Type": "application/json"}
                    )
                    reply.raise_for_status()
            if shutil.which("wrk") is None:
                result["wrk"] = None
                result["wrk_note"] = WRK_INSTALL
                print(WRK_INSTALL, flush=True)
            else:
                lines = Path(tmp) / "bodies.jsonl"
                lines.write_bytes(b"\n".join(bodies) + b"\n")
                script = Path(tmp) / "decide.lua"
                auth = base64.b64encode(f"{SERVER_KEY}:".encode()).decode()
                script.write_text(LUA % {"bodies": lines, "auth": auth})
                health = run_wrk(url, "/healthz", seconds, connections)
                decide = run_wrk(url, "/v1/decide", seconds, connections, script)
                result["wrk"] = {
                    "health": health,
                    "decide": decide,
                    "ratio": decide["requests_per_s"] / health["requests_per_s"],
                }
            result["paced"] = [paced(url, bodies, rate, seconds) for rate in rates]
        finally:
            stop_server(process)
    return result


if __name__ == "__main__":
    print(run(users=300, seconds=3))
