"""The console in Debian's Chromium against a real ``loopwise serve`` seeded by the simulator
(issue 14 §3): sign in and out; a segment built with the builder and its live size; a variant and
a rule seen in "preview as"; an experiment started and its results chart drawn; two editors'
concurrent edit and its conflict; restoring an earlier revision; a viewer refused an edit; a POST
without the CSRF token refused; axe-core with no serious or critical violation on every page.

``LOOPWISE_SCREENSHOTS=docs/console`` makes the page test write the screenshots docs/console.md
shows (one per page).
"""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import stop_server
from tests.e2e.console_site import (
    PASSWORD,
    PRICING_VISITORS,
    SEED_DAYS,
    ConsoleSite,
    start_console_site,
)

AXE = Path(__file__).parent / "vendor" / "axe-4.14.1.min.js"
SCREENSHOTS = os.environ.get("LOOPWISE_SCREENSHOTS")
PRICING_CONDITION = {
    "$and": [
        {"profile.page_paths_30d./pricing": {"$gte": 2}},
        {"profile.region": "CA"},
    ]
}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, chromium: Any) -> Iterator[ConsoleSite]:
    started = start_console_site(tmp_path_factory.mktemp("console"))
    yield started
    stop_server(started.server)


@pytest.fixture
def sign_in(chromium: Any, site: ConsoleSite) -> Iterator[Callable[..., Any]]:
    """A new browser context signed in as ``role`` (through the sign-in form); its page."""
    contexts: list[Any] = []

    def open_as(role: str, **options: Any) -> Any:
        context = chromium.new_context(viewport={"width": 1280, "height": 900}, **options)
        contexts.append(context)
        page = context.new_page()
        page.goto(site.url + "/ui")
        assert "/ui/login" in page.url  # a stranger is sent to sign in
        page.get_by_label("Email").fill(site.email(role))
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(r".*/ui$"))
        return page

    yield open_as
    for context in contexts:
        context.close()


def unique(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(3)}"


def put_segment(site: ConsoleSite, key: str, condition: dict[str, Any]) -> None:
    with site.admin() as admin:
        response = admin.put(
            f"/v1/admin/segments/{key}", json={"name": key, "condition": condition}
        )
        assert response.status_code == 200, response.text


def test_sign_in_and_sign_out_ends_the_session(sign_in: Any, site: ConsoleSite) -> None:
    page = sign_in("viewer")
    assert page.get_by_role("heading", name="Overview").is_visible()
    cookie = next(c for c in page.context.cookies() if c["name"] == "lw_console")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r".*/ui/login$"))
    page.context.add_cookies([cookie])  # the old cookie no longer signs anyone in
    page.goto(site.url + "/ui/segments")
    assert "/ui/login" in page.url


def test_a_segment_built_with_the_builder_and_its_live_size(sign_in: Any) -> None:
    page = sign_in("editor")
    key = unique("pricing_ca")
    page.goto(page.url + "/segments/new")
    page.get_by_label("Key", exact=True).fill(key)
    page.get_by_label("Segment name").fill("Pricing page twice, California")
    page.select_option("#r0_kind", "page_visits")
    page.fill("#r0_name", "/pricing")
    page.select_option("#r0_op", "gte")
    page.fill("#r0_value", "2")
    page.get_by_role("button", name="Add a row").click()
    page.select_option("#r1_kind", "region")
    page.fill("#r1_value", "CA")
    page.locator("#r1_value").dispatch_event("change")
    count = page.locator("#match-count")
    count.wait_for()
    assert count.inner_text().startswith(f"{len(PRICING_VISITORS)} people match now")
    page.get_by_label("Comment for the history").fill("enterprise CTA audience")
    page.get_by_role("button", name="Save segment").click()
    page.wait_for_url(re.compile(rf".*/ui/segments/{key}\?saved=1$"))
    deadline = time.monotonic() + 30
    live = page.locator("#live-size")
    while live.inner_text() != f"Live size: {len(PRICING_VISITORS)} people.":  # counted again
        assert time.monotonic() < deadline, "the new segment never got its live size"
        page.wait_for_timeout(500)
        page.reload()


