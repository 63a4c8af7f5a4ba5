"""The demo storefront renders server-side decisions safely; loopwise.js batches and sends."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from loopwise.catalog.items import Item
from loopwise.decide.request import (
    DecidedItem,
    DecidedVariant,
    DecideRequest,
    DecideResponse,
    Reason,
    SlotDecision,
)
from loopwise.errors import NotFound
from loopwise.web.pages import HOME_SLOTS, build_router, safe_url

EVIL = '<script>alert("x")</script>'
BROWSER = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 "
    "Safari/537.36"
)


@dataclass
class FakeKeys:
    write_key_plain: str | None = "lw_write_test"


def make_items() -> dict[str, Item]:
    items = [
        Item("run-001", title="Trailblazer 3 Running Shoe", categories=("running",),
             tags=("shoes",), attributes={"price": 129.99, "brand": "Stridewell"}),
        Item("run-002", title=f"Evil {EVIL} Tee", text=f"Text {EVIL}", categories=("running",),
             tags=(EVIL,), attributes={"price": 30.0, "brand": EVIL}),
        Item("yoga-001", title="Flow Yoga Mat", categories=("yoga",),
             attributes={"price": 59.0, "in_stock": False}),
    ]  # fmt: skip
    return {item.id: item for item in items}


@dataclass
class FakeEngine:
    """Stands in for Engine: a catalog and canned, but real, DecideResponse models."""

    items: dict[str, Item] = field(default_factory=make_items)
    keys: FakeKeys = field(default_factory=FakeKeys)
    requests: list[tuple[DecideRequest, dict[str, str]]] = field(default_factory=list)
    fail: bool = False
    cold_start: bool = False

    def get_item(self, item_id: str) -> Item | None:
        return self.items.get(item_id)

    def workspace_document(self) -> dict[str, Any]:
        return {
            "slots": [
                {"key": "hero", "kind": "block", "default_variant": "plain",
                 "variants": [{"id": "plain", "content": {"headline": "Default hero"}}]},
                {"key": "recommended", "kind": "list", "n": 2,
                 "fallback_items": ["yoga-001", "run-001"]},
            ]
        }  # fmt: skip

    def list_items(self, offset: int, limit: int) -> tuple[list[Item], int]:
        ordered = [self.items[key] for key in sorted(self.items)]
        return ordered[offset : offset + limit], len(ordered)

    def decide(
        self, request: DecideRequest, headers: Mapping[str, str] | None = None
    ) -> DecideResponse:
        self.requests.append((request, dict(headers or {})))
        if self.fail:
            raise NotFound("unknown slot 'hero'; define it in loopwise.yaml")
        slots = [self._slot(wanted.slot) for wanted in request.slots]
        return DecideResponse(
            decision_id="d_123", profile_id="p_1", segments=["first_time_visitor"], slots=slots
        )

    def _slot(self, key: str) -> SlotDecision:
        reasons = [Reason(kind="rule", text=f"Rule for {key}: {EVIL}")]
        if self.cold_start:
            reasons.append(Reason(kind="cold_start", text="No history yet: popular items"))
        if key in ("hero", "cta"):
            content = {
                "headline": f"Hello {EVIL}",
                "body": "Gear for every kind of outside",
                "cta": "Shop now",
                "cta_url": "javascript:alert(1)",
            }
            variant = DecidedVariant(id=f"{key}-welcome", content=content)
            return SlotDecision(slot=key, kind="block", variant=variant, reasons=reasons)
        decided = [
            DecidedItem(id=i.id, title=i.title, score=1.0, propensity=1.0, attributes=i.attributes)
            for i in self.items.values()
        ]
        return SlotDecision(
            slot=key, kind="list", items=decided, strategy="popular", reasons=reasons
        )


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def client(engine: FakeEngine) -> TestClient:
    app = FastAPI()
    app.include_router(build_router(engine))
    return TestClient(app, headers={"User-Agent": BROWSER})


def test_home_renders_every_slot_with_escaped_content(
    client: TestClient, engine: FakeEngine
) -> None:
    response = client.get("/sample")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    page = response.text
    assert "<script>alert" not in page
    assert "Evil &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; Tee" in page
    assert "Hello &lt;script&gt;" in page
    assert "javascript:" not in page  # unsafe CTA link replaced
    for key in ("hero", "recommended", "trending", "recently-viewed", "cta"):
        assert page.count(f'data-loopwise-slot="{key}"') == 1  # one impression per slot
    assert page.count("<summary>Why am I seeing this?</summary>") == 5
    assert "Because &lt;script&gt;" in page  # the reason, in plain words, escaped
    assert 'data-loopwise-decision="d_123"' in page
    assert 'data-lw-key="lw_write_test"' in page
    request, _ = engine.requests[0]
    # recently viewed is decided first, so no other row takes its items away
    assert [s.slot for s in request.slots] == [
        "recently-viewed", "hero", "recommended", "trending", "cta"
    ]  # fmt: skip
    shown = [page.index(f'data-loopwise-slot="{key}"') for key in HOME_SLOTS]
    assert shown == sorted(shown)  # and shown in page order


def test_visitor_cookie_is_set_once_and_reused(client: TestClient, engine: FakeEngine) -> None:
    first = client.get("/sample")
    cookie = first.headers["set-cookie"]
    assert "lw_aid=" in cookie and "samesite=lax" in cookie.lower()
    visitor_id = first.cookies["lw_aid"]
    assert re.fullmatch(r"[0-9a-f-]{36}", visitor_id)
    assert f'data-lw-aid="{visitor_id}"' in first.text

    second = client.get("/sample/items/run-001")
    assert "set-cookie" not in second.headers
    ids = [request.user.anonymous_id for request, _ in engine.requests]
    assert ids == [visitor_id, visitor_id]
    request, headers = engine.requests[0]
    assert request.context["userAgent"] == BROWSER
    assert request.context["page"]["path"] == "/sample"
    assert headers["user-agent"] == BROWSER


def test_malformed_cookie_is_replaced(client: TestClient) -> None:
    client.cookies.set("lw_aid", "<bad>")
    response = client.get("/sample")
    assert response.cookies["lw_aid"] != "<bad>"
    assert "&lt;bad&gt;" not in response.text


def test_item_page_shows_item_and_tracks_it(client: TestClient, engine: FakeEngine) -> None:
    response = client.get("/sample/items/run-002")
    assert response.status_code == 200
    page = response.text
    assert "<script>alert" not in page
    assert "<h1>Evil &lt;script&gt;" in page and "$30.00" in page
    assert 'data-loopwise-slot="related"' in page and 'data-loopwise-slot="recommended"' in page
    view = re.search(r'data-lw-view="([^"]*)"', page)
    assert view is not None
    assert json.loads(view.group(1).replace("&quot;", '"')) == {
        "product_id": "run-002", "category": "running", "price": 30.0
    }  # fmt: skip
    assert 'data-lw-track="Product Added"' in page
    assert 'data-lw-track="Order Completed"' in page
    request, _ = engine.requests[0]
    assert [s.slot for s in request.slots] == ["related", "recommended"]
    related = request.slots[0].filters
    assert related is not None and related.exclude_items == ["run-002"]


def test_out_of_stock_item_cannot_be_bought(client: TestClient) -> None:
    page = client.get("/sample/items/yoga-001").text
    assert "Out of stock" in page
    assert page.count(" disabled>") == 2


def test_unknown_item_is_a_404_page(client: TestClient, engine: FakeEngine) -> None:
    response = client.get("/sample/items/nope%3Cb%3E")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Not found" in response.text and "nope&lt;b&gt;" in response.text
    assert engine.requests == []


def test_category_page_lists_its_items(client: TestClient) -> None:
    response = client.get("/sample/category/running")
    assert response.status_code == 200
    assert "Trailblazer 3 Running Shoe" in response.text
    assert "Flow Yoga Mat" not in response.text
    assert 'href="/sample/category/yoga"' in response.text  # navigation from the catalog
    assert client.get("/sample/category/skiing").status_code == 404


def test_page_survives_a_failed_decision(client: TestClient, engine: FakeEngine) -> None:
    engine.fail = True
    response = client.get("/sample")
    assert response.status_code == 200
    assert "Personalised content unavailable" in response.text
    assert "data-loopwise-slot=" not in response.text


def test_cold_start_shelves_are_not_mislabelled(client: TestClient, engine: FakeEngine) -> None:
    assert "<h2>Recently viewed</h2>" in client.get("/sample").text
    engine.cold_start = True
    page = client.get("/sample").text
    assert "<h2>Recently viewed</h2>" not in page
    assert "<h2>Popular picks to get you started</h2>" in page
    assert "know your interests yet, so these are popular items" in page  # as /why words it


def test_loopwise_js_is_served_as_javascript(client: TestClient) -> None:
    response = client.get("/loopwise.js", headers={"Accept-Encoding": "identity"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.headers["cache-control"] == "public, max-age=300"
    assert "window.loopwise" in response.text
    again = client.get(
        "/loopwise.js",
        headers={"If-None-Match": response.headers["etag"], "Accept-Encoding": "identity"},
    )
    assert again.status_code == 304
    css = client.get("/sample/store.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


def test_safe_url_allows_only_relative_and_http() -> None:
    assert safe_url("/sample") == "/sample"
    assert safe_url("https://example.com/x") == "https://example.com/x"
    assert safe_url("//evil.example") == "#"
    assert safe_url(" javascript:alert(1)") == "#"
    assert safe_url(None, "/sample") == "/sample"


def test_ids_and_categories_with_a_slash_have_working_pages(
    client: TestClient, engine: FakeEngine
) -> None:
    """Catalogs often name categories like "men/shoes" and use paths as ids: the links the
    store renders (%2F-encoded) must reach their pages, not a 404."""
    item = Item("shoes/run-9", title="Slash Runner", categories=("men/shoes",))
    engine.items[item.id] = item
    home = client.get("/sample").text
    assert 'href="/sample/category/men%2Fshoes"' in home
    category = client.get("/sample/category/men%2Fshoes")
    assert category.status_code == 200 and "Slash Runner" in category.text
    assert 'href="/sample/items/shoes%2Frun-9"' in category.text
    page = client.get("/sample/items/shoes%2Frun-9")
    assert page.status_code == 200 and "<h1>Slash Runner</h1>" in page.text


@pytest.mark.parametrize("agent", ["curl/8.5.0", "python-httpx/0.28.1", "Googlebot/2.1", ""])
def test_unidentified_bots_get_the_defaults_without_a_decision(
    client: TestClient, engine: FakeEngine, agent: str
) -> None:
    for _ in range(5):
        page = client.get("/sample", headers={"User-Agent": agent})
        assert page.status_code == 200
        client.cookies.clear()  # as curl: every request a new visitor
    assert engine.requests == []  # nothing decided, so nothing logged
    assert "Default hero" in page.text
    assert 'data-loopwise-slot="hero"' in page.text and "data-loopwise-decision" not in page.text
    assert "Flow Yoga Mat" not in page.text  # the out-of-stock fallback item is left out
    assert "Trailblazer 3 Running Shoe" in page.text


def test_a_bot_with_a_visitor_cookie_is_decided(client: TestClient, engine: FakeEngine) -> None:
    client.cookies.set("lw_aid", "0123456789abcdef")
    client.get("/sample", headers={"User-Agent": "curl/8.5.0"})
    assert len(engine.requests) == 1


def test_new_visitors_from_one_address_are_rate_limited(
    client: TestClient, engine: FakeEngine
) -> None:
    for _ in range(40):
        client.get("/sample")
        client.cookies.clear()
    assert 20 <= len(engine.requests) < 40  # the burst, then (almost) nothing more


def test_browser_files_are_compressed_and_versioned(client: TestClient) -> None:
    page = client.get("/sample").text
    src = re.search(r'<script src="(/loopwise\.js\?v=[0-9a-f]+)"', page)
    assert src is not None
    versioned = client.get(src.group(1), headers={"Accept-Encoding": "gzip, br"})
    assert versioned.headers["content-encoding"] == "br"
    assert versioned.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert versioned.headers["vary"] == "Accept-Encoding"
    assert "window.loopwise" in versioned.text  # httpx decodes it
    gzipped = client.get("/loopwise.js", headers={"Accept-Encoding": "gzip"})
    assert gzipped.headers["content-encoding"] == "gzip"
    assert gzipped.headers["etag"] != versioned.headers["etag"]
    module = client.get("/loopwise.mjs")
    assert "export default loopwise" in module.text
    assert module.headers["access-control-allow-origin"] == "*"


def test_the_sdk_is_at_most_5_kb_gzipped() -> None:
    from loopwise.web.assets import asset

    assert len(asset("loopwise.js").bodies["gzip"]) <= 5 * 1024
