"""The Python client and the ASGI middleware against a real ``loopwise serve``; the circuit
breaker falls back to the defaults when Loopwise is down."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from loopwise.client import AsyncClient, CircuitBreaker, Client, LoopwiseClientError
from loopwise.client.render import LoopwiseMiddleware
from tests.e2e.conftest import SERVER_KEY, Server, free_port, start_server, stop_server

PAGE = """<html><body><div data-loopwise-slot="hero">
<h2 data-loopwise-field="headline">Default headline</h2></div></body></html>"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp("client") / "data")
    yield running
    stop_server(running)


def test_decide_track_and_why(server: Server) -> None:
    client = Client(server.url, SERVER_KEY, timeout=5)
    assert client.track("Product Viewed", anonymous_id="c-1", properties={"product_id": "run-002"})
    decision = client.decide(["hero", {"slot": "trending", "n": 2}], anonymous_id="c-1")
    assert decision is not None
    assert [s["slot"] for s in decision["slots"]] == ["hero", "trending"]
    assert len(decision["slots"][1]["items"]) == 2
    time.sleep(0.3)  # the decision log is written behind the reply
    why = client.why(decision["decision_id"])
    assert why is not None and why["slots"][0]["slot"] == "hero"
    with pytest.raises(LoopwiseClientError) as refused:
        client.decide(["no-such-slot"], anonymous_id="c-1")
    assert refused.value.status == 400 and refused.value.problem["field"] == "slots[0].slot"
    client.close()


def test_the_breaker_opens_and_falls_back_to_defaults() -> None:
    breaker = CircuitBreaker(failures=2, reset_after=60)
    client = Client(f"http://127.0.0.1:{free_port()}", SERVER_KEY, retries=1, breaker=breaker)
    assert client.decide(["hero"], anonymous_id="x") is None
    assert client.decide(["hero"], anonymous_id="x") is None
    assert breaker.open
    started = time.perf_counter()
    assert client.decide(["hero"], anonymous_id="x") is None  # skipped: no connection attempt
    assert client.track("E", anonymous_id="x") is False
    assert time.perf_counter() - started < 0.05
    client.close()


def test_the_async_client_decides(server: Server) -> None:
    async def run() -> dict[str, object] | None:
        client = AsyncClient(server.url, SERVER_KEY, timeout=5)
        try:
            return await client.decide(["hero"], user_id="async-user")
        finally:
            await client.aclose()

    decision = asyncio.run(run())
    assert decision is not None and decision["slots"][0]["kind"] == "block"  # type: ignore[index]


def middleware_app(client: Client | AsyncClient) -> Starlette:
    async def home(request: object) -> HTMLResponse:
        return HTMLResponse(PAGE)

    app = Starlette(routes=[Route("/", home)])
    app.add_middleware(LoopwiseMiddleware, client=client)
    return app


def test_the_middleware_renders_slots_before_the_html_leaves(server: Server) -> None:
    client = Client(server.url, SERVER_KEY, timeout=5)
    with TestClient(middleware_app(client)) as browser:
        first = browser.get("/")
        assert "Default headline" not in first.text
        assert 'data-loopwise-state="filled"' in first.text
        assert "lw_aid=" in first.headers["set-cookie"]
        assert int(first.headers["content-length"]) == len(first.content)
        second = browser.get("/")  # the cookie is kept: the same visitor
        assert "set-cookie" not in second.headers
    client.close()


def test_the_middleware_keeps_the_defaults_when_loopwise_is_down(tmp_path: Path) -> None:
    client = AsyncClient(f"http://127.0.0.1:{free_port()}", SERVER_KEY, retries=0)
    with TestClient(middleware_app(client)) as browser:
        page = browser.get("/")
    assert "Default headline" in page.text and 'data-loopwise-state="default"' in page.text
