"""Navigation -> slots filled, on localhost, in Debian's Chromium via Playwright, for the three
delivery paths of one page: a ``hero`` block whose rules read only the request (so the edge can
decide it) and the sample ``trending`` list over the sample catalog:

- **client-side**: a plain site with ``loopwise.js`` and two ``data-loopwise-slot`` elements; the
  SDK asks ``/v1/decide`` (the public write key) and fills them;
- **server-side**: a site whose server asks ``loopwise.client.Client.decide`` and fills the slots
  with ``loopwise.client.slots_html.fill_slots`` (what the Jinja2 helper and the ASGI middleware
  do) before the HTML leaves it;
- **edge**: a Node server standing in for an edge worker, deciding the context-only ``hero`` with
  ``loopwise-edge.js`` from the edge bundle (no round trip to the API) and asking the API for the
  personal ``trending`` slot, as ``decide()`` does.

"Filled" is the page's own clock (``performance.now()``, 0 = navigation start) when every slot
holds its decided content: loopwise.js marks slot elements, server-rendered pages mark it inline
after the last slot. Each round is a new browser context (a first visit: no cache, no cookie).
``python -m benchmarks.bench_navigation [--rounds N]`` prints Markdown lines for RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml
from tests.e2e.conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    SERVER_KEY,
    WRITE_KEY,
    free_port,
    start_server,
    stop_server,
)
from tests.e2e.site import start_site

from benchmarks.bench_decide import percentile
from benchmarks.machine import describe
from loopwise.client.client import Client
from loopwise.client.slots_html import fill_slots, slot_keys
from loopwise.config import SAMPLE_WORKSPACE

EDGE_MODULE = Path(__file__).parents[1] / "src/loopwise/web/static/loopwise-edge.js"
USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 "
    "Safari/537.36"
)
SLOTS_HTML = """<div class="hero" data-loopwise-slot="hero">
  <h2 data-loopwise-field="headline">Default headline</h2>
</div>
<div data-loopwise-slot="trending" data-loopwise-n="3">
  <template><a data-loopwise-item href="#"><span data-loopwise-field="title"></span></a></template>
  <div data-loopwise-items><a data-loopwise-item="run-001" href="#">Default</a></div>
</div>"""
MARK = "<script>window.__filledAt = performance.now()</script>"
SERVER_PAGE = f"""<!doctype html><html><head><meta charset="utf-8"><title>SSR</title></head>
<body><h1>Server-rendered</h1>{SLOTS_HTML}{MARK}</body></html>"""
# loopwise.js marks each slot element with data-loopwise-state once it is filled
CLIENT_PROBE = """
new MutationObserver((_, observer) => {
  const slots = [...document.querySelectorAll('[data-loopwise-slot]')];
  if (slots.length && slots.every(el => el.getAttribute('data-loopwise-state') === 'filled')) {
    window.__filledAt = performance.now();
    observer.disconnect();
  }
}).observe(document, {subtree: true, attributes: true, childList: true});
"""
EDGE_WORKER = """
import http from "node:http";
import { loadBundle, decideAtEdge } from "EDGE_MODULE";
const [host, key, port] = process.argv.slice(2);
const bundle = await loadBundle({ host, key });
http.createServer(async (req, res) => {
  const visitor = "edge-" + Math.random().toString(36).slice(2);
  const context = { page: { path: "/" }, time: { hour: new Date().getUTCHours(),
    weekday: (new Date().getUTCDay() + 6) % 7 } };
  const local = decideAtEdge(bundle, context);
  const hero = local.slots.hero.variant.content;
  const response = await fetch(host + "/v1/decide", { method: "POST",
    headers: { Authorization: "Bearer " + key, "Content-Type": "application/json" },
    body: JSON.stringify({ user: { anonymous_id: visitor },
      context: { userAgent: req.headers["user-agent"] }, slots: [{ slot: "trending", n: 3 }] }) });
  const items = response.ok ? (await response.json()).slots[0].items : [];
  const cards = items.map((i) => `<a data-loopwise-item="${i.id}">${i.title}</a>`).join("");
  res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
  res.end(`<!doctype html><html><head><meta charset="utf-8"><title>Edge</title></head><body>
<h1>Edge-rendered</h1><div data-loopwise-slot="hero"><h2>${hero.headline}</h2></div>
<div data-loopwise-slot="trending">${cards}</div>MARK</body></html>`);
}).listen(Number(port), "127.0.0.1", () => console.log("ready"));
"""


def workspace_file(site_origin: str, folder: Path) -> Path:
    """The sample catalog, a context-only hero and trending; the site's origin may call."""
    variants = [
        {"id": v, "content": {"headline": f"{v} headline"}} for v in ("plain", "uk", "phone")
    ]
    document = {
        "items": str(SAMPLE_WORKSPACE.parent / "items.jsonl"),
        "cors": {"allowed_origins": [site_origin]},
        "slots": [
            {"key": "hero", "kind": "block", "default_variant": "plain", "variants": variants,
             "rules": [
                 {"id": "uk", "when": {"context.country": "GB"}, "then": {"variant": "uk"}},
                 {"id": "phone", "when": {"context.device.type": "mobile"},
                  "then": {"variant": "phone"}},
             ]},
            {"key": "trending", "kind": "list", "n": 3, "default_strategy": "trending"},
        ],
    }  # fmt: skip
    path = folder / "loopwise.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


