from __future__ import annotations

import asyncio
from typing import Any

from fastapi.testclient import TestClient

from loopwise.api.app import create_app
from loopwise.api.metrics import CLIENT_DISCONNECTED
from tests.api.conftest import WRITE, basic, new_engine


def disconnect_mid_body(app: Any, path: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    """Send part of a body, then the client goes away; returns what the app sent back."""
    incoming: list[dict[str, Any]] = [
        {"type": "http.request", "body": b'{"userId": "u1", "eve', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if incoming:
            return incoming.pop(0)
        await asyncio.sleep(3600)  # nothing more ever arrives
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        + [(b"content-type", b"application/json"), (b"host", b"test")],
        "client": ("127.0.0.1", 5000),
        "server": ("test", 80),
        "state": {},
    }
    asyncio.run(app(scope, receive, send))
    return sent


def test_a_client_gone_mid_body_is_counted_apart_from_errors() -> None:
    app = create_app(new_engine())
    with TestClient(app) as client:
        client.get("/healthz")  # start the app (lifespan) before the raw ASGI call
        sent = disconnect_mid_body(app, "/v1/track", basic(WRITE))
        text = client.get("/metrics").text
    assert all(m.get("status") != 500 for m in sent)  # not a server error
    line = (
        'loopwise_http_requests_total{method="POST",route="/v1/track",'
        f'status="{CLIENT_DISCONNECTED}"}} 1.0'
    )
    assert line in text
    assert 'status="500"' not in text


def test_errors_are_still_counted_as_errors() -> None:
    app = create_app(new_engine())
    with TestClient(app) as client:
        client.post(
            "/v1/track", content=b"{", headers={**basic(WRITE), "Content-Type": "application/json"}
        )
        text = client.get("/metrics").text
    assert 'route="/v1/track",status="400"} 1.0' in text
    assert f'status="{CLIENT_DISCONNECTED}"' not in text
