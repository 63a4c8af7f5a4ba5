"""loopwise.js in a real browser (Debian's Chromium via Playwright) on a plain site of its own
origin, against a real ``loopwise serve``: what the page sends is counted in what the server
stored (the admin export of the visitor)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import ADMIN_KEY, WRITE_KEY, Server, free_port
from tests.e2e.site import Site, start_site, workspace_for

# a person's browser (the headless build's own user agent says HeadlessChrome: a bot)
USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 "
    "Safari/537.36"
)
# layout shifts whose sources are slot elements (or inside them), summed as CLS would be
CLS_PROBE = """
window.__slotShift = 0;
new PerformanceObserver(list => {
  for (const entry of list.getEntries()) {
    if (entry.hadRecentInput) continue;
    const inSlot = (entry.sources || []).some(s => s.node && s.node.closest &&
      s.node.closest("[data-loopwise-slot]"));
    if (inSlot) window.__slotShift += entry.value;
  }
}).observe({type: "layout-shift", buffered: true});
"""


@pytest.fixture
def setup(live_server: Callable[..., Server], tmp_path: Path) -> Iterator[tuple[Server, Site]]:
    """A real server whose workspace allows the site's origin, and the site on that origin."""
    port = free_port()
    server = live_server(workspace=workspace_for(f"http://127.0.0.1:{port}", tmp_path))
    site = start_site(server.url, WRITE_KEY, port)
    yield server, site
    site.stop()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(user_agent=USER_AGENT)
    context.add_init_script(CLS_PROBE)
    page = context.new_page()
    yield page
    context.close()


def stored(server: Server, anonymous_id: str, want: Callable[[list[dict[str, Any]]], bool]) -> Any:
    """The visitor's stored events once ``want`` holds for them (polled: writes are async)."""
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as c:
        while time.monotonic() < deadline:
            response = c.get(f"/v1/profiles/{anonymous_id}/export")
            events = response.json().get("events", []) if response.status_code == 200 else []
            if want(events):
                return events
            time.sleep(0.2)
    raise AssertionError(f"not stored in time; have {[name(e) for e in events]}")


def name(event: dict[str, Any]) -> str:
    return str(event.get("event") or event.get("type"))


def wait_filled(page: Any) -> None:
    page.wait_for_function(
        "[...document.querySelectorAll('[data-loopwise-slot]')]"
        ".every(el => el.getAttribute('data-loopwise-state'))"
    )


def test_slots_fill_and_page_views_clicks_scroll_and_impressions_arrive(
    setup: tuple[Server, Site], page: Any
) -> None:
    server, site = setup
    # slots may stay hidden 10 s (data-timeout), not 300 ms: a loaded test machine's decide
    # must not leave the defaults, which this test is not about
    with page.expect_response(lambda r: r.url.endswith("/v1/decide")) as decided:
        page.goto(site.url + "/?timeout=10000")
    answer = decided.value.json()
    wait_filled(page)
    hero = page.locator("[data-loopwise-slot=hero]")
    assert hero.get_attribute("data-loopwise-state") == "filled"
    assert hero.get_attribute("data-loopwise-decision") == answer["decision_id"]
    variant = next(s for s in answer["slots"] if s["slot"] == "hero")["variant"]
    assert (
        page.locator("[data-loopwise-slot=hero] h2").inner_text()
        == (variant["content"]["headline"])
    )
    cards = page.locator("[data-loopwise-slot=trending] [data-loopwise-item]")
    assert cards.count() == 3
    assert page.evaluate("window.__slotShift") == 0  # CLS of slot elements

    anonymous_id = page.evaluate("loopwise.user().anonymousId()")
    cards.first.click()
    page.click("#plain-item")
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    page.wait_for_timeout(300)
    page.goto("about:blank")  # page hide: the last events leave as a text/plain beacon
    events = stored(
        server, anonymous_id, lambda es: {"Page Left", "Content Clicked"} <= {name(e) for e in es}
    )
    names = [name(e) for e in events]
    assert "page" in names
    viewed = [e for e in events if name(e) == "Content Viewed"]
    assert {e["properties"]["slot"] for e in viewed} == {"hero", "trending"}
    assert len(viewed) == 2  # once per decision and slot
    assert all(e["properties"]["decision_id"] == answer["decision_id"] for e in viewed)
    click = next(e for e in events if name(e) == "Content Clicked")
    assert click["properties"]["slot"] == "trending" and click["properties"]["item_id"]
    assert any(
        name(e) == "Product Clicked" and e["properties"]["product_id"] == "run-002" for e in events
    )
    left = next(e for e in events if name(e) == "Page Left")
    assert left["properties"]["scroll_depth"] == 100


