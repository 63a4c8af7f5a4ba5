"""A full session against a real ``loopwise serve``: its captured stdout/stderr must name no key,
email, user id, anonymous id or client IP address (personal data stays out of logs)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from loopwise.api.user_tokens import user_token
from tests.e2e.conftest import (
    ADMIN_KEY,
    IDENTITY_SECRET,
    SERVER_KEY,
    WRITE_KEY,
    Server,
    start_server,
    stop_server,
)

USER = "user-logcheck-5150"
TOKEN = user_token(IDENTITY_SECRET, USER)  # what the site's server puts in the signed-in page
ANON = "anon-logcheck-8d2f"
EMAIL = "log.check@example.com"
IP = "203.0.113.77"  # the visitor's address in the event context
FORWARDED = "198.51.100.23"  # and in a proxy header
BAD_KEY = "lw_server_not-a-real-key-1234"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, backend: str) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp("logs") / "data")
    yield running
    stop_server(running)


def test_a_full_session_leaves_no_personal_data_or_keys_in_the_logs(server: Server) -> None:
    headers = {"X-Forwarded-For": FORWARDED, "User-Agent": "Mozilla/5.0 (X11) Firefox/120"}
    context = {"ip": IP, "userAgent": "Mozilla/5.0 (X11) Firefox/120"}
    with server.client(WRITE_KEY) as browser:
        browser.headers.update(headers)
        for n in range(3):
            response = browser.post(
                "/v1/track",
                json={
                    "anonymousId": ANON,
                    "event": "Product Viewed",
                    "properties": {"product_id": f"run-00{n + 1}"},
                    "context": context,
                },
            )
            assert response.status_code == 200, response.text
        response = browser.post(
            "/v1/identify",
            json={
                "userId": USER,
                "anonymousId": ANON,
                "traits": {"email": EMAIL},
                "context": {**context, "userToken": TOKEN},
            },
        )
        assert response.status_code == 200
    with server.client(SERVER_KEY) as backend:
        backend.headers.update(headers)
        decided = backend.post(
            "/v1/decide",
            json={"user": {"user_id": USER}, "slots": [{"slot": "hero"}, {"slot": "recommended"}]},
        )
        assert decided.status_code == 200, decided.text
        decision_id = decided.json()["decision_id"]
        assert backend.get(f"/v1/profiles/{USER}").status_code == 200
        assert backend.get(f"/v1/profiles/{EMAIL}").status_code == 404  # an unknown id
        for _ in range(50):  # the decision log is written just behind the reply
            if backend.get(f"/v1/decisions/{decision_id}/why").status_code == 200:
                break
            time.sleep(0.05)
    with server.client(BAD_KEY) as intruder:
        intruder.headers.update(headers)
        assert intruder.get(f"/v1/profiles/{USER}").status_code == 401
        assert intruder.delete(f"/v1/profiles/{USER}").status_code == 401
    with server.client(WRITE_KEY) as browser:  # a bad request: an invalid body
        assert browser.post("/v1/track", json={"userId": USER, "event": 5}).status_code == 400
    with server.client(ADMIN_KEY) as admin:
        admin.headers.update(headers)
        assert admin.get(f"/v1/profiles/{USER}/export").status_code == 200
        erased = admin.delete(f"/v1/profiles/{ANON}")
        assert erased.status_code == 200, erased.text
        assert admin.delete(f"/v1/profiles/{ANON}").status_code == 404
    with server.client(None) as nobody:
        assert nobody.get("/v1/items").status_code == 401
        metrics = nobody.get("/metrics").text  # public: labelled by route template only
    assert "/v1/profiles/{identifier}" in metrics
    for secret in (USER, ANON, EMAIL, IP, FORWARDED, BAD_KEY):
        assert secret not in metrics
    stop_server(server)  # flush and close the logs

    log = server.log()
    assert "Uvicorn running" in log or "Application startup" in log  # the capture works
    for secret in (
        WRITE_KEY,
        SERVER_KEY,
        ADMIN_KEY,
        BAD_KEY,
        USER,
        ANON,
        EMAIL,
        IP,
        FORWARDED,
        TOKEN,
    ):
        assert secret not in log, f"{secret!r} appears in the server log:\n{log}"
    assert IP.rsplit(".", 1)[0] + "." not in log  # not even the truncated address
    # and the erasure over HTTP left no trace in any file of the data directory
    for path in (p for p in server.data_dir.rglob("*") if p.is_file()):
        raw = path.read_bytes()
        for needle in (USER, ANON, EMAIL):
            assert needle.encode() not in raw, f"{needle!r} is still in {path.name}"
