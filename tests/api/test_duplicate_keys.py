"""Admin, workspace, catalog and consent bodies that name a key twice are refused with a 400
naming the key, on every route that reads them (JSON keeps one value silently otherwise)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from loopwise.errors import ValidationFailed
from loopwise.events.limits import check_unique_keys, parse_json
from tests.api.conftest import ADMIN, SERVER, bearer

SEGMENT = b'{"name": "Fans", "condition": {"profile.sessions": 1, "profile.sessions": 2}}'
ROUTES = [
    ("PUT", "/v1/admin/workspace", ADMIN, b'{"slots": [], "slots": []}', "body.slots"),
    ("PUT", "/v1/admin/segments/fans", ADMIN, SEGMENT, "body.condition.profile.sessions"),
    ("PUT", "/v1/admin/slots/hero", ADMIN, b'{"kind": "block", "kind": "list"}', "body.kind"),
    ("POST", "/v1/admin/workspace/restore", ADMIN, b'{"revision": 1, "revision": 2}', None),
    ("POST", "/v1/admin/cluster", ADMIN, b'{"seed": 1, "seed": 2}', "body.seed"),
    ("POST", "/v1/admin/models/rollback", ADMIN, b'{"version": "a", "version": "b"}', None),
    ("PUT", "/v1/items", ADMIN, b'[{"id": "a", "title": "x", "title": "y"}]', "body[0].title"),
    ("DELETE", "/v1/items", ADMIN, b'{"ids": ["a"], "ids": ["b"]}', "body.ids"),
    ("PUT", "/v1/consent/u1", SERVER, b'{"analytics": true, "analytics": false}', None),
]


@pytest.mark.parametrize(("method", "path", "key", "body", "field"), ROUTES)
def test_a_key_named_twice_is_a_400_naming_it(
    client: TestClient, method: str, path: str, key: str, body: bytes, field: str | None
) -> None:
    response = client.request(
        method, path, content=body, headers={**bearer(key), "Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert "twice" in problem["detail"]
    if field is not None:
        assert problem["field"] == field
    else:
        assert problem["field"].startswith("body.")


def test_unique_keys_pass_and_paths_reach_into_lists() -> None:
    assert parse_json(b'{"a": {"b": 1}, "c": [{"b": 2}, {"b": 3}]}', unique_keys=True)
    check_unique_keys('{"a": "x:y"}')  # one key, however many colons
    with pytest.raises(ValidationFailed) as caught:
        parse_json(b'{"a": [{"b": 1}, {"b": 2, "c": 1, "b": 3}]}', unique_keys=True)
    assert caught.value.field == "body.a[1].b"


def test_ingest_keeps_the_last_value_as_segment_clients_expect() -> None:
    assert parse_json(b'{"a": 1, "a": 2}') == {"a": 2}
