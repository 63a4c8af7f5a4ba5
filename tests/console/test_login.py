"""Signing in over HTTP: the form's token, the cookie's flags, wrong passwords, slowing down,
no open redirect, signing out."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from loopwise.console.app import Console
from loopwise.engine import Engine

PASSWORD = "a long enough password"


def form_token(client: TestClient) -> str:
    page = client.get("/ui/login")
    assert page.status_code == 200
    found = re.search(r'name="login_csrf" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def login(client: TestClient, email: str, password: str, next_path: str = "/ui") -> object:
    token = form_token(client)
    return client.post(
        "/ui/login",
        data={"login_csrf": token, "email": email, "password": password, "next": next_path},
    )


def test_sign_in_sets_an_httponly_lax_cookie_and_sign_out_ends_the_session(
    console_client: TestClient, console_engine: Engine
) -> None:
    console: Console = console_client.app.state.console  # type: ignore[attr-defined]
    console.people.create("login@example.com", "viewer", PASSWORD)
    console_client.cookies.clear()
    response = login(console_client, "login@example.com", PASSWORD, "/ui/segments")
    assert response.status_code == 303 and response.headers["location"] == "/ui/segments"  # type: ignore[attr-defined]
    cookie = response.headers["set-cookie"]  # type: ignore[attr-defined]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/ui" in cookie
    assert "Secure" not in cookie  # plain HTTP here; behind TLS it is Secure
    page = console_client.get("/ui")
    assert page.status_code == 200 and "login@example.com" in page.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    old = console_client.cookies.get("lw_console")
    assert console_client.post("/ui/logout", data={"csrf": csrf}).status_code == 303
    console_client.cookies.set("lw_console", old or "")
    again = console_client.get("/ui")
    assert again.status_code == 303 and again.headers["location"].startswith("/ui/login")


def test_wrong_passwords_are_refused_then_slowed_and_next_stays_on_the_site(
    console_client: TestClient,
) -> None:
    console: Console = console_client.app.state.console  # type: ignore[attr-defined]
    console.people.create("slow@example.com", "viewer", PASSWORD)
    console_client.cookies.clear()
    for _ in range(3):
        refused = login(console_client, "slow@example.com", "not the password")
        assert refused.status_code == 401  # type: ignore[attr-defined]
        assert "wrong" in refused.text  # type: ignore[attr-defined]
    slowed = login(console_client, "slow@example.com", PASSWORD)
    assert slowed.status_code == 429 and int(slowed.headers["retry-after"]) >= 1  # type: ignore[attr-defined]
    console.people.create("next@example.com", "viewer", PASSWORD)
    away = login(console_client, "next@example.com", PASSWORD, "https://evil.example/ui")
    assert away.headers["location"] == "/ui"  # type: ignore[attr-defined]


def test_a_sign_in_without_the_form_token_is_refused(console_client: TestClient) -> None:
    console_client.cookies.clear()
    response = console_client.post(
        "/ui/login", data={"email": "x@example.com", "password": PASSWORD, "login_csrf": "forged"}
    )
    assert response.status_code == 403


def test_secure_cookie_behind_tls(console_client: TestClient) -> None:
    console: Console = console_client.app.state.console  # type: ignore[attr-defined]
    console.people.create("tls@example.com", "viewer", PASSWORD)
    console_client.cookies.clear()
    token = form_token(console_client)
    response = console_client.post(
        "/ui/login",
        data={"login_csrf": token, "email": "tls@example.com", "password": PASSWORD},
        headers={"X-Forwarded-Proto": "https"},
    )
    assert "Secure" in response.headers["set-cookie"]
