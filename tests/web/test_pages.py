"""The demo storefront renders server-side decisions safely; loopwise.js batches and sends."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
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
from loopwise.web.pages import STATIC_DIR, build_router, safe_url

EVIL = '<script>alert("x")</script>'


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
    return TestClient(app)


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
        assert f'data-lw-slot="{key}"' in page
    assert page.count("<summary>Why am I seeing this?</summary>") == 5
    assert "Because &lt;script&gt;" in page  # the reason, in plain words, escaped
    assert 'data-lw-decision="d_123"' in page
    assert 'data-lw-key="lw_write_test"' in page
    request, _ = engine.requests[0]
    assert [s.slot for s in request.slots] == [
        "hero", "recommended", "trending", "recently-viewed", "cta"
    ]  # fmt: skip


def test_visitor_cookie_is_set_once_and_reused(client: TestClient, engine: FakeEngine) -> None:
    first = client.get("/sample", headers={"User-Agent": "TestBrowser/1.0"})
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
    assert request.context["userAgent"] == "TestBrowser/1.0"
    assert request.context["page"]["path"] == "/sample"
    assert headers["user-agent"] == "TestBrowser/1.0"


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
    assert 'data-lw-slot="related"' in page and 'data-lw-slot="recommended"' in page
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
    assert "data-lw-slot=" not in response.text


def test_cold_start_shelves_are_not_mislabelled(client: TestClient, engine: FakeEngine) -> None:
    assert "<h2>Recently viewed</h2>" in client.get("/sample").text
    engine.cold_start = True
    page = client.get("/sample").text
    assert "<h2>Recently viewed</h2>" not in page
    assert "<h2>Popular picks to get you started</h2>" in page
    assert "know your interests yet, so these are popular items" in page  # as /why words it


def test_loopwise_js_is_served_as_javascript(client: TestClient) -> None:
    response = client.get("/loopwise.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/javascript")
    assert "max-age" in response.headers["cache-control"]
    assert "window.loopwise" in response.text
    again = client.get("/loopwise.js", headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304
    css = client.get("/sample/store.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


def test_safe_url_allows_only_relative_and_http() -> None:
    assert safe_url("/sample") == "/sample"
    assert safe_url("https://example.com/x") == "https://example.com/x"
    assert safe_url("//evil.example") == "#"
    assert safe_url(" javascript:alert(1)") == "#"
    assert safe_url(None, "/sample") == "/sample"


NODE_HARNESS = r"""
const fs = require("fs"), vm = require("vm");
const sent = [], beacons = [], store = {}, listeners = {};
const window = {
  location: {href: "https://shop.test/p?q=1", pathname: "/p", search: "?q=1"},
  localStorage: {getItem: k => (k in store ? store[k] : null),
                 setItem: (k, v) => { store[k] = v; }},
  crypto: require("crypto").webcrypto,
  addEventListener: (name, fn) => { listeners[name] = fn; },
};
const sandbox = {
  window, Intl, JSON, Math, Date, Object, Array, String, Uint8Array, Blob,
  document: {referrer: "https://ref.test/", title: "Shop", addEventListener() {},
             visibilityState: "visible"},
  navigator: {userAgent: "NodeTest", language: "en-GB",
              sendBeacon: (url, blob) => { beacons.push([url, blob]); return true; }},
  fetch: (url, init) => { sent.push([url, init]); return Promise.resolve({status: 200}); },
  setTimeout: (fn) => 1, clearTimeout: () => {},
};
vm.createContext(sandbox);
vm.runInContext(fs.readFileSync(process.argv[2], "utf8"), sandbox);
const lw = window.loopwise;
lw.track("Before Init", {});
lw.init({writeKey: "wk", host: "https://lw.test/", anonymousId: "anon-1234"});
lw.page({section: "home"});
lw.identify("user-9", {plan: "pro"});
lw.decisionShown("d_1", "hero");
lw.decisionClicked("d_1", "recommended", "run-001");
lw.flush();
lw.track("Leaving", {n: 1});
listeners.pagehide();
(async () => {
  const beacon = beacons.length ? await beacons[0][1].text() : null;
  console.log(JSON.stringify({
    sent: sent.map(([url, init]) => ({url, init: {...init, body: JSON.parse(init.body)}})),
    beacons: beacons.map(b => b[0]), beacon: beacon && JSON.parse(beacon), store,
  }));
})();
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to run loopwise.js")
def test_loopwise_js_batches_messages(tmp_path: Path) -> None:
    harness = tmp_path / "harness.js"
    harness.write_text(NODE_HARNESS)
    script = STATIC_DIR / "loopwise.js"
    run = subprocess.run(
        ["node", str(harness), str(script)], capture_output=True, text=True, timeout=30
    )
    assert run.returncode == 0, run.stderr
    out: dict[str, Any] = json.loads(run.stdout)

    assert len(out["sent"]) == 1
    request = out["sent"][0]
    assert request["url"] == "https://lw.test/v1/batch"
    assert request["init"]["keepalive"] is True and request["init"]["method"] == "POST"
    body = request["init"]["body"]
    assert body["writeKey"] == "wk" and body["sentAt"].endswith("Z")
    batch = body["batch"]
    assert [m["type"] for m in batch] == ["track", "page", "identify", "track", "track"]
    assert len({m["messageId"] for m in batch}) == 5
    assert all(m["anonymousId"] == "anon-1234" for m in batch)
    assert "userId" not in batch[1] and batch[3]["userId"] == "user-9"
    assert batch[1]["properties"]["section"] == "home" and batch[1]["properties"]["path"] == "/p"
    context = batch[0]["context"]
    assert context["page"]["referrer"] == "https://ref.test/"
    assert context["library"] == {"name": "loopwise.js", "version": "0.1.0"}
    assert context["locale"] == "en-GB" and context["userAgent"] == "NodeTest"
    assert batch[3]["event"] == "Content Viewed"
    assert batch[3]["properties"] == {"decision_id": "d_1", "slot": "hero", "item_id": None}
    assert batch[4]["event"] == "Content Clicked"
    assert batch[4]["properties"]["item_id"] == "run-001"

    assert out["beacons"] == ["https://lw.test/v1/batch"]  # pagehide uses sendBeacon
    assert [m["event"] for m in out["beacon"]["batch"]] == ["Leaving"]
    assert out["store"] == {"lw_aid": "anon-1234", "lw_uid": "user-9"}


