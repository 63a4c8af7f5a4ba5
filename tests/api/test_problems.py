"""Every failure is problem+json with a field; bad input is never a 500; 500s reveal nothing."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient

from loopwise.api.problems import PROBLEM_JSON, field_path
from loopwise.errors import StorageUnavailable
from tests.api.conftest import ADMIN, SERVER, WRITE, basic, bearer, new_engine, use_engine
from tests.api.fake_engine import FakeEngine


def assert_problem(response: Any, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    assert problem["type"].startswith("https://loopwise.dev/problems/")
    assert problem["title"] and problem["detail"]
    if field is not None:
        assert problem["field"] == field
    return problem


@pytest.mark.parametrize(
    ("loc", "expected"),
    [
        (("body", "slots", 0, "n"), "slots[0].n"),
        (("body", "user"), "user"),
        (("body",), "body"),
        (("query", "limit"), "limit"),
        (("body", "a", 1, 2, "b"), "a[1][2].b"),
    ],
)
def test_field_path(loc: tuple[str | int, ...], expected: str) -> None:
    assert field_path(loc) == expected


DECIDE_BODIES: list[tuple[bytes, str]] = [
    (b"{not json", "body"),
    (b"[1, 2]", "body"),
    (b'"text"', "body"),
    (b"{}", "user"),
    (b'{"user": {"anonymous_id": "a"}}', "slots"),
    (b'{"user": {"anonymous_id": 5}, "slots": [{"slot": "hero"}]}', "user.anonymous_id"),
    (b'{"user": {"anonymous_id": "a"}, "slots": [{"slot": "h", "n": "many"}]}', "slots[0].n"),
    (b'{"user": {"anonymous_id": "a"}, "slots": [], "extra": 1}', "slots"),
]


@pytest.mark.parametrize(("body", "field"), DECIDE_BODIES)
def test_bad_decide_bodies_are_400_with_the_field(
    shared_client: TestClient, body: bytes, field: str
) -> None:
    client = shared_client
    engine = use_engine(client, new_engine())
    headers = {**bearer(SERVER), "Content-Type": "application/json"}
    problem = assert_problem(client.post("/v1/decide", content=body, headers=headers), 400, field)
    assert "/openapi.json" in problem["detail"]
    assert problem["errors"][0]["field"] == field
    assert engine.decide_calls == []


def test_all_validation_errors_are_listed(client: TestClient) -> None:
    body = {"user": {"anonymous_id": ""}, "slots": [{"slot": "a", "n": 0}, {"slot": "b", "x": 1}]}
    problem = assert_problem(client.post("/v1/decide", json=body, headers=bearer(SERVER)), 400)
    fields = {error["field"] for error in problem["errors"]}
    assert {"user.anonymous_id", "slots[0].n", "slots[1].x"} <= fields
    assert "slots[1].x is not a known field" in " ".join(e["detail"] for e in problem["errors"])


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/track", b"{oops"),
        ("POST", "/v1/batch", b'{"batch": "nope"}'),
        ("POST", "/v1/batch", b'{"batch": [7]}'),
        ("POST", "/v1/identify", b"[]"),
        ("POST", "/v1/alias", b'{"userId": "u"}'),
        ("PUT", "/v1/items", b'{"items": {"id": "x"}}'),
        ("PUT", "/v1/items", b'[{"id": "x", "price": "cheap"}]'),
        ("PUT", "/v1/items", b"{nope"),
        ("DELETE", "/v1/items", b'{"ids": [1]}'),
        ("PUT", "/v1/admin/workspace", b"[]"),
        ("PUT", "/v1/admin/workspace", b'{"slots": 3}'),
        ("PUT", "/v1/admin/slots/hero", b'{"kind": "carousel"}'),
        ("PUT", "/v1/admin/slots/hero", b"null"),
    ],
)
def test_malformed_input_is_never_a_500(
    shared_client: TestClient, method: str, path: str, body: bytes
) -> None:
    client = shared_client
    engine = use_engine(client, new_engine())
    headers = {**basic(ADMIN), "Content-Type": "application/json"}
    response = client.request(method, path, content=body, headers=headers)
    problem = assert_problem(response, 400)
    assert problem["instance"] == path
    assert problem.get("field")
    assert engine.batches == [] and engine.items == {} and engine.workspace["slots"] == []


def test_unknown_route_and_wrong_method(client: TestClient) -> None:
    assert_problem(client.get("/v1/nothing-here"), 404)
    response = client.get("/v1/track")
    problem = assert_problem(response, 405)
    assert response.headers["allow"] == "POST"
    assert "POST" in problem["detail"]


def test_unauthorized_carries_the_challenge(client: TestClient) -> None:
    response = client.get("/v1/profiles/u1")
    assert_problem(response, 401, "Authorization")
    assert "Basic" in response.headers["www-authenticate"]
    assert "Bearer" in response.headers["www-authenticate"]


def test_forbidden_is_403(client: TestClient) -> None:
    assert_problem(client.get("/v1/profiles/u1", headers=basic(WRITE)), 403, "Authorization")


def test_unexpected_exception_is_a_bare_500_and_only_its_type_is_logged(
    client: TestClient,
    engine: FakeEngine,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def boom(identifier: str) -> None:
        raise KeyError(f"secret-{identifier}")

    monkeypatch.setattr(engine, "profile_view", boom)
    with caplog.at_level(logging.DEBUG):
        response = client.get("/v1/profiles/jane@example.com", headers=bearer(SERVER))
    problem = assert_problem(response, 500)
    assert "secret" not in response.text and "KeyError" not in response.text
    assert problem["type"].endswith("internal-error")
    ours = " ".join(r.getMessage() for r in caplog.records if r.name.startswith("loopwise"))
    assert "KeyError" in ours
    assert "secret" not in ours and "jane" not in ours


def test_storage_unavailable_is_503(
    client: TestClient, engine: FakeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(events: object) -> None:
        raise StorageUnavailable("The database is locked; retry in a moment.")

    monkeypatch.setattr(engine, "submit_ingest", down)
    response = client.post("/v1/track", json={"userId": "u", "event": "E"}, headers=basic(WRITE))
    assert_problem(response, 503)
