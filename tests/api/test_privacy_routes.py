"""Erasure, export and "Why am I seeing this?" over HTTP (the engine side: tests/privacy)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import ADMIN, SERVER, WRITE, basic
from tests.api.fake_engine import FakeEngine

PROFILE = {"profile": {"traits": {"email": "ada@example.com"}}, "segments": ["new_visitors"]}
DECISION = {
    "decision_id": "d_1",
    "profile_id": "p_1",
    "ai_influenced": True,
    "slots": [
        {
            "slot": "recommended",
            "ai_influenced": True,
            "reasons": [
                {
                    "kind": "strategy",
                    "text": "Strategy category_affinity: popular in your top "
                    'category "running shoes"',
                    "ref": "category_affinity",
                },
                {"kind": "filter", "text": "Filters: in stock"},
                {
                    "kind": "model",
                    "text": "AI-influenced: chosen automatically from your own "
                    "activity on this site",
                    "ref": "category_affinity",
                },
            ],
        },
        {
            "slot": "hero",
            "ai_influenced": False,
            "reasons": [{"kind": "variant", "text": 'Variant "v2": the slot\'s default content'}],
        },
    ],
    "outcomes": [],
}


def test_erase_returns_the_receipt_and_unknown_is_a_404_problem(
    client: TestClient, engine: FakeEngine
) -> None:
    engine.profiles["u1"] = PROFILE
    response = client.delete("/v1/profiles/u1", headers=basic(ADMIN))
    assert response.status_code == 200, response.text
    assert response.json()["identifiers"] == ["u1"] and response.json()["erased_at"]
    again = client.delete("/v1/profiles/u1", headers=basic(ADMIN))
    assert again.status_code == 404
    assert again.headers["content-type"].startswith("application/problem+json")
    assert again.json()["field"] == "identifier"


def test_erase_and_export_need_the_admin_key(client: TestClient, engine: FakeEngine) -> None:
    engine.profiles["u1"] = PROFILE
    assert client.delete("/v1/profiles/u1", headers=basic(SERVER)).status_code == 403
    assert client.get("/v1/profiles/u1/export", headers=basic(SERVER)).status_code == 403
    assert "u1" in engine.profiles


def test_export_is_an_attachment(client: TestClient, engine: FakeEngine) -> None:
    engine.profiles["u1"] = PROFILE
    response = client.get("/v1/profiles/u1/export", headers=basic(ADMIN))
    assert response.status_code == 200
    assert response.headers["content-disposition"].startswith("attachment;")
    assert response.json()["profile"]["traits"]["email"] == "ada@example.com"
    assert client.get("/v1/profiles/nobody/export", headers=basic(ADMIN)).status_code == 404


def test_why_in_plain_words_with_the_write_key(client: TestClient, engine: FakeEngine) -> None:
    engine.decisions["d_1"] = DECISION
    response = client.get("/v1/decisions/d_1/why", headers=basic(WRITE))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["decision_id"] == "d_1" and body["ai_influenced"] is True
    recommended, hero = body["slots"]
    assert recommended["summary"] == 'Because it is popular in your top category "running shoes"'
    assert any(text.startswith("AI-influenced") for text in recommended["reasons"])
    assert hero["ai_influenced"] is False and hero["reasons"][-1].startswith("Not AI-influenced")
    text = response.text
    for internal in ("category_affinity", "v2", "Filters", "p_1"):
        assert internal not in text
    missing = client.get("/v1/decisions/d_9/why", headers=basic(WRITE))
    assert missing.status_code == 404 and missing.json()["field"] == "decision_id"
