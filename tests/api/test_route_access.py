"""Every route of the app x every key kind: the status codes match the documented access.

The table below is the access contract. A route missing from it fails the test, so a new route
must state who may call it. ``none``/``wrong`` keys get 401 on every protected route, a valid key
of a kind without the scope gets 403, and a key with the scope gets neither (the handler's own
answer: 2xx, 400, 404...).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import BaseRoute

from loopwise.api.app import create_app
from tests.api.conftest import KEYS, bearer, new_engine

PUBLIC = "public"  # no key needed
# the least key kind allowed; every kind "above" it is allowed too
ORDER = {"write": 0, "server": 1, "admin": 2}

INGEST = {("POST", f"/v1/{k}") for k in ("track", "identify", "page", "screen", "group", "alias")}
ACCESS: dict[tuple[str, str], str] = {
    **{route: "write" for route in INGEST},
    ("POST", "/v1/batch"): "write",
    **{("POST", f"/v1/{short}"): "write" for short in "tpigasb"},  # Segment analytics-next
    ("POST", "/beacon/v1/batch"): "write",  # RudderStack beacon, key in ?writeKey=
    ("POST", "/v1/m"): PUBLIC,  # analytics-next's own delivery metrics, not stored
    ("POST", "/v1/decide"): "write",  # public decide: for the caller only (see public_decide)
    ("GET", "/v1/decisions/{decision_id}"): "server",
    ("POST", "/v1/decide/batch"): "server",  # a campaign's audience (docs/channels.md)
    ("POST", "/v1/rerank"): "server",  # search results in personal order
    ("GET", "/v1/edge/bundle"): "server",
    ("GET", "/v1/projects/{write_key}/settings"): PUBLIC,
    ("GET", "/sourceConfig"): PUBLIC,
    ("GET", "/sourceConfig/"): PUBLIC,  # analytics-js asks with the trailing slash
    ("POST", "/v1/edge/exposures"): "server",
    ("GET", "/v1/decisions/{decision_id}/why"): "write",
    ("GET", "/v1/profiles/{identifier}"): "server",
    ("DELETE", "/v1/profiles/{identifier}"): "admin",
    ("GET", "/v1/profiles/{identifier}/export"): "admin",
    ("PUT", "/v1/items"): "admin",
    ("GET", "/v1/items"): "server",
    ("GET", "/v1/items/{item_id}"): "server",
    ("DELETE", "/v1/items/{item_id}"): "admin",
    ("DELETE", "/v1/items"): "admin",
    ("GET", "/v1/admin/workspace"): "admin",
    ("PUT", "/v1/admin/workspace"): "admin",
    ("PUT", "/v1/admin/slots/{key}"): "admin",
    ("DELETE", "/v1/admin/slots/{key}"): "admin",
    ("PUT", "/v1/admin/segments/{key}"): "admin",
    ("DELETE", "/v1/admin/segments/{key}"): "admin",
    ("PUT", "/v1/admin/experiments/{key}"): "admin",
    ("DELETE", "/v1/admin/experiments/{key}"): "admin",
    ("GET", "/v1/admin/workspace/history"): "admin",
    ("GET", "/v1/admin/workspace/history/{revision}"): "admin",
    ("POST", "/v1/admin/workspace/restore"): "admin",
    ("POST", "/v1/admin/replay"): "admin",
    ("POST", "/v1/admin/cluster"): "admin",
    ("GET", "/v1/admin/clusters"): "admin",
    ("POST", "/v1/admin/ope"): "admin",
    ("GET", "/v1/admin/bandits"): "admin",
    ("POST", "/v1/admin/train"): "admin",
    ("GET", "/v1/admin/models"): "admin",
    ("POST", "/v1/admin/models/rollback"): "admin",
    ("POST", "/v1/admin/scores/train"): "admin",
    ("GET", "/v1/admin/scores"): "admin",
    ("POST", "/v1/admin/scores/evaluate"): "admin",
    ("GET", "/v1/experiments"): "server",
    ("GET", "/v1/experiments/{key}/results"): "server",
    ("GET", "/v1/journeys"): "server",
    ("GET", "/v1/journeys/{key}"): "server",
    ("GET", "/v1/admin/outbox"): "admin",
    ("POST", "/v1/admin/outbox/{delivery_id}/retry"): "admin",
    ("GET", "/v1/experiments/{key}/results/over-time"): "server",
    ("GET", "/v1/consent/{user_id}"): "server",
    ("PUT", "/v1/consent/{user_id}"): "server",
    ("GET", "/v1/consent/{user_id}/history"): "server",
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/loopwise.js"): PUBLIC,
    ("GET", "/loopwise.mjs"): PUBLIC,
    ("GET", "/loopwise-preferences.js"): PUBLIC,
    ("GET", "/loopwise-edge.js"): PUBLIC,
    ("GET", "/sample"): PUBLIC,
    ("GET", "/sample/store.css"): PUBLIC,
    ("GET", "/sample/reset"): PUBLIC,
    ("GET", "/sample/items/{item_id:path}"): PUBLIC,
    ("GET", "/sample/category/{name:path}"): PUBLIC,
}
# what each route's documentation says ("Scope: decide (server or admin key)") -> least kind
DOCUMENTED = {
    "ingest": "write",
    "explain": "write",
    "decide": "server",
    "public_decide": "write",
    "read_profiles": "server",
    "consent": "server",
}


def _walk(routes: list[BaseRoute]) -> Iterator[BaseRoute]:
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _walk(inner.routes)
        else:
            yield route


def _routes() -> list[tuple[str, str, str]]:
    app = create_app(new_engine())
    found = []
    for route in _walk(app.routes):
        path = getattr(route, "path", None)
        for method in sorted(getattr(route, "methods", None) or ()):
            if method != "HEAD" and path is not None:
                description = route.description if isinstance(route, APIRoute) else ""
                found.append((method, path, description or ""))
    return found


ROUTES = _routes()


def test_the_table_names_every_route_and_agrees_with_the_docs() -> None:
    assert {(m, p) for m, p, _ in ROUTES} == set(ACCESS)
    for method, path, description in ROUTES:
        documented = re.search(r"Scope: (\w+)", description)
        if documented is not None:
            scope = documented.group(1)
            assert DOCUMENTED.get(scope, scope) == ACCESS[(method, path)], (method, path)


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(new_engine())) as test_client:
        yield test_client


def _call(client: TestClient, method: str, path: str, key: str | None) -> Any:
    url = re.sub(r"\{[^}]+\}", "x", path)
    body = b"{}" if method in ("POST", "PUT", "DELETE") else None
    headers = {**bearer(key), "Content-Type": "application/json"}
    client.app.state.engine = new_engine()  # type: ignore[attr-defined]
    return client.request(method, url, content=body, headers=headers)


@pytest.mark.parametrize("kind", list(KEYS))
@pytest.mark.parametrize(("method", "path"), sorted(ACCESS))
def test_status_per_route_and_key_kind(
    client: TestClient, method: str, path: str, kind: str
) -> None:
    response = _call(client, method, path, KEYS[kind])
    least = ACCESS[(method, path)]
    if least == PUBLIC:
        assert response.status_code not in (401, 403), response.text
    elif kind in ("none", "wrong"):
        assert response.status_code == 401, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
    elif ORDER[kind] < ORDER[least]:
        assert response.status_code == 403, response.text
    else:
        assert response.status_code not in (401, 403), response.text