def test_a_slow_decide_leaves_the_defaults_after_the_timeout(
    setup: tuple[Server, Site], page: Any
) -> None:
    _, site = setup
    held: list[Any] = []
    page.route("**/v1/decide", lambda route: held.append(route))  # never answered
    page.goto(site.url + "/?timeout=4000")  # the script tag's data-timeout
    page.wait_for_timeout(300)  # past the default 300 ms (it starts at DOMContentLoaded)
    hero = page.locator("[data-loopwise-slot=hero]")
    assert hero.get_attribute("data-loopwise-state") is None  # still hidden: 4 s were asked
    wait_filled(page)
    assert hero.get_attribute("data-loopwise-state") == "default"
    assert page.locator("[data-loopwise-slot=hero] h2").inner_text() == "Default headline"
    assert page.locator("[data-loopwise-slot=trending] a").inner_text() == "Default"
    assert held  # the decide was asked and is still pending
    for route in held:
        route.abort()


def test_an_opted_out_visitor_gets_contextual_content_and_nothing_is_stored(
    setup: tuple[Server, Site], page: Any
) -> None:
    server, site = setup
    page.goto(site.url + "/?consent=required")  # the region's defaults say opt-in
    wait_filled(page)
    anonymous_id = page.evaluate("loopwise.user().anonymousId()")
    page.click("loopwise-preferences >> [part=open]")  # click 1
    page.click("loopwise-preferences >> [part=opt-out]")  # click 2
    assert page.evaluate("loopwise.consent.get()") == {
        "analytics": False, "personalization": False, "marketing": False
    }  # fmt: skip
    page.wait_for_timeout(500)
    with page.expect_response(lambda r: r.url.endswith("/v1/decide")) as decided:
        page.reload()
    answer = decided.value.json()
    trending = next(s for s in answer["slots"] if s["slot"] == "trending")
    assert any(r["kind"] == "consent" for r in trending["reasons"])
    assert not answer["ai_influenced"]
    page.click("#plain-item")
    page.goto("about:blank")
    time.sleep(1.0)
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as c:
        export = c.get(f"/v1/profiles/{anonymous_id}/export")
    events = export.json().get("events", []) if export.status_code == 200 else []
    assert events == []


def test_consent_set_in_the_page_applies_on_the_next_decide(
    setup: tuple[Server, Site], page: Any
) -> None:
    _, site = setup
    with page.expect_response(lambda r: r.url.endswith("/v1/decide")) as first:
        page.goto(site.url + "/")
    trending = next(s for s in first.value.json()["slots"] if s["slot"] == "trending")
    assert not any(r["kind"] == "consent" for r in trending["reasons"])
    page.evaluate("loopwise.consent.set({personalization: false})")
    with page.expect_response(lambda r: r.url.endswith("/v1/decide")) as second:
        page.reload()
    trending = next(s for s in second.value.json()["slots"] if s["slot"] == "trending")
    assert any(r["kind"] == "consent" for r in trending["reasons"])


def test_single_page_app_navigation_is_tracked(setup: tuple[Server, Site], page: Any) -> None:
    server, site = setup
    page.goto(site.url + "/")
    wait_filled(page)
    anonymous_id = page.evaluate("loopwise.user().anonymousId()")
    page.evaluate("history.pushState({}, '', '/app/pricing')")
    page.evaluate("history.pushState({}, '', '/app/checkout?step=2')")
    page.evaluate("loopwise.flush()")
    events = stored(server, anonymous_id, lambda es: sum(name(e) == "page" for e in es) >= 3)
    paths = [e["context"]["page"]["path"] for e in events if name(e) == "page"]
    assert paths == ["/", "/app/pricing", "/app/checkout"]
    left = [e["properties"]["path"] for e in events if name(e) == "Page Left"]
    assert left[:2] == ["/", "/app/pricing"]
