"""Rate limits held in Redis: one bucket for every worker, and per-process when Redis is down."""

from __future__ import annotations

import shutil
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import redis

from loopwise.api.edge_settings import RateLimit
from loopwise.config import SAMPLE_WORKSPACE
from loopwise.distributed import ratelimit
from loopwise.distributed.ratelimit import RedisTokenBuckets
from tests.distributed.conftest import KEYS, REDIS_URL, running, schema_url, start_server

LIMIT = RateLimit(per_second=0.5, burst=10)


def test_two_workers_share_one_bucket(servers_available: None) -> None:
    namespace = f"test-{uuid.uuid4().hex[:8]}"
    one, other = RedisTokenBuckets(REDIS_URL, namespace), RedisTokenBuckets(REDIS_URL, namespace)
    key = ("server", "abc123")
    taken = [b.take(key, LIMIT) == 0 for _ in range(10) for b in (one, other)]
    assert sum(taken) == 10  # the burst, across both, not 10 each
    wait = one.take(key, LIMIT)
    assert 0 < wait <= 2.0  # one token comes back every 2 s
    assert one.fallbacks == other.fallbacks == 0
    # the address in a bucket key never reaches Redis; only a hash of it does
    client = redis.Redis.from_url(REDIS_URL)
    names = [name.decode() for name in client.scan_iter(f"loopwise:{namespace}:rl:*")]
    assert len(names) == 1 and "abc123" not in names[0]
    assert 0 < int(client.ttl(names[0])) <= 21  # an idle bucket goes away once it is full again
    client.delete(*names)


def test_redis_down_falls_back_to_per_process_buckets(caplog: object) -> None:
    buckets = RedisTokenBuckets("redis://127.0.0.1:1/0", "down")  # nothing listens on port 1
    key = ("server", "abc123")
    assert [buckets.take(key, LIMIT) == 0 for _ in range(11)] == [True] * 10 + [False]
    assert buckets.fallbacks == 11  # never raised: each request counted in this process
    assert "Redis is unreachable" in caplog.text  # type: ignore[attr-defined]
    assert caplog.text.count("Redis is unreachable") == 1  # type: ignore[attr-defined]


def test_the_limit_holds_across_two_workers_over_http(schema: str, tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    shutil.copytree(SAMPLE_WORKSPACE.parent, workspace)
    config = workspace / "loopwise.yaml"
    config.write_text(
        config.read_text()
        + f"\nrate_limits:\n  server: {{per_second: {LIMIT.per_second}, burst: {LIMIT.burst}}}\n"
    )
    server = start_server(
        tmp_path,
        schema_url(schema),
        REDIS_URL,
        workers=2,
        name="rl",
        extra_args=["--workspace", str(config)],
    )
    headers = {"Authorization": f"Bearer {KEYS['server']}", "Connection": "close"}

    def one(n: int) -> int:
        # a connection of its own each time, so requests land on either worker
        return httpx.get(f"{server.url}/v1/profiles/u{n}", headers=headers, timeout=30).status_code

    with running(server):
        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(one, range(60)))
        elapsed = time.monotonic() - started
    accepted = sum(status != 429 for status in statuses)
    assert set(statuses) <= {200, 404, 429}, statuses
    # per-process buckets would let each worker take its own burst (up to 2 x 10)
    assert LIMIT.burst <= accepted <= LIMIT.burst + LIMIT.per_second * elapsed + 1, (
        accepted,
        elapsed,
    )


def test_the_redis_client_uses_tight_timeouts_and_does_not_retry_them() -> None:
    buckets = RedisTokenBuckets("redis://127.0.0.1:1/0", "opts")
    kwargs = buckets._redis.connection_pool.connection_kwargs
    assert kwargs["socket_connect_timeout"] == ratelimit.CONNECT_TIMEOUT_S <= 0.05
    assert kwargs["socket_timeout"] == ratelimit.READ_TIMEOUT_S <= 0.05
    assert kwargs.get("retry_on_timeout") in (None, False)
    buckets.close()


def test_a_redis_that_never_answers_falls_back_to_local_buckets() -> None:
    # a listener that accepts the connection and never replies: the read timeout must fire
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    port = silent.getsockname()[1]
    try:
        buckets = RedisTokenBuckets(f"redis://127.0.0.1:{port}/0", "silent")
        assert buckets.take(("server", "k"), LIMIT) == 0
        assert buckets.fallbacks == 1  # the local bucket answered, the request was not failed
        buckets.close()
    finally:
        silent.close()
