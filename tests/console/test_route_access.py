"""Every console route x every role: a stranger is sent to sign in, a role below the route's
gets 403, the route's role and above get the page (or its own answer: 200, 303, 400, 404...).
A route missing from the table fails the test, so a new route must say who may use it."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from loopwise.engine import Engine
from tests.api.test_route_access import _walk
from tests.console.conftest import ROLES, sign_in

PUBLIC = "public"
ACCESS: dict[tuple[str, str], str] = {
    ("GET", "/ui/login"): PUBLIC,
    ("POST", "/ui/login"): PUBLIC,
    ("GET", "/ui/static/{name:path}"): PUBLIC,
    ("POST", "/ui/logout"): "viewer",
    ("GET", "/ui"): "viewer",
    ("GET", "/ui/segments"): "viewer",
    ("POST", "/ui/segments/preview"): "viewer",
    ("GET", "/ui/segments/overlap"): "viewer",
    ("GET", "/ui/segments/{key}"): "viewer",
    ("GET", "/ui/segments/new"): "editor",
    ("POST", "/ui/segments/save"): "editor",
    ("POST", "/ui/segments/{key}/delete"): "editor",
    ("GET", "/ui/slots"): "viewer",
    ("GET", "/ui/slots/{key}"): "viewer",
    ("POST", "/ui/slots/preview"): "viewer",
    ("POST", "/ui/slots/new"): "editor",
    ("POST", "/ui/slots/{key}/variants"): "editor",
    ("POST", "/ui/slots/{key}/variants/{variant_id}/delete"): "editor",
    ("POST", "/ui/slots/{key}/rules"): "editor",
    ("POST", "/ui/slots/{key}/rules/{rule_id}/move"): "editor",
    ("POST", "/ui/slots/{key}/rules/{rule_id}/delete"): "editor",
    ("POST", "/ui/slots/{key}/settings"): "editor",
    ("POST", "/ui/slots/{key}/json"): "editor",
    ("GET", "/ui/experiments"): "viewer",
    ("POST", "/ui/experiments/plan"): "viewer",
    ("GET", "/ui/experiments/{key}"): "viewer",
    ("POST", "/ui/experiments/create"): "editor",
    ("POST", "/ui/experiments/{key}/status"): "editor",
    ("GET", "/ui/models"): "viewer",
    ("GET", "/ui/models/status"): "viewer",
    ("POST", "/ui/models/train"): "admin",
    ("POST", "/ui/models/rollback"): "admin",
    ("GET", "/ui/people"): "viewer",
    ("POST", "/ui/people/export"): "admin",
    ("POST", "/ui/people/erase"): "admin",
    ("GET", "/ui/privacy"): "viewer",
    ("GET", "/ui/history"): "viewer",
    ("GET", "/ui/history/{revision}"): "viewer",
    ("POST", "/ui/history/{revision}/restore"): "editor",
    ("GET", "/ui/users"): "admin",
    ("POST", "/ui/users/create"): "admin",
    ("POST", "/ui/users/revoke"): "admin",
    ("POST", "/ui/users/sessions/revoke"): "admin",
    ("POST", "/ui/keys/create"): "admin",
    ("POST", "/ui/keys/revoke"): "admin",
}
RANK = {"viewer": 0, "editor": 1, "admin": 2}
SAMPLE_VALUES = {"revision": "1", "name": "console.css", "key": "hero"}


def console_routes(client: TestClient) -> set[tuple[str, str]]:
    found = set()
    for route in _walk(client.app.routes):  # type: ignore[attr-defined]
        path = getattr(route, "path", "")
        if path == "/ui" or path.startswith("/ui/"):
            for method in getattr(route, "methods", None) or ():
                if method != "HEAD":
                    found.add((method, path))
    return found


def url(path: str) -> str:
    return re.sub(r"\{(\w+)(:path)?\}", lambda m: SAMPLE_VALUES.get(m.group(1), "x"), path)


def test_the_table_names_every_console_route(console_client: TestClient) -> None:
    assert console_routes(console_client) == set(ACCESS)


@pytest.mark.parametrize("role", [None, *ROLES])
@pytest.mark.parametrize(("method", "path"), sorted(ACCESS))
def test_status_per_route_and_role(
    console_client: TestClient, console_engine: Engine, method: str, path: str, role: str | None
) -> None:
    least = ACCESS[(method, path)]
    cookies, data = {}, {}
    if role is not None:
        person = sign_in(console_engine, role)
        cookies, data = {"lw_console": person.cookie}, {"csrf": person.csrf}
    console_client.cookies.clear()
    console_client.cookies.update(cookies)
    response = console_client.request(method, url(path), data=data or None)
    to_login = response.status_code == 303 and response.headers["location"].startswith("/ui/login")
    if least == PUBLIC:  # (a sign-in without its form token is refused: tested in test_login)
        assert "needs the" not in response.text and not to_login, response.text[:300]
    elif role is None:
        assert to_login, (response.status_code, response.text[:300])
    elif RANK[role] < RANK[least]:
        assert response.status_code == 403, response.text[:300]
        assert "needs the" in response.text
    elif path == "/ui/logout":  # its own answer is the sign-in page, with the cookie removed
        assert to_login and 'lw_console=""' in response.headers.get("set-cookie", "")
    else:
        assert response.status_code not in (401, 403) and not to_login, response.text[:500]
        assert response.status_code < 500


@pytest.mark.parametrize(
    ("method", "path"), sorted(k for k, v in ACCESS.items() if k[0] == "POST" and v != PUBLIC)
)
def test_a_post_without_the_csrf_token_is_refused(
    console_client: TestClient, console_engine: Engine, method: str, path: str
) -> None:
    person = sign_in(console_engine, "admin")
    console_client.cookies.clear()
    console_client.cookies.set("lw_console", person.cookie)
    response = console_client.post(url(path), data={"csrf": "wrong"})
    assert response.status_code == 403
    assert "security token" in response.text
    assert (
        console_engine.services.workspace.history(1)[0].revision
        == console_engine.services.workspace.revision
    )
