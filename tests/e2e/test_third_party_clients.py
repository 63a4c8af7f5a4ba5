"""Real third-party analytics clients, unchanged apart from their host settings, against a real
``loopwise serve``; what they send is counted in what the server stored.

- browser SDKs in Debian's Chromium on a plain site of its own origin: Segment's
  ``@segment/analytics-next`` (settings host ``cdnURL``: short paths ``/v1/p|t|i``, a retry
  carrying ``X-Retry-Count``) and RudderStack's ``@rudderstack/analytics-js`` (data plane and
  ``configUrl``: ``anonymousid``/``sentat`` headers; beacon mode to ``/beacon/v1/batch`` as
  text/plain);
- server SDKs from Node (with the server key, as a site's server sends user ids):
  ``@rudderstack/rudder-sdk-node`` (gzip on by default, labelled as a form) and
  ``@segment/analytics-node``;
- ``analytics-python`` 1.4 in a virtualenv of its own (it pins backoff 1.10.0, which
  rudder-sdk-python's pins exclude), reading ``code``/``message`` of a rejected batch.

The npm packages are pinned in tests/e2e/clients/package-lock.json and installed by ``npm ci``
(skipped with a message when npm is missing); analytics-python 1.4 is installed from PyPI into
.venv-clients/ the first time.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import ADMIN_KEY, SERVER_KEY, WRITE_KEY, Server, free_port
from tests.e2e.site import CLIENT_MODULES, Site, start_site, workspace_for

CLIENTS = CLIENT_MODULES.parent
REPO = Path(__file__).resolve().parents[2]
OLD_ANALYTICS_PYTHON = "analytics-python==1.4.0"
USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 "
    "Safari/537.36"
)

SEGMENT_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Segment</title>
<script src="/node_modules/@segment/analytics-next/dist/umd/index.js"></script></head><body>
<script>
  // unchanged SDK; the one setting: where its settings come from (Loopwise answers them)
  window.loaded = AnalyticsNext.AnalyticsBrowser.load({ writeKey: "{key}", cdnURL: "{lw}" });
</script></body></html>"""

RUDDER_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>RudderStack</title>
<script src="/node_modules/@rudderstack/analytics-js/dist/npm/modern/bundled/umd/index.js">
</script></head><body>
<script>
  // unchanged SDK; the settings: the data plane and the source configuration host
  window.rs = new rudderanalytics.RudderAnalytics();
  const beacon = location.search.includes("beacon");
  window.loaded = new Promise((resolve) => rs.load("{key}", "{lw}",
    { configUrl: "{lw}", useBeacon: beacon, onLoaded: resolve }));
