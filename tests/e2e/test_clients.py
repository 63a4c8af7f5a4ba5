"""Unmodified Segment and RudderStack Python clients, pointed at the server, just work.

They are server-side SDKs, so they are configured with the server key as their "write key" (a
userId from the public write key needs a user token; docs/privacy.md)."""

from __future__ import annotations

import uuid

from rudderstack.analytics.client import Client as RudderClient
from segment.analytics.client import Client as SegmentClient

from tests.e2e.conftest import SERVER_KEY, Server


def test_segment_analytics_python(server: Server) -> None:
    errors: list[Exception] = []
    client = SegmentClient(
        SERVER_KEY, host=server.url, sync_mode=True, on_error=lambda e, batch: errors.append(e)
    )
    user = f"user-{uuid.uuid4()}"
    anon = f"anon-{uuid.uuid4()}"
    client.page(anonymous_id=anon, name="Home", properties={"url": "https://shop.test/"})
    client.track(anonymous_id=anon, event="Product Viewed", properties={"product_id": "run-002"})
    client.identify(user_id=user, anonymous_id=anon, traits={"plan": "gold", "email": "x@y.z"})
    client.track(
        user_id=user,
        event="Order Completed",
        properties={
            "order_id": "o1",
            "revenue": 120.0,
            "products": [{"product_id": "run-002", "price": 120.0}],
        },
    )
    client.flush()
    assert not errors
    with server.client() as http:
        view = http.get(f"/v1/profiles/{user}").json()
    profile = view["profile"]
    assert profile["user_id"] == user
    assert anon in profile["anonymous_ids"]
    assert profile["traits"]["plan"] == "gold"
    assert profile["page_views"] == 1
    assert profile["purchases"] == 1 and profile["revenue"] == 120.0
    assert "buyer" in view["segments"]


def test_rudder_sdk_python(server: Server) -> None:
    client = RudderClient(SERVER_KEY, host=server.url, sync_mode=True, gzip=True)
    user = f"user-{uuid.uuid4()}"
    client.identify(user_id=user, traits={"country_of_origin": "DE"})
    client.track(user_id=user, event="Product Added", properties={"product_id": "hike-003"})
    client.page(user_id=user, name="Cart")
    client.flush()
    with server.client() as http:
        response = http.get(f"/v1/profiles/{user}")
    assert response.status_code == 200, response.text
    profile = response.json()["profile"]
    assert profile["traits"]["country_of_origin"] == "DE"
    assert profile["cart"]["items"] == ["hike-003"]
    assert profile["page_views"] == 1
