"""The whole loop over HTTP: events -> profile -> segment -> the very next decision -> feedback."""

from __future__ import annotations

import base64
import uuid

import httpx

from tests.e2e.conftest import SERVER_KEY, WRITE_KEY, Server

HEADERS = {"Authorization": "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()}
PAGE = [{"slot": "hero"}, {"slot": "recommended", "n": 4}, {"slot": "trending", "n": 4}]


def items_in(server: Server, category: str) -> list[dict]:
    with server.client(SERVER_KEY) as client:
        items = client.get("/v1/items", params={"limit": 1000}).json()["items"]
    return [i for i in items if category in i["categories"]]


def test_viewing_a_category_puts_the_user_in_its_segment_and_shapes_the_next_decision(
    server: Server,
) -> None:
    anon = f"anon-{uuid.uuid4()}"
    running = items_in(server, "running")
    assert len(running) >= 5
    batch = [
        {
            "type": "track",
            "anonymousId": anon,
            "event": "Product Viewed",
            "properties": {"product_id": item["id"]},
            "messageId": str(uuid.uuid4()),
        }
        for item in running[:3]
    ]
    response = httpx.post(f"{server.url}/v1/batch", json={"batch": batch}, headers=HEADERS)
    assert response.status_code == 200

    with server.client(SERVER_KEY) as client:
        view = client.get(f"/v1/profiles/{anon}").json()
        assert "running_fans" in view["segments"]
        assert any(
            h["segment"] == "running_fans" and h["change"] == "entered"
            for h in view["segment_history"]
        )

        decision = client.post(
            "/v1/decide",
            json={
                "user": {"anonymous_id": anon},
                "context": {"page": {"url": "https://shop.test/"}},
                "slots": PAGE,
            },
        )
        assert decision.status_code == 200, decision.text
        body = decision.json()
    assert "running_fans" in body["segments"]
    slots = {s["slot"]: s for s in body["slots"]}
    assert slots["hero"]["variant"]["id"] == "running-season"
    running_ids = {item["id"] for item in running}
    recommended = [item["id"] for item in slots["recommended"]["items"]]
    assert len(recommended) == 4
    assert set(recommended) <= running_ids
    shown = recommended + [item["id"] for item in slots["trending"]["items"]]
    assert len(shown) == len(set(shown)), "an item appeared twice on one page"
    for slot in body["slots"]:
        assert slot["reasons"], "every slot explains itself"

    # feedback: a click carrying the decision id is attributed to it
    click = {
        "anonymousId": anon,
        "event": "Content Clicked",
        "messageId": str(uuid.uuid4()),
        "properties": {
            "decision_id": body["decision_id"],
            "slot": "recommended",
            "item_id": recommended[0],
        },
    }
    assert httpx.post(f"{server.url}/v1/track", json=click, headers=HEADERS).status_code == 200
    with server.client(SERVER_KEY) as client:
        logged = client.get(f"/v1/decisions/{body['decision_id']}").json()
    assert logged["profile_id"] == body["profile_id"]
    assert [o["kind"] for o in logged["outcomes"]] == ["click"]


def test_unknown_user_gets_a_cold_start_decision(server: Server) -> None:
    with server.client(SERVER_KEY) as client:
        response = client.post(
            "/v1/decide",
            json={
                "user": {"user_id": f"never-seen-{uuid.uuid4()}"},
                "slots": PAGE,
            },
        )
    assert response.status_code == 200
    body = response.json()
    slots = {s["slot"]: s for s in body["slots"]}
    assert slots["hero"]["variant"]["id"] == "welcome"
    assert len(slots["recommended"]["items"]) == 4


def test_decide_rejects_unknown_slot_with_field(server: Server) -> None:
    with server.client(SERVER_KEY) as client:
        response = client.post(
            "/v1/decide", json={"user": {"anonymous_id": "x"}, "slots": [{"slot": "nope"}]}
        )
    assert response.status_code == 400
    assert response.json()["field"] == "slots[0].slot"
