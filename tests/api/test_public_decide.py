"""The public decide scope over HTTP with the real keys and engine: the write key decides for the
caller's own anonymous id, or for a user id proven by a signed user token, and never returns
another person's data."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from loopwise.api.app import create_app
from loopwise.api.keys import KeyKind, KeyRing
from loopwise.api.user_tokens import user_token
from loopwise.catalog.importer import read_items
from loopwise.clock import FixedClock
from loopwise.config import SAMPLE_WORKSPACE, load_workspace_file
from loopwise.engine import Engine
from loopwise.events.normalize import parse_request
from loopwise.storage.memory import MemoryStorage
from tests.api.conftest import ADMIN, SERVER, WRITE, bearer

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
SECRET = "identity-secret-for-tests"
SLOTS = [{"slot": "hero"}, {"slot": "recently-viewed"}]


@pytest.fixture()
def engine() -> Engine:
    ring = KeyRing.from_plain(
        {KeyKind.WRITE: [WRITE], KeyKind.SERVER: [SERVER], KeyKind.ADMIN: [ADMIN]},
        identity_secret=SECRET,
    )
    workspace = load_workspace_file(SAMPLE_WORKSPACE)
    engine = Engine(workspace, MemoryStorage(), keys=ring, clock=FixedClock(T0), seed=1)
    engine.put_items(list(read_items(SAMPLE_WORKSPACE.parent / "items.jsonl")))
    # the victim: a known user with a cart and a history, signed in on the device "victim-aid"
    events = [
        {"type": "identify", "userId": "victim", "anonymousId": "victim-aid", "traits": {}},
        *[
            {"type": "track", "userId": "victim", "event": "Product Viewed",
             "properties": {"product_id": item}}
            for item in ("run-001", "run-002", "run-003")
        ],
        {"type": "track", "userId": "victim", "event": "Product Added",
         "properties": {"product_id": "run-001", "price": 100, "quantity": 1}},
    ]  # fmt: skip
    engine.ingest(parse_request({"batch": events}, kind="batch", received_at=T0))
    return engine


@pytest.fixture()
def client(engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(engine)) as test_client:
        yield test_client


def decide(client: TestClient, key: str, user: dict[str, Any]) -> Any:
    return client.post("/v1/decide", json={"user": user, "slots": SLOTS}, headers=bearer(key))


def recently_viewed(body: dict[str, Any]) -> list[str]:
    slot = next(s for s in body["slots"] if s["slot"] == "recently-viewed")
    return [item["id"] for item in slot["items"]]


def knows_nothing(body: dict[str, Any]) -> bool:
    """Decided as a first visit: the recently-viewed row is a cold start of popular items."""
    slot = next(s for s in body["slots"] if s["slot"] == "recently-viewed")
    return any(r["kind"] == "cold_start" for r in slot["reasons"]) and not slot["ai_influenced"]


def test_the_server_key_decides_for_anyone(client: TestClient) -> None:
    body = decide(client, SERVER, {"user_id": "victim"}).json()
    assert "high_purchase_intent" in body["segments"]
    assert recently_viewed(body)[:3] == ["run-003", "run-002", "run-001"]


def test_a_write_key_user_id_without_a_token_is_refused_without_an_anonymous_id(
    client: TestClient,
) -> None:
    response = decide(client, WRITE, {"user_id": "victim"})
    assert response.status_code == 403
    problem = response.json()
    assert problem["field"] == "user.user_token"
    assert response.headers["content-type"].startswith("application/problem+json")


def test_a_write_key_user_id_with_a_wrong_token_is_decided_as_the_anonymous_id(
    client: TestClient, engine: Engine
) -> None:
    response = decide(
        client, WRITE, {"user_id": "victim", "anonymous_id": "attacker", "user_token": "0" * 64}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert knows_nothing(body)  # not the victim's history
    assert body["profile_id"] != engine.resolve("victim")
    assert "high_purchase_intent" not in body["segments"]


def test_a_valid_user_token_decides_for_that_user(client: TestClient, engine: Engine) -> None:
    token = user_token(SECRET, "victim")
    body = decide(client, WRITE, {"user_id": "victim", "user_token": token}).json()
    assert body["profile_id"] == engine.resolve("victim")
    assert recently_viewed(body)[:3] == ["run-003", "run-002", "run-001"]


def test_a_write_key_never_reads_a_known_users_profile_by_their_anonymous_id(
    client: TestClient, engine: Engine
) -> None:
    """The victim's device id is linked to their known profile; holding it is not proof."""
    body = decide(client, WRITE, {"anonymous_id": "victim-aid"}).json()
    assert body["profile_id"] != engine.resolve("victim")
    assert knows_nothing(body)
    # the victim's own signed-in page gets their profile
    token = user_token(SECRET, "victim")
    own = decide(client, WRITE, {"user_id": "victim", "anonymous_id": "victim-aid",
                                 "user_token": token}).json()  # fmt: skip
    assert own["profile_id"] == engine.resolve("victim")


def test_a_write_key_decides_for_its_own_anonymous_profile(
    client: TestClient, engine: Engine
) -> None:
    events = [{"type": "track", "anonymousId": "visitor", "event": "Product Viewed",
               "properties": {"product_id": "hike-002"}}]  # fmt: skip
    engine.ingest(parse_request({"batch": events}, kind="batch", received_at=T0))
    body = decide(client, WRITE, {"anonymous_id": "visitor"}).json()
    assert body["profile_id"] == engine.resolve("visitor")
    assert recently_viewed(body)[0] == "hike-002"


def test_cors_lets_an_allowed_origin_call_decide(engine: Engine) -> None:
    document = engine.workspace_document()
    document["cors"] = {"allowed_origins": ["https://shop.example"]}
    engine.replace_workspace(document)
    with TestClient(create_app(engine)) as client:
        preflight = client.options(
            "/v1/decide",
            headers={
                "Origin": "https://shop.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert preflight.status_code == 204
        assert "POST" in preflight.headers["access-control-allow-methods"]
        other = client.options(
            "/v1/decide",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert other.status_code == 403
        answer = client.post(
            "/v1/decide",
            json={"user": {"anonymous_id": "a1"}, "slots": SLOTS},
            headers={**bearer(WRITE), "Origin": "https://shop.example"},
        )
        assert answer.headers["access-control-allow-origin"] == "https://shop.example"
