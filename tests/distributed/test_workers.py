"""Two ``loopwise serve`` processes on the same PostgreSQL + Redis behave as one engine."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from loopwise.distributed.bus import SECOND_PASS_S
from loopwise.profiles.identity import profile_id_for
from tests.distributed.conftest import (
    REDIS_URL,
    Server,
    eventually,
    pg,
    running,
    schema_url,
    start_server,
)

# real processes start in ~20 s each on a busy 2-core machine
pytestmark = pytest.mark.timeout(600)

FRESHNESS_BOUND_S = 1.0  # docs/scale.md: applied on every worker within this


@pytest.fixture(scope="module")
def pair(schema: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server]]:
    tmp = tmp_path_factory.mktemp("pair")
    url = schema_url(schema)
    first = start_server(tmp, url, REDIS_URL, name="a")
    first.wait_ready()  # the first one migrates and imports the sample catalog
    second = start_server(tmp, url, REDIS_URL, name="b")
    with running(first, second):
        yield first, second


def test_an_event_acknowledged_by_one_worker_is_in_the_other_ones_decide(
    pair: tuple[Server, Server],
) -> None:
    a, b = pair
    assert b.profile("dana") is None  # b caches "nobody"
    b.decide("dana")
    assert a.track("dana", "sku-1").status_code == 200
    assert a.track("dana", "sku-2").status_code == 200

    def seen() -> bool:
        profile = b.profile("dana")
        return profile is not None and profile["item_views"] == 2

    assert eventually(seen, timeout=5) < FRESHNESS_BOUND_S
    assert b.decide("dana")["profile_id"] == profile_id_for("dana")
    # and the other way round, on a profile both have cached
    assert b.track("dana", "sku-3").status_code == 200
    assert eventually(lambda: (a.profile("dana") or {}).get("item_views") == 3) < 1.0


def test_wait_applied_reads_your_writes_on_the_other_worker(pair: tuple[Server, Server]) -> None:
    a, b = pair
    assert b.track("erin", "sku-1").status_code == 200
    b.decide("erin")  # cached on b
    a.decide("erin")  # and on a
    assert b.track("erin", "sku-2").status_code == 200
    # no waiting at all: a reads erin from PostgreSQL for this request
    decision = a.decide("erin", wait="applied")
    assert decision["profile_id"] == profile_id_for("erin")
    assert (a.profile("erin") or {}).get("item_views") == 2
    bad = a.request("POST", "/v1/decide", params={"wait": "later"}, json={"user": {"user_id": "x"}})
    assert bad.status_code == 400
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert bad.json()["field"] == "wait"
    anonymous = a.client.post(
        "/v1/decide", params={"wait": "applied"}, json={"user": {"user_id": "erin"}}
    )
    assert anonymous.status_code == 401  # no key: the route refuses, nothing was read for it


def test_a_segment_edited_on_one_worker_applies_on_the_other(pair: tuple[Server, Server]) -> None:
    a, b = pair
    assert a.track("frank", "sku-1").status_code == 200
    assert eventually(lambda: (b.profile("frank") or {}).get("item_views") == 1) < 1.0
    assert "looked_once" not in b.decide("frank")["segments"]
    segment = {"name": "Looked once", "condition": {"profile.item_views": {"$gte": 1}}}
    put = a.request("PUT", "/v1/admin/segments/looked_once", key="admin", json=segment)
    assert put.status_code == 200, put.text
    took = eventually(lambda: "looked_once" in b.decide("frank")["segments"], timeout=5)
    assert took < FRESHNESS_BOUND_S
    narrower = {"name": "Looked often", "condition": {"profile.item_views": {"$gte": 5}}}
    put = b.request("PUT", "/v1/admin/segments/looked_once", key="admin", json=narrower)
    assert put.status_code == 200, put.text
    took = eventually(lambda: "looked_once" not in a.decide("frank")["segments"], timeout=5)
    assert took < FRESHNESS_BOUND_S


def test_an_erasure_on_one_worker_leaves_no_trace_on_either(
    pair: tuple[Server, Server], schema: str
) -> None:
    a, b = pair
    for item in ("sku-1", "sku-2", "sku-3"):
        assert a.track("gina", item).status_code == 200
    identify = a.request(
        "POST", "/v1/identify", json={"userId": "gina", "anonymousId": "anon-gina"}
    )
    assert identify.status_code == 200
    assert eventually(lambda: (b.profile("gina") or {}).get("item_views") == 3) < 1.0
    a.decide("gina")
    b.decide("gina")  # both have her cached
    pid = profile_id_for("gina")
    erased = b.request("DELETE", "/v1/profiles/gina", key="admin")
    assert erased.status_code == 200, erased.text
    eventually(lambda: a.profile("gina") is None and a.profile("anon-gina") is None, timeout=5)
    assert b.profile("gina") is None and b.profile("anon-gina") is None
    import time

    time.sleep(SECOND_PASS_S * 2)  # past the second invalidation pass: nothing comes back
    assert a.profile("gina") is None and b.profile("gina") is None
    with pg(schema) as conn:
        for table, column in (
            ("events", "profile_id"),
            ("profiles", "id"),
            ("identities", "profile_id"),
            ("segment_history", "profile_id"),
        ):
            count = conn.execute(
                f"SELECT count(*) FROM {table} WHERE {column} = %s",
                [pid],
            ).fetchone()
            assert count == (0,), table
        links = conn.execute(
            "SELECT count(*) FROM identities WHERE identifier IN ('gina', 'anon-gina')"
        ).fetchone()
        assert links == (0,)


def test_a_new_event_after_the_erasure_starts_afresh(pair: tuple[Server, Server]) -> None:
    a, b = pair
    assert b.track("hugo", "sku-1").status_code == 200
    assert a.request("DELETE", "/v1/profiles/hugo", key="admin").status_code == 200
    assert b.track("hugo", "sku-2").status_code == 200
    profile = a.decide("hugo", wait="applied") and a.profile("hugo")
    assert profile is not None and profile["item_views"] == 1  # nothing from before erasure


def test_consent_withdrawn_on_one_worker_gates_ingest_on_the_other(
    pair: tuple[Server, Server], schema: str
) -> None:
    a, b = pair
    assert b.track("ines", "sku-1", "ines-1").status_code == 200  # b: "nobody chose" so far?
    body = {"categories": {"personalization": False, "analytics": False}, "source": "banner"}
    withdrawn = a.request("PUT", "/v1/consent/ines", json=body)
    assert withdrawn.status_code == 200, withdrawn.text
    # the very next event on the other worker is gated: not stored, not in the profile
    assert b.track("ines", "sku-2", "ines-2").status_code == 200
    with pg(schema) as conn:
        stored = conn.execute(
            "SELECT message_id FROM events WHERE message_id LIKE 'ines-%' ORDER BY 1"
        ).fetchall()
    assert stored == [("ines-1",)]
    assert (b.profile("ines") or {}).get("item_views") == 1


def test_several_workers_from_one_serve(schema: str, tmp_path: Path) -> None:
    server = start_server(tmp_path, schema_url(schema), REDIS_URL, workers=2, name="w2")
    with running(server):
        for n in range(20):  # connections land on either worker
            assert server.track("ivy", f"sku-{n % 5}").status_code == 200
        assert eventually(lambda: (server.profile("ivy") or {}).get("item_views") == 20) < 1.0


def test_the_console_signs_in_and_serves_across_workers(schema: str, tmp_path: Path) -> None:
    """Sessions and CSRF tokens live in PostgreSQL: a sign-in on one worker holds on the
    other (connections land on either), and `loopwise users create` reaches that database."""
    server = start_server(tmp_path, schema_url(schema), REDIS_URL, workers=2, name="console")
    with running(server):
        created = subprocess.run(
            [sys.executable, "-m", "loopwise", "users", "create", "--email", "ana@example.com",
             "--role", "admin", "--password-stdin", "--data-dir", str(tmp_path / "data"),
             "--database-url", schema_url(schema)],
            input="a long pass phrase\n", capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert created.returncode == 0, created.stderr
        for _ in range(3):  # fresh connections each time: either worker answers
            with httpx.Client(base_url=server.url, timeout=30) as browser:
                page = browser.get("/ui/login")
                token = re.search(r'name="login_csrf" value="([^"]+)"', page.text)
                assert token, page.text[:500]
                signed = browser.post(
                    "/ui/login",
                    data={"login_csrf": token.group(1), "email": "ana@example.com",
                          "password": "a long pass phrase", "next": "/ui"},
                )  # fmt: skip
                assert signed.status_code == 303, signed.text[:500]
                for path in ("/ui", "/ui/segments", "/ui/privacy"):
                    with httpx.Client(base_url=server.url, cookies=browser.cookies) as other:
                        assert other.get(path).status_code == 200, path
