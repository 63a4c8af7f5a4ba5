from __future__ import annotations

import asyncio
import resource
from typing import Any

import orjson
import pytest

from loopwise.api.server_limits import (
    RESERVED_FILES,
    ConcurrencyLimit,
    RequestTimeout,
    ServerLimits,
    raise_open_file_limit,
    raw_problem,
)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"header_timeout": 0}, "header_timeout must be more than 0"),
        ({"body_timeout": -1}, "body_timeout must be more than 0"),
        ({"max_concurrent_requests": 0}, "max_concurrent_requests must be 1 or more"),
        ({"max_connections": -5}, "max_connections must be 0"),
    ],
)
def test_limits_out_of_range_are_refused(change: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        ServerLimits(**change).check()


def test_connection_cap_follows_the_file_limit_unless_given() -> None:
    assert ServerLimits().connection_cap(20_000) == 20_000 - RESERVED_FILES
    assert ServerLimits(max_connections=50).connection_cap(20_000) == 50


def test_open_file_limit_is_raised_to_the_hard_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lowered = min(soft, 512)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowered, hard))
    try:
        raised = raise_open_file_limit()
        assert raised == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        assert raised >= soft
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_raw_problem_is_a_closing_problem_response() -> None:
    raw = raw_problem(RequestTimeout("Too slow."), {"retry-after": "1"})
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 Request timeout\r\n")
    assert b"connection: close" in head and b"retry-after: 1" in head
    assert f"content-length: {len(body)}".encode() in head
    assert orjson.loads(body)["type"] == "https://loopwise.dev/problems/request-timeout"


def test_concurrency_limit_refuses_beyond_the_limit_but_not_health() -> None:
    release = asyncio.Event()
    sent: list[list[dict[str, Any]]] = []

    async def slow_app(scope: Any, receive: Any, send: Any) -> None:
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def call(limited: ConcurrencyLimit, path: str) -> None:
        messages: list[dict[str, Any]] = []
        sent.append(messages)

        async def send(message: dict[str, Any]) -> None:
            messages.append(message)

        await limited({"type": "http", "path": path}, None, send)

    async def scenario() -> None:
        limited = ConcurrencyLimit(slow_app, limit=2, retry_after=3)
        first = [asyncio.create_task(call(limited, "/v1/decide")) for _ in range(2)]
        await asyncio.sleep(0)
        await call(limited, "/v1/decide")  # over the limit: answered at once
        health = asyncio.create_task(call(limited, "/healthz"))
        await asyncio.sleep(0)
        assert limited.in_flight == 2
        release.set()
        await asyncio.gather(*first, health)
        assert limited.in_flight == 0

    asyncio.run(scenario())
    statuses = [messages[0]["status"] for messages in sent]
    assert sorted(statuses) == [200, 200, 200, 503]
    busy = next(messages for messages in sent if messages[0]["status"] == 503)
    assert (b"retry-after", b"3") in busy[0]["headers"]
    assert orjson.loads(busy[1]["body"])["type"] == "https://loopwise.dev/problems/server-busy"
