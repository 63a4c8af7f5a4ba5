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
    response = client.post(
        "/v1/track", json={"anonymousId": "a", "event": "E"}, headers=basic(WRITE)
    )
    assert_problem(response, 503)


DECIDE_OK = b'{"user": {"anonymous_id": "a"}, "slots": [{"slot": "hero"}]}'


@pytest.mark.parametrize(
    ("headers", "body", "field"),
    [
        # curl -d sends form encoding: refused like on every other JSON route, not "not a dict"
        ({"Content-Type": "application/x-www-form-urlencoded"}, DECIDE_OK, "Content-Type"),
        ({"Content-Type": "application/xml"}, DECIDE_OK, "Content-Type"),
        # used to be ignored: a plain body with a gzip header was decided
        ({"Content-Type": "application/json", "Content-Encoding": "gzip"}, DECIDE_OK,
         "Content-Encoding"),
    ],
)  # fmt: skip
def test_decide_body_follows_the_shared_json_rules(
    client: TestClient, engine: FakeEngine, headers: dict[str, str], body: bytes, field: str
) -> None:
    response = client.post("/v1/decide", content=body, headers={**bearer(SERVER), **headers})
    assert_problem(response, 415, field)
    assert engine.decide_calls == []


@pytest.mark.parametrize(
    "body", [b'{"user": {"anonymous_id": "a"}, "slots": [{"slot": "recs", "n": NaN}]}', b"null"]
)
def test_decide_is_strict_json_and_names_the_body(client: TestClient, body: bytes) -> None:
    headers = {**bearer(SERVER), "Content-Type": "application/json"}
    problem = assert_problem(client.post("/v1/decide", content=body, headers=headers), 400, "body")
    assert "DecideRequest" not in problem["detail"]


def test_decide_checks_the_key_before_the_body(client: TestClient) -> None:
    response = client.post("/v1/decide", content=b"{oops", headers={"Content-Type": "text/plain"})
    assert_problem(response, 401, "Authorization")


def test_decide_without_content_type_is_read_as_json(client: TestClient) -> None:
    response = client.post("/v1/decide", content=DECIDE_OK, headers=bearer(SERVER))
    assert response.status_code == 200, response.text


def test_huge_item_offset_is_a_400_not_a_500(client: TestClient) -> None:
    response = client.get("/v1/items?offset=99999999999999999999999", headers=bearer(SERVER))
    assert_problem(response, 400, "offset")


def test_openapi_documents_the_decide_body(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/v1/decide"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/DecideRequest"}
    schemas = spec["components"]["schemas"]
    assert {"DecideRequest", "DecideUser", "SlotRequest", "ItemFilters"} <= set(schemas)


def test_openapi_documents_401_and_403_on_every_admin_route(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    admin = [ops for path, ops in paths.items() if path.startswith("/v1/admin/")]
    assert admin
    for operations in admin:
        for operation in operations.values():
            assert {"401", "403"} <= set(operation["responses"]), operation["summary"]


@pytest.mark.parametrize(
    ("slot", "field"),
    [({"slot": "recs", "n": "4"}, "slots[0].n"),
     ({"slot": "recs", "filters": {"in_stock": "yes"}}, "slots[0].filters.in_stock")],
)  # fmt: skip
def test_decide_does_not_coerce_strings(
    client: TestClient, slot: dict[str, Any], field: str
) -> None:
    body = {"user": {"anonymous_id": "a"}, "slots": [slot]}
    assert_problem(client.post("/v1/decide", json=body, headers=bearer(SERVER)), 400, field)
