"""The console's static files (its CSS and script, the vendored htmx and Chart.js), read once,
served gzipped when accepted and cached for a year when asked for by versioned URL."""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from functools import cache

from starlette.requests import Request
from starlette.responses import Response

from loopwise.console.web import STATIC, asset_version
from loopwise.errors import NotFound

SERVED = (
    "console.css",
    "console.js",
    "vendor/htmx-2.0.11.min.js",
    "vendor/chart-4.6.1.umd.min.js",
    "vendor/htmx.LICENSE.txt",
    "vendor/chart.js.LICENSE.md",
)
TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/plain; charset=utf-8",
}


@dataclass(frozen=True, slots=True)
class Static:
    media_type: str
    body: bytes
    gzipped: bytes


@cache
def _load(name: str) -> Static:
    body = (STATIC / name).read_bytes()
    suffix = name[name.rfind(".") :]
    return Static(TYPES[suffix], body, gzip.compress(body, 9, mtime=0))


def static_response(name: str, request: Request) -> Response:
    if name not in SERVED:
        raise NotFound(f"No console file {name!r}.", field="name")
    found = _load(name)
    versioned = request.query_params.get("v") == asset_version(name)
    headers = {
        "Cache-Control": "public, max-age=31536000, immutable" if versioned else "no-cache",
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
    }
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(found.gzipped, media_type=found.media_type, headers=headers)
    return Response(found.body, media_type=found.media_type, headers=headers)