@contextmanager
def server_side_site(loopwise_url: str) -> Iterator[str]:
    """A site whose server fills the slots (loopwise.client) before sending the page."""
    client = Client(loopwise_url, SERVER_KEY)
    keys = slot_keys(SERVER_PAGE)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/":
                self.send_response(404)
                self.end_headers()
                return
            decision = client.decide(
                [{"slot": k, "n": 3} if k == "trending" else k for k in keys],
                anonymous_id=f"ssr-{uuid.uuid4()}",
                context={"userAgent": self.headers.get("User-Agent", "")},
            )
            body = fill_slots(SERVER_PAGE, decision).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        client.close()


@contextmanager
def edge_site(loopwise_url: str, folder: Path) -> Iterator[str]:
    """A Node server standing in for the edge worker."""
    script = folder / "edge-worker.mjs"
    source = EDGE_WORKER.replace("EDGE_MODULE", EDGE_MODULE.as_uri()).replace("MARK", MARK)
    script.write_text(source, encoding="utf-8")
    port = free_port()
    log = (folder / "edge-worker.log").open("w")
    process = subprocess.Popen(
        ["node", str(script), loopwise_url, SERVER_KEY, str(port)],
        stdout=subprocess.PIPE, stderr=log, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        ready = process.stdout.readline()
        if "ready" not in ready:
            raise RuntimeError(f"the edge worker did not start: {ready}")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def measure(browser: Any, url: str, rounds: int, probe: str | None = None) -> list[float]:
    """Milliseconds from navigation start to slots filled, one fresh context per round."""
    timings = []
    for index in range(rounds + 2):  # the first two warm the servers up; not counted
        context = browser.new_context(user_agent=USER_AGENT)
        if probe:
            context.add_init_script(probe)
        page = context.new_page()
        page.goto(url)
        page.wait_for_function("window.__filledAt !== undefined", timeout=10_000)
        if index >= 2:
            timings.append(float(page.evaluate("window.__filledAt")))
        context.close()
    return timings


def run(rounds: int = 40) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists() or shutil.which("node") is None:
        raise SystemExit("needs Debian's chromium at /usr/bin/chromium and node")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        port = free_port()
        server = start_server(
            folder / "data", workspace=workspace_file(f"http://127.0.0.1:{port}", folder)
        )
        site = start_site(server.url, WRITE_KEY, port)
        paths: dict[str, Callable[[Any], list[float]]] = {}
        try:
            with (
                sync_playwright() as playwright,
                server_side_site(server.url) as ssr,
                edge_site(server.url, folder) as edge,
            ):
                browser = playwright.chromium.launch(
                    executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
                )
                paths = {
                    "client-side (loopwise.js)": lambda b: measure(
                        b, site.url + "/", rounds, CLIENT_PROBE
                    ),
                    "server-side (loopwise.client)": lambda b: measure(b, ssr + "/", rounds),
                    "edge (loopwise-edge.js in Node)": lambda b: measure(b, edge + "/", rounds),
                }
                results = {name: sorted(measure_(browser)) for name, measure_ in paths.items()}
                browser.close()
        finally:
            site.stop()
            stop_server(server)
    return {"rounds": rounds, "timings": results}


def markdown(result: dict[str, Any]) -> list[str]:
    lines = [
        f"{result['rounds']} first visits per path (a new browser context each): `hero` "
        "(context rules) + `trending` (3 items, sample catalog); ms from navigation start to "
        "both slots filled (the page's `performance.now()`).",
        "",
        "| path | p50 ms | p95 ms | mean ms |",
        "| --- | --- | --- | --- |",
    ]
    for name, values in result["timings"].items():
        lines.append(
            f"| {name} | {percentile(values, 0.5):.1f} | {percentile(values, 0.95):.1f} | "
            f"{statistics.fmean(values):.1f} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    result = run(args.rounds)
    print(f"Machine: {describe()}")
    print(f"Command: `.venv/bin/python -m benchmarks.bench_navigation --rounds {args.rounds}`")
    print()
    print("\n".join(markdown(result)))
    print()
    print(json.dumps(result["timings"]))


if __name__ == "__main__":
    main()
