"""The browser files Loopwise serves: built once, compressed once, cached for a year when
versioned.

``loopwise.js`` (classic script) and ``loopwise.mjs`` (ES module) are two builds of one source,
``static/loopwise.src.js`` (a function of ``window`` and ``document`` returning the SDK). The builds
drop comment lines and indentation (safe: no statement relies on either), keep line breaks.

Each file is served with gzip or brotli when the client accepts it (``Vary: Accept-Encoding``), an
ETag per encoding, and ``Cache-Control``: a URL with the file's version (``?v=<hash>``, as
:func:`asset_url` gives) never changes, so it is cached for a year as ``immutable``; the plain URL
is revalidated after five minutes.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import brotli
from starlette.requests import Request
from starlette.responses import Response

STATIC_DIR = Path(__file__).parent / "static"
SDK_SOURCE = "loopwise.src.js"
VERSIONED_CACHE = "public, max-age=31536000, immutable"
PLAIN_CACHE = "public, max-age=300"
_BANNER = "/*! loopwise.js {kind}: tracking, consent and slots for Loopwise. docs/delivery.md */\n"

MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}


def minify(source: str) -> str:
    """Drop blank lines, whole-line ``//`` comments and indentation."""
    lines = (line.strip() for line in source.splitlines())
    return "\n".join(line for line in lines if line and not line.startswith("//"))


def build_sdk(module: bool) -> str:
    """The SDK as a classic script (sets ``window.loopwise``) or an ES module (default export)."""
    factory = minify((STATIC_DIR / SDK_SOURCE).read_text(encoding="utf-8"))
    if module:
        return (
            _BANNER.format(kind="ES module")
            + f"const loopwise = ({factory})(window, document);\nexport default loopwise;\n"
        )
    return _BANNER.format(kind="script") + f"window.loopwise = ({factory})(window, document);\n"


def _source(name: str) -> bytes:
    if name == "loopwise.js":
        return build_sdk(module=False).encode("utf-8")
    if name == "loopwise.mjs":
        return build_sdk(module=True).encode("utf-8")
    return (STATIC_DIR / name).read_bytes()


SERVED = ("loopwise.js", "loopwise.mjs", "loopwise-preferences.js", "loopwise-edge.js", "store.css")


@dataclass(frozen=True, slots=True)
class Asset:
    name: str
    media_type: str
    version: str  # hash prefix of the uncompressed body
    bodies: dict[str, bytes]  # content-coding ("identity", "gzip", "br") -> body


@cache
def asset(name: str) -> Asset:
    """The file ``name`` (one of :data:`SERVED`) with its compressed forms (built once)."""
    if name not in SERVED:
        raise KeyError(name)
    body = _source(name)
    bodies = {
        "identity": body,
        "gzip": gzip.compress(body, compresslevel=9, mtime=0),
        "br": brotli.compress(body, quality=11),
    }
    media = MEDIA_TYPES[Path(name).suffix]
    return Asset(name, media, hashlib.sha256(body).hexdigest()[:12], bodies)


def asset_url(name: str, prefix: str = "") -> str:
    """The versioned URL of a served file (cached by browsers and CDNs for a year)."""
    return f"{prefix}/{name}?v={asset(name).version}"


def accepted_encoding(accept_encoding: str | None) -> str:
    """``br`` or ``gzip`` when the client accepts it (q > 0; brotli preferred), else identity."""
    accepted: dict[str, float] = {}
    for part in (accept_encoding or "").split(","):
        token, _, params = part.strip().partition(";")
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                quality = 0.0
        if token:
            accepted[token.strip().lower()] = quality
    for coding in ("br", "gzip"):
        if accepted.get(coding, accepted.get("*", 0.0)) > 0:
            return coding
    return "identity"


def asset_response(request: Request, name: str) -> Response:
    """Serve ``name`` compressed as the client accepts, with ETag and cache lifetimes."""
    found = asset(name)
    coding = accepted_encoding(request.headers.get("accept-encoding"))
    etag = f'"{found.version}-{coding}"'
    versioned = request.query_params.get("v") == found.version
    headers = {
        "Cache-Control": VERSIONED_CACHE if versioned else PLAIN_CACHE,
        "ETag": etag,
        "Vary": "Accept-Encoding",
        # public files: an ES module imported from another origin needs a CORS header
        "Access-Control-Allow-Origin": "*",
    }
    if coding != "identity":
        headers["Content-Encoding"] = coding
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(found.bodies[coding], media_type=found.media_type, headers=headers)