WHY_HARNESS = r"""
const fs = require("fs"), vm = require("vm");
const sent = [];
const window = {
  location: {href: "https://shop.test/", pathname: "/", search: ""},
  localStorage: {getItem: () => null, setItem() {}},
  crypto: require("crypto").webcrypto, btoa: s => Buffer.from(s).toString("base64"),
  addEventListener() {},
};
const sandbox = {
  window, Intl, JSON, Math, Date, Object, Array, String, Uint8Array,
  document: {referrer: "", title: "Shop", addEventListener() {}},
  navigator: {userAgent: "NodeTest", language: "en"},
  fetch: (url, init) => { sent.push([url, init]);
                          return Promise.resolve({ok: true, json: () => ({slots: []})}); },
  setTimeout: () => 1, clearTimeout() {},
};
vm.createContext(sandbox);
vm.runInContext(fs.readFileSync(process.argv[2], "utf8"), sandbox);
window.loopwise.init({writeKey: "wk", host: "https://lw.test/"});
window.loopwise.why("d_1").then(() => console.log(JSON.stringify(sent)));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to run loopwise.js")
def test_loopwise_js_why_url_with_a_trailing_slash_host(tmp_path: Path) -> None:
    harness = tmp_path / "why.js"
    harness.write_text(WHY_HARNESS)
    run = subprocess.run(
        ["node", str(harness), str(STATIC_DIR / "loopwise.js")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 0, run.stderr
    [(url, init)] = json.loads(run.stdout)
    assert url == "https://lw.test/v1/decisions/d_1/why"  # as /v1/batch: no "//v1"
    assert init["headers"]["Authorization"] == "Basic " + base64.b64encode(b"wk:").decode()
    assert init["credentials"] == "omit"


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
