"""A plain test site on its own origin (not the sample store): static pages that add loopwise.js
with one script tag and mark a few ``data-loopwise-slot`` elements, as a customer's site would."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Plain site</title>
<script src="{lw}/loopwise.js" data-write-key="{key}" data-host="{lw}" {consent}></script>
<style>body{{font:16px sans-serif;margin:0}} .hero{{height:140px;overflow:hidden}}
.items{{display:flex;gap:8px;height:60px;overflow:hidden}} .tall{{height:3000px}}</style>
</head><body>
<h1>Plain test site</h1>
<div class="hero" data-loopwise-slot="hero">
  <h2 data-loopwise-field="headline">Default headline</h2>
  <p data-loopwise-field="body">Default body</p>
  <a data-loopwise-field="cta" data-loopwise-href="cta_url" href="/">Default call</a>
</div>
<div data-loopwise-slot="trending" data-loopwise-n="3">
  <template><a class="card" data-loopwise-item href="#"><span data-loopwise-field="title"></span>
  </a></template>
  <div class="items" data-loopwise-items><a data-loopwise-item="run-001" href="#">Default</a></div>
</div>
<p><a id="plain-item" data-loopwise-item="run-002" href="#">A plain item link</a></p>
<loopwise-preferences></loopwise-preferences>
<script src="{lw}/loopwise-preferences.js" defer></script>
<div class="tall"></div><p id="end">The end</p>
</body></html>
"""


@dataclass
class Site:
    url: str
    server: ThreadingHTTPServer

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


CLIENT_MODULES = Path(__file__).with_name("clients") / "node_modules"
TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".json": "application/json"}


def start_site(
    loopwise_url: str, write_key: str, port: int = 0, pages: dict[str, str] | None = None
) -> Site:
    """Serve the test pages on ``port`` (0: a free one): every path (SPA routes) gets the page;
    ``?consent=required`` makes loopwise.js wait for a consent choice before sending and
    ``?timeout=MS`` sets how long slots may stay hidden (the script tag's ``data-timeout``);
    ``pages`` maps paths to other pages (``{lw}`` and ``{key}`` replaced);
    ``/node_modules/...`` serves the third-party clients installed under tests/e2e/clients."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path == "/favicon.ico":
                self.send_response(404)
                self.end_headers()
                return
            if parts.path.startswith("/node_modules/"):
                self._static(parts.path.removeprefix("/node_modules/"))
                return
            consent = "data-require-consent" if "consent=required" in parts.query else ""
            wait = parse_qs(parts.query).get("timeout")
            if wait and wait[0].isdigit():
                consent += f' data-timeout="{wait[0]}"'
            other = (pages or {}).get(parts.path)
            if other is not None:  # plain text with {lw} and {key}: pages hold scripts
                body = other.replace("{lw}", loopwise_url).replace("{key}", write_key).encode()
            else:
                body = PAGE.format(lw=loopwise_url, key=write_key, consent=consent).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _static(self, relative: str) -> None:
            path = (CLIENT_MODULES / relative).resolve()
            if not path.is_relative_to(CLIENT_MODULES.resolve()) or not path.is_file():
                self.send_response(404)
                self.end_headers()
                return
            body = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", TYPES.get(path.suffix, "application/octet-stream"))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return Site(f"http://127.0.0.1:{server.server_address[1]}", server)


def workspace_for(site_origin: str, directory: Path) -> Path:
    """The sample workspace with the site's origin allowed for browser calls (CORS)."""
    from loopwise.config import SAMPLE_WORKSPACE

    text = SAMPLE_WORKSPACE.read_text(encoding="utf-8")
    items = SAMPLE_WORKSPACE.parent / "items.jsonl"
    text = text.replace("items: items.jsonl", f"items: {items}")
    text += f'\ncors:\n  allowed_origins: ["{site_origin}"]\n'
    path = directory / "loopwise.yaml"
    path.write_text(text, encoding="utf-8")
    return path