def test_a_variant_and_a_rule_show_in_preview_as(sign_in: Any, site: ConsoleSite) -> None:
    segment, variant, rule = (
        unique("ca_pricing"),
        unique("enterprise"),
        unique("cta").replace("_", "-"),
    )
    put_segment(site, segment, PRICING_CONDITION)
    page = sign_in("editor")
    page.goto(site.url + "/ui/slots/hero")
    form = page.locator("#add-variant")
    form.get_by_label("Variant id").fill(variant)
    form.get_by_label("headline").fill("Talk to our sales team")
    form.get_by_label("cta", exact=True).fill("Book a demo")
    form.get_by_role("button", name="Add variant").click()
    page.wait_for_url(re.compile(r".*saved=1$"))
    rules = page.locator("#add-rule")
    rules.get_by_label("Rule id").fill(rule)
    rules.get_by_label("Priority (higher first)").fill("500")
    rules.get_by_label("People in any of").select_option(segment)
    rules.get_by_label("Show variant").select_option(variant)
    rules.get_by_role("button", name="Save rule").click()
    page.wait_for_url(re.compile(r".*saved=1$"))
    assert page.locator("td strong", has_text=rule).count() == 1
    page.get_by_label("Profile (user id, anonymous id or profile id)").fill(PRICING_VISITORS[0])
    draft = page.locator("#slot-json")
    draft.fill(draft.input_value().replace("Talk to our sales team", "Sales will call you"))
    page.get_by_role("button", name="Preview the page").click()
    result = page.locator("#preview-result")
    result.get_by_text("With the unsaved change").wait_for()
    hero = result.locator('[data-slot="hero"]')
    assert hero.first.locator(".variant-id").inner_text() == variant
    assert "Talk to our sales team" in hero.first.inner_text()  # now
    assert "Sales will call you" in hero.nth(1).inner_text()  # with the unsaved change
    assert rule in hero.first.inner_text()


def test_start_an_experiment_and_its_results_chart_renders(sign_in: Any, site: ConsoleSite) -> None:
    page = sign_in("editor")
    key = unique("recs").replace("_", "-")
    page.goto(site.url + "/ui/experiments")
    form = page.locator("#create-experiment")
    form.get_by_label("Key", exact=True).fill(key)
    form.get_by_label("Slot", exact=True).select_option("recommended")
    form.get_by_label("Arm 1 key").fill("control")
    form.locator("#arm0-serves").fill("popular")
    form.get_by_label("Arm 2 key").fill("treatment")
    form.locator("#arm1-serves").fill("category_affinity")
    form.get_by_label("Smallest lift worth detecting, % (relative)").fill("20")
    form.get_by_label("Smallest lift worth detecting, % (relative)").dispatch_event("change")
    page.locator("#plan").get_by_text("people per arm").wait_for()
    form.get_by_role("button", name="Create as draft").click()
    page.wait_for_url(re.compile(rf".*/ui/experiments/{key}$"))
    assert "draft" in page.locator("h1").inner_text()
    page.get_by_role("button", name="Start").click()
    page.wait_for_url(re.compile(rf".*/ui/experiments/{key}$"))
    assert "running" in page.locator("h1").inner_text()
    chart = page.locator("canvas.results-chart").first
    # a lift (and so a chart) needs conversions in both arms; on a loaded machine the simulated
    # client may fall back on slow decides and log fewer exposures, so simulate another day
    # (other people) until there are
    for day in range(3):
        assert site.simulate(seed=21 + day, days=1, users=900, after_days=SEED_DAYS + day) > 0
        page.reload()
        if chart.count():
            break
    chart.wait_for()
    drawn = chart.evaluate(
        """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                  let inked = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) inked++;
                  return inked; }"""
    )
    assert drawn > 1000, "the results chart is blank"
    assert page.locator("#verdict").inner_text()


def test_concurrent_edits_show_the_conflict_with_its_diff(sign_in: Any, site: ConsoleSite) -> None:
    key = unique("shared")
    put_segment(site, key, {"profile.sessions": {"$gte": 3}})
    first, second = sign_in("editor"), sign_in("admin")
    for page in (first, second):
        page.goto(site.url + f"/ui/segments/{key}")
    first.get_by_label("Segment name").fill("Loyal visitors")
    first.get_by_role("button", name="Save segment").click()
    first.wait_for_url(re.compile(r".*saved=1$"))
    second.get_by_label("Description").fill("three visits or more")
    second.get_by_role("button", name="Save segment").click()
    alert = second.get_by_role("alert")
    alert.wait_for()
    text = alert.inner_text()
    assert "someone saved first" in text
    assert f'~ segments[{key}].name: "{key}" → "Loyal visitors"' in text
    with site.admin() as admin:
        saved = {s["key"]: s for s in admin.get("/v1/admin/workspace").json()["segments"]}
    assert saved[key]["name"] == "Loyal visitors" and saved[key].get("description", "") == ""


