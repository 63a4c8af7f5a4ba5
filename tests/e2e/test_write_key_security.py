"""What the public write key can reach, over HTTP with the real keys: the browser's own anonymous
id, and a userId only with the user token the site's server computes. Never another person's
consent, identity or profile."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from loopwise.api.user_tokens import user_token
from tests.e2e.conftest import IDENTITY_SECRET, SERVER_KEY, WRITE_KEY, Server


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def send(server: Server, key: str, *messages: dict[str, Any]) -> httpx.Response:
    with server.client(key) as client:
        return client.post("/v1/batch", json={"batch": list(messages)})


def consent(server: Server, user_id: str) -> dict[str, bool]:
    with server.client(SERVER_KEY) as client:
        reply = client.get(f"/v1/consent/{user_id}")
    assert reply.status_code == 200, reply.text
    return dict(reply.json()["categories"])


def withdraw(server: Server, user_id: str) -> None:
    with server.client(SERVER_KEY) as client:
        body = {"categories": {"personalization": False, "analytics": False}, "source": "banner"}
        reply = client.put(f"/v1/consent/{user_id}", json=body)
    assert reply.status_code == 200, reply.text


def grant_all(anonymous_id: str | None, user_id: str, token: str | None = None) -> dict[str, Any]:
    context: dict[str, Any] = {
        "consent": {
            "categoryPreferences": {"personalization": True, "analytics": True, "pricing": True}
        }
    }
    if token is not None:
        context["userToken"] = token
    message: dict[str, Any] = {"type": "track", "event": "Banner Closed", "context": context}
    message["userId"] = user_id
    if anonymous_id is not None:
        message["anonymousId"] = anonymous_id
    return message


def profile(server: Server, identifier: str) -> dict[str, Any] | None:
    with server.client(SERVER_KEY) as client:
        reply = client.get(f"/v1/profiles/{identifier}")
    if reply.status_code == 404:
        return None
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def events_of(server: Server, user_id: str) -> int:
    found = profile(server, user_id)
    return 0 if found is None else int(found["profile"]["events"])


# -- consent -------------------------------------------------------------------------------------
def test_a_write_key_event_cannot_regrant_a_withdrawn_persons_consent(server: Server) -> None:
    victim = uid("victim")
    assert send(server, SERVER_KEY, {"type": "identify", "userId": victim}).status_code == 200
    withdraw(server, victim)
    assert consent(server, victim)["personalization"] is False
    reply = send(server, WRITE_KEY, grant_all(uid("attacker-device"), victim))
    assert reply.status_code == 200
    assert consent(server, victim)["personalization"] is False
    assert consent(server, victim)["analytics"] is False


def test_a_write_key_event_cannot_withdraw_a_victims_analytics(server: Server) -> None:
    victim = uid("victim")
    track = {"type": "track", "userId": victim, "event": "Pricing Viewed"}
    assert send(server, SERVER_KEY, track).status_code == 200
    refuse = {
        "type": "track",
        "userId": victim,
        "anonymousId": uid("attacker-device"),
        "event": "Banner Closed",
        "context": {"consent": {"categoryPreferences": {"analytics": False}}},
    }
    assert send(server, WRITE_KEY, refuse).status_code == 200
    assert consent(server, victim)["analytics"] is True
    for _ in range(5):  # the victim's own later events are all kept
        assert send(server, SERVER_KEY, track).status_code == 200
    assert events_of(server, victim) == 6


def test_the_signed_in_visitor_sets_their_own_consent_with_their_token(server: Server) -> None:
    person = uid("person")
    device = uid("device")
    token = user_token(IDENTITY_SECRET, person)
    identify = {"type": "identify", "userId": person, "anonymousId": device}
    assert send(server, WRITE_KEY, {**identify, "context": {"userToken": token}}).status_code == 200
    withdraw(server, person)
    assert send(server, WRITE_KEY, grant_all(device, person, token)).status_code == 200
    assert consent(server, person)["personalization"] is True


def test_a_browser_sets_the_consent_of_its_own_anonymous_id(server: Server) -> None:
    device = uid("device")
    refuse = {
        "type": "page",
        "anonymousId": device,
        "name": "Home",
        "context": {"consent": {"categoryPreferences": {"personalization": False}}},
    }
    assert send(server, WRITE_KEY, refuse).status_code == 200
    assert consent(server, device)["personalization"] is False


# -- identity ------------------------------------------------------------------------------------
def test_identify_with_the_write_key_cannot_take_over_a_known_profile(server: Server) -> None:
    victim = uid("victim")
    history = [
        {"type": "identify", "userId": victim, "traits": {"email": f"{victim}@shop.example"}},
        {"type": "track", "userId": victim, "event": "Product Viewed",
         "properties": {"product_id": "run-001"}},
    ]  # fmt: skip
    assert send(server, SERVER_KEY, *history).status_code == 200
    attacker = uid("attacker-device")
    takeover = {"type": "identify", "anonymousId": attacker, "userId": victim}
    assert send(server, WRITE_KEY, takeover).status_code == 200
    victim_profile = profile(server, victim)
    assert victim_profile is not None and attacker not in victim_profile["identifiers"]
    with server.client(SERVER_KEY) as client:
        decided = client.post(
            "/v1/decide",
            json={"user": {"anonymous_id": attacker}, "slots": [{"slot": "recently-viewed"}]},
        ).json()
    assert decided["profile_id"] != victim_profile["profile"]["id"]
    assert not any(r["kind"] == "segment" for r in decided["slots"][0]["reasons"])
    own = profile(server, attacker)
    assert own is not None and own["identifiers"] == [attacker]
    assert own["profile"]["recently_viewed"] == [] and "email" not in own["profile"]["traits"]


def test_identify_with_a_valid_token_links_the_device(server: Server) -> None:
    person = uid("person")
    device = uid("device")
    identify = {
        "type": "identify",
        "anonymousId": device,
        "userId": person,
        "context": {"userToken": user_token(IDENTITY_SECRET, person)},
    }
    assert send(server, WRITE_KEY, identify).status_code == 200
    found = profile(server, person)
    assert found is not None and set(found["identifiers"]) == {device, person}
    # the token is checked, never stored
    with server.client("lw_admin_e2e") as client:
        exported = client.get(f"/v1/profiles/{person}/export").json()
    assert all("userToken" not in e["context"] for e in exported["events"])


def test_a_wrong_token_is_no_proof(server: Server) -> None:
    person = uid("person")
    device = uid("device")
    identify = {
        "type": "identify",
        "anonymousId": device,
        "userId": person,
        "context": {"userToken": user_token("another-secret", person)},
    }
    assert send(server, WRITE_KEY, identify).status_code == 200
    assert profile(server, person) is None


def test_the_server_key_is_trusted_without_a_token(server: Server) -> None:
    person = uid("person")
    device = uid("device")
    identify = {"type": "identify", "anonymousId": device, "userId": person}
    assert send(server, SERVER_KEY, identify).status_code == 200
    found = profile(server, person)
    assert found is not None and set(found["identifiers"]) == {device, person}


def test_a_write_key_event_naming_only_a_user_id_is_refused(server: Server) -> None:
    victim = uid("victim")
    reply = send(
        server,
        WRITE_KEY,
        {"type": "page", "anonymousId": uid("device"), "name": "Home"},
        {"type": "track", "userId": victim, "event": "Order Completed"},
    )
    assert reply.status_code == 403
    problem = reply.json()
    assert problem["field"] == "batch[1].context.userToken"
    assert "server key" in problem["detail"]
    assert profile(server, victim) is None