</script></body></html>"""

SEND = """async ({ sdk }) => {
  const a = sdk === "segment" ? (await window.loaded)[0] : (await window.loaded, window.rs);
  await a.page("Pricing", { path: "/pricing" });
  await a.track("Signed Up", { plan: "pro" });
  await a.identify("u-" + sdk, { plan: "pro" });
  return sdk === "segment" ? a.user().anonymousId() : a.getAnonymousId();
}"""


@pytest.fixture(scope="session")
def client_modules() -> Path:
    """The pinned npm clients (``npm ci`` when node_modules is missing or older than the lock)."""
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.skip("third-party JS clients need node and npm (apt-get install nodejs npm)")
    lock, installed = CLIENTS / "package-lock.json", CLIENT_MODULES / ".package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        run = subprocess.run(
            ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
            cwd=CLIENTS, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        if run.returncode != 0:
            pytest.fail(f"npm ci failed in {CLIENTS}:\n{run.stdout}\n{run.stderr}")
    return CLIENT_MODULES


@pytest.fixture
def setup(
    live_server: Callable[..., Server], tmp_path: Path, client_modules: Path
) -> Iterator[tuple[Server, Site]]:
    port = free_port()
    server = live_server(workspace=workspace_for(f"http://127.0.0.1:{port}", tmp_path))
    pages = {"/segment": SEGMENT_PAGE, "/rudder": RUDDER_PAGE}
    site = start_site(server.url, WRITE_KEY, port, pages=pages)
    yield server, site
    site.stop()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(user_agent=USER_AGENT)
    page = context.new_page()
    yield page
    context.close()


def stored(server: Server, identifier: str, count: int) -> list[str]:
    """The names of the events stored for a person, once there are ``count`` of them."""
    names: list[str] = []
    deadline = time.monotonic() + 15
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as c:
        while time.monotonic() < deadline:
            response = c.get(f"/v1/profiles/{identifier}/export")
            events = response.json().get("events", []) if response.status_code == 200 else []
            names = sorted(str(e.get("event") or e.get("type")) for e in events)
            if len(names) >= count:
                return names
            time.sleep(0.2)
    raise AssertionError(f"{count} events not stored in time; have {names}")


def requests_to(server: Server, route: str) -> int:
    """Successful requests the server counted on one route (its /metrics)."""
    text = httpx.get(server.url + "/metrics").text
    pattern = rf'loopwise_http_requests_total\{{[^}}]*route="{re.escape(route)}"[^}}]*status="200"'
    return sum(int(float(line.rsplit(" ", 1)[1])) for line in text.splitlines()
               if re.match(pattern, line))  # fmt: skip


EXPECTED = ["Signed Up", "identify", "page"]


def test_segment_analytics_next_posts_to_the_short_paths(
    setup: tuple[Server, Site], page: Any
) -> None:
    server, site = setup
    paths: list[str] = []
    page.on("request", lambda r: paths.append(r.url.split("?")[0].removeprefix(server.url)))
    page.goto(site.url + "/segment")
    anonymous_id = page.evaluate(SEND, {"sdk": "segment"})
    assert stored(server, anonymous_id, 3) == EXPECTED
    assert {"/v1/p", "/v1/t", "/v1/i"} <= set(paths)


def test_segment_analytics_next_retries_with_x_retry_count_and_the_event_is_kept(
    setup: tuple[Server, Site], page: Any
) -> None:
    server, site = setup
    attempts: list[str | None] = []

    def first_fails(route: Any) -> None:
        attempts.append(route.request.headers.get("x-retry-count"))
        if len(attempts) == 1:  # a 503 as a busy server would answer
            route.fulfill(status=503, headers={"Access-Control-Allow-Origin": "*"}, body="busy")
        else:
            route.continue_()  # the retry goes to the server: its preflight must pass

    page.route("**/v1/t", first_fails)
    page.goto(site.url + "/segment")
    anonymous_id = page.evaluate(
        """async () => { const [a] = await window.loaded; a.track("Retried", { n: 1 });
                         return a.user().anonymousId(); }"""
    )
    for _ in range(100):  # route handlers run while Playwright waits, not in time.sleep
        if len(attempts) >= 2:
            break
        page.wait_for_timeout(100)
    assert stored(server, anonymous_id, 1) == ["Retried"]
    assert attempts[0] is None and attempts[1] == "1"
    time.sleep(0.5)
    assert stored(server, anonymous_id, 1) == ["Retried"]  # stored once


@pytest.mark.parametrize("beacon", [False, True], ids=["xhr", "beacon"])
def test_rudderstack_analytics_js_with_its_headers_and_in_beacon_mode(
    setup: tuple[Server, Site], page: Any, beacon: bool
) -> None:
    server, site = setup
    headers: list[dict[str, str]] = []
    page.on("request", lambda r: headers.append(r.headers) if "/v1/" in r.url else None)
    page.goto(site.url + "/rudder" + ("?beacon" if beacon else ""))
    anonymous_id = page.evaluate(SEND, {"sdk": "rudder"})
    if beacon:
        page.goto("about:blank")  # page hide flushes the beacon queue
    assert stored(server, anonymous_id, 3) == EXPECTED
    if beacon:
        assert requests_to(server, "/beacon/v1/batch") >= 1
    else:  # the headers whose preflight used to fail
        assert all("anonymousid" in h and "sentat" in h for h in headers)
        assert requests_to(server, "/v1/track") == 1


def run_node(script: str, server: Server, user_id: str) -> None:
    run = subprocess.run(
        ["node", str(CLIENTS / script), server.url, SERVER_KEY, user_id],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr


def test_rudder_sdk_node_sends_gzipped_form_labelled_bodies(
    server: Server, client_modules: Path
) -> None:
    user_id = f"node-rudder-{uuid.uuid4()}"
    before = requests_to(server, "/v1/batch")
    run_node("rudder_node.cjs", server, user_id)
    assert stored(server, user_id, 3) == EXPECTED
    assert requests_to(server, "/v1/batch") > before


def test_segment_analytics_node(server: Server, client_modules: Path) -> None:
    user_id = f"node-segment-{uuid.uuid4()}"
    run_node("segment_node.mjs", server, user_id)
    assert stored(server, user_id, 3) == EXPECTED


# -- analytics-python 1.4, in its own virtualenv ----------------------------------------------
OLD_CLIENT_SCRIPT = """
import datetime, json, sys
from analytics.client import Client
from analytics.request import APIError

url, key, user = sys.argv[1:4]
errors = []
client = Client(key, host=url, sync_mode=True, on_error=lambda e, batch: errors.append(e))
client.identify(user, {"plan": "pro"})
client.track(user, "Signed Up", {"plan": "pro"})
client.page(user, name="Pricing", properties={"path": "/pricing"})
try:  # rejected (before 2000): sync mode raises the APIError built from code and message
    client.track(user, "Too Old", timestamp=datetime.datetime(1990, 1, 1))
except APIError as error:
    errors.append(error)
print(json.dumps([{"status": e.status, "code": e.code, "message": e.message} for e in errors]))
"""


@pytest.fixture(scope="session")
def old_analytics_python() -> Path:
    """.venv-clients/analytics-python-1.4 (made once from PyPI): its pins clash with ours."""
    venv = REPO / ".venv-clients" / "analytics-python-1.4"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    check = subprocess.run([str(python), "-c", "import analytics"], capture_output=True)
    if check.returncode != 0:
        install = subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", OLD_ANALYTICS_PYTHON],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        if install.returncode != 0:
            pytest.skip(f"cannot install {OLD_ANALYTICS_PYTHON}: {install.stderr[-500:]}")
    return python


def test_analytics_python_1_4_stores_and_reads_code_and_message_of_a_rejection(
    server: Server, old_analytics_python: Path
) -> None:
    user_id = f"old-python-{uuid.uuid4()}"
    run = subprocess.run(
        [str(old_analytics_python), "-c", OLD_CLIENT_SCRIPT, server.url, SERVER_KEY, user_id],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "KeyError" not in run.stderr
    [error] = json.loads(run.stdout.strip().splitlines()[-1])
    assert error["status"] == 400 and error["code"] and "2000" in error["message"]
    assert stored(server, user_id, 3) == EXPECTED
