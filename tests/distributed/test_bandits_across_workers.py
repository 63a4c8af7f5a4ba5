"""Two ``loopwise serve`` processes on one PostgreSQL + Redis share one bandit: decisions and
clicks sent to one worker move the posterior served by the other, and a lost Redis (killed,
flushed) heals by the periodic re-derivation from the decision log."""

from __future__ import annotations

import os
import random
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.distributed.conftest import (
    Server,
    eventually,
    free_port,
    running,
    schema_url,
    start_server,
)
from tests.distributed.test_faults import _redis_server
from tests.distributed.test_faults import fresh_schema as fresh_schema

pytestmark = pytest.mark.timeout(600)

SLOT = {
    "kind": "block",
    "strategy": "bandit",
    "bandit": {"warmup": 0, "floor": 0.05},
    "variants": [
        {"id": "a", "content": {"headline": "A"}},
        {"id": "b", "content": {"headline": "B"}},
    ],
}


@pytest.fixture()
def redis_url() -> Iterator[str]:
    port = free_port()  # a Redis of this test's own: killing the shared one would hurt others
    process = _redis_server(port)
    yield f"redis://127.0.0.1:{port}/0"
    process.kill()
    process.wait(timeout=10)


@pytest.fixture()
def resync_fast() -> Iterator[None]:
    yield from _resync_every("2")


@pytest.fixture()
def resync_never() -> Iterator[None]:
    yield from _resync_every("3600")  # only the bus can carry the state across


def _resync_every(seconds: str) -> Iterator[None]:
    old = os.environ.get("LOOPWISE_BANDIT_RESYNC_S")
    os.environ["LOOPWISE_BANDIT_RESYNC_S"] = seconds
    yield
    if old is None:
        os.environ.pop("LOOPWISE_BANDIT_RESYNC_S", None)
    else:
        os.environ["LOOPWISE_BANDIT_RESYNC_S"] = old


def arms(server: Server) -> dict[str, tuple[int, int]]:
    response = server.request("GET", "/v1/admin/bandits", key="admin")
    assert response.status_code == 200, response.text
    out: dict[str, tuple[int, int]] = {}
    for learner in response.json()["bandits"]:
        if learner["slot"] == "banner":
            for arm, c in learner["arms"].items():
                d, s = out.get(arm, (0, 0))
                out[arm] = (d + c["decisions"], s + c["successes"])
    return out


def visit(server: Server, user: str, click_on: str, rng: random.Random) -> tuple[str, bool]:
    """One decision on ``server``; a click when ``click_on`` was shown (and a coin says so)."""
    response = server.request(
        "POST", "/v1/decide", json={"user": {"user_id": user}, "slots": [{"slot": "banner"}]}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    shown = body["slots"][0]["variant"]["id"]
    clicked = shown == click_on and rng.random() < 0.8
    if clicked:
        track = server.request(
            "POST",
            "/v1/track",
            json={
                "userId": user,
                "event": "Content Clicked",
                "properties": {"decision_id": body["decision_id"], "slot": "banner"},
                "messageId": uuid.uuid4().hex,
            },
        )
        assert track.status_code == 200, track.text
    return shown, clicked


def truth(visits: list[tuple[str, bool]]) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for shown, clicked in visits:
        d, s = out.get(shown, (0, 0))
        out[shown] = (d + 1, s + int(clicked))
    return out


def start_pair(tmp: Path, url: str, redis_url: str) -> tuple[Server, Server]:
    a = start_server(tmp, url, redis_url, name="a")
    a.wait_ready()  # the first one migrates
    b = start_server(tmp, url, redis_url, name="b")
    b.wait_ready()
    put = a.request("PUT", "/v1/admin/slots/banner", key="admin", json=SLOT)
    assert put.status_code == 200, put.text
    probe: dict[str, Any] = {"user": {"user_id": "probe"}, "slots": [{"slot": "banner"}]}

    def b_serves_the_slot() -> bool:
        # until the workspace change reaches b, its decide answers 404 (unknown slot)
        reply = b.request("POST", "/v1/decide", json=probe)
        return reply.status_code == 200 and reply.json()["slots"][0].get("variant") is not None

    eventually(b_serves_the_slot, timeout=10)
    return a, b


def test_decisions_and_clicks_on_one_worker_move_the_other_ones_bandit(
    fresh_schema: str, tmp_path: Path, redis_url: str, resync_never: None
) -> None:
    a, b = start_pair(tmp_path, schema_url(fresh_schema), redis_url)
    with running(a, b):
        rng = random.Random(5)
        visits = [visit(a, f"u{n}", "a", rng) for n in range(40)]
        expected = truth(visits)
        decisions, clicks = _totals(expected)
        # every decision and click, on both (the probes that waited for the slot count too)
        took = eventually(
            lambda: (
                arms(b) == arms(a)
                and _totals(arms(b))[1] == clicks
                and _totals(arms(b))[0] >= decisions
            ),
            timeout=30,
        )
        # one more click on A: how long until B's posterior has it (printed for the report)
        before = _totals(arms(b))[1]
        while not visit(a, f"v{uuid.uuid4().hex[:6]}", "a", rng)[1]:
            pass
        took = eventually(lambda: _totals(arms(b))[1] == before + 1, timeout=30)
        print(f"B reflected a click acknowledged by A after {took:.3f} s")
        # the clicks made "a" the favourite on B too: B now shows it with most of the mass
        shown = [visit(b, f"w{n}", "none", rng)[0] for n in range(20)]
        assert shown.count("a") > shown.count("b")


def _totals(counts: dict[str, tuple[int, int]]) -> tuple[int, int]:
    return sum(d for d, _ in counts.values()), sum(s for _, s in counts.values())


def test_a_lost_redis_heals_from_the_decision_log(
    fresh_schema: str, tmp_path: Path, redis_url: str, resync_fast: None
) -> None:
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    a, b = start_pair(tmp_path, schema_url(fresh_schema), redis_url)
    with running(a, b):
        rng = random.Random(9)
        before = [visit(a, f"x{n}", "b", rng) for n in range(15)]
        subprocess.run(["redis-cli", "-p", str(port), "FLUSHALL"], check=True, timeout=10)
        # while the subscribers are cut off, whatever is published is lost
        subprocess.run(
            ["redis-cli", "-p", str(port), "CLIENT", "KILL", "TYPE", "pubsub"],
            check=True,
            timeout=10,
        )
        during = [visit(a, f"y{n}", "b", rng) for n in range(15)]
        after = [visit(b, f"z{n}", "b", rng) for n in range(10)]
        decided = _totals(truth(before + during + after))
        eventually(
            lambda: (
                arms(a) == arms(b)
                and _totals(arms(a))[1] == decided[1]
                and _totals(arms(a))[0] >= decided[0]
            ),
            timeout=30,
            every=0.2,
        )