def test_restore_an_earlier_version(sign_in: Any, site: ConsoleSite) -> None:
    page = sign_in("editor")
    page.goto(site.url + "/ui/history")
    before = int(page.locator("#live-revision").inner_text())
    key = unique("temporary")
    put_segment(site, key, {"profile.sessions": {"$gte": 9}})
    page.reload()
    page.get_by_label("Comment").first.fill("undo the temporary segment")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(f"#restore-{before}").click()
    page.wait_for_url(re.compile(r".*restored=.*"))
    assert int(page.locator("#live-revision").inner_text()) == before + 2
    with site.admin() as admin:
        keys = {s["key"] for s in admin.get("/v1/admin/workspace").json()["segments"]}
    assert key not in keys


def test_a_viewer_gets_403_on_an_edit_and_a_post_without_csrf_is_refused(
    sign_in: Any, site: ConsoleSite
) -> None:
    viewer = sign_in("viewer")
    response = viewer.goto(site.url + "/ui/segments/new")
    assert response.status == 403
    assert "needs the editor role" in viewer.content()
    csrf = viewer.locator('input[name="csrf"]').first.input_value()
    posted = viewer.request.post(
        site.url + "/ui/segments/save",
        form={
            "csrf": csrf,
            "key": "viewer_made",
            "name": "x",
            "r0_kind": "sessions",
            "r0_value": "1",
        },
    )
    assert posted.status == 403
    editor = sign_in("editor")
    forged = editor.request.post(
        site.url + "/ui/segments/save",
        form={"key": "forged_segment", "name": "x", "r0_kind": "sessions", "r0_value": "1"},
    )
    assert forged.status == 403 and "security token" in forged.text()
    with site.admin() as admin:
        keys = {s["key"] for s in admin.get("/v1/admin/workspace").json()["segments"]}
    assert not {"viewer_made", "forged_segment"} & keys


PAGES = [
    ("overview", "/ui"),
    ("segments", "/ui/segments"),
    ("segment-builder", "/ui/segments/new"),
    ("segment", "/ui/segments/running_fans"),
    ("slots", "/ui/slots"),
    ("slot", "/ui/slots/hero"),
    ("experiments", "/ui/experiments"),
    ("experiment", "/ui/experiments/holdout"),
    ("models", "/ui/models"),
    ("people", "/ui/people?id=" + PRICING_VISITORS[0]),
    ("privacy", "/ui/privacy"),
    ("history", "/ui/history"),
    ("revision", "/ui/history/1"),
    ("users", "/ui/users"),
]


def _axe(page: Any) -> list[dict[str, Any]]:
    page.add_script_tag(content=AXE.read_text(encoding="utf-8"))
    result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    assert len(result["passes"]) > 10  # axe ran its rules on the page
    return [v for v in result["violations"] if v.get("impact") in ("serious", "critical")]


def test_every_page_has_no_serious_accessibility_violation(
    chromium: Any, site: ConsoleSite
) -> None:
    # axe is injected as a script, which the console's CSP forbids: this context bypasses it
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    try:
        page = context.new_page()
        page.goto(site.url + "/ui/login")
        found: dict[str, list[str]] = {}
        if SCREENSHOTS:
            page.screenshot(path=str(Path(SCREENSHOTS) / "login.png"), full_page=True)
        found["login"] = [v["id"] for v in _axe(page)]
        page.get_by_label("Email").fill(site.email("admin"))
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(r".*/ui$"))
        page.wait_for_timeout(1500)  # the first background count
        with site.server.client() as server:
            listed = server.get("/v1/experiments").json()["experiments"]
        tested = next(
            (e["key"] for e in listed if e["exposed_users"] and e["key"] != "holdout"), None
        )
        pages = [
            (name, f"/ui/experiments/{tested}" if name == "experiment" and tested else path)
            for name, path in PAGES
        ]
        for name, path in pages:
            response = page.goto(site.url + path)
            assert response.status == 200, (path, response.status)
            page.wait_for_load_state("networkidle")
            if name == "slot":  # show a preview on the slot page
                page.get_by_label("Profile (user id, anonymous id or profile id)").fill(
                    PRICING_VISITORS[0]
                )
                page.get_by_role("button", name="Preview the page").click()
                page.locator("#preview-result .card").first.wait_for()
            if name == "segment-builder":
                page.fill("#r0_name", "Product Viewed")
                page.fill("#r0_value", "1")
                page.locator("#r0_value").dispatch_event("change")
                page.locator("#match-count").wait_for(timeout=10_000)
            if SCREENSHOTS:
                page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)
            found[name] = [f"{v['id']}: {v['help']}" for v in _axe(page)]
        assert {name: v for name, v in found.items() if v} == {}
    finally:
        context.close()
