"""Zero-flicker slots for server-rendered sites: a Jinja2 helper and an ASGI middleware, both
filling ``data-loopwise-slot`` elements before the HTML leaves the server
(:mod:`loopwise.client.slots_html`). Examples for Django, Flask and FastAPI: docs/delivery.md.

The visitor is the ``lw_aid`` cookie loopwise.js also keeps (so events from the page and
decisions on the server are one person); the middleware sets it for a new visitor.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from http.cookies import SimpleCookie
from typing import Any

from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from loopwise.client.client import AsyncClient, Client
from loopwise.client.slots_html import fill_slots, slot_keys

COOKIE = "lw_aid"
COOKIE_MAX_AGE = 365 * 24 * 3600


def render_slot(
    decision: Mapping[str, Any] | None, slot: str, default_html: str, tag: str = "div"
) -> Markup:
    """Jinja2: ``{{ loopwise_slot(decision, "hero", default_html) }}`` or as a call block
    (``{% call loopwise_slot_block(decision, "hero") %}...default...{% endcall %}``).
    ``default_html`` is the template's own (trusted) markup with its field markers."""
    wrapped = f'<{tag} data-loopwise-slot="{Markup.escape(slot)}">{default_html}</{tag}>'
    return Markup(fill_slots(wrapped, decision))


def install_jinja(environment: Any) -> None:
    """Add ``loopwise_slot`` (and the call-block form) to a Jinja2 environment's globals."""

    def slot_block(decision: Mapping[str, Any] | None, slot: str, tag: str = "div") -> Any:
        def call(caller: Any) -> Markup:
            return render_slot(decision, slot, str(caller()), tag)

        return call

    environment.globals["loopwise_slot"] = render_slot
    environment.globals["loopwise_fill"] = lambda html, decision: Markup(fill_slots(html, decision))
    environment.globals["loopwise_slot_block"] = slot_block


def visitor_id(headers: Mapping[str, str] | list[tuple[bytes, bytes]]) -> str | None:
    """The ``lw_aid`` cookie of a request, if any."""
    raw = ""
    if isinstance(headers, list):
        raw = "; ".join(v.decode("latin-1") for k, v in headers if k.lower() == b"cookie")
    else:
        raw = headers.get("cookie", "")
    cookie = SimpleCookie()
    try:
        cookie.load(raw)
    except Exception:
        return None
    morsel = cookie.get(COOKIE)
    return morsel.value if morsel is not None and morsel.value else None


def page_context(scope: Scope) -> dict[str, Any]:
    """The Segment-style context of the page being rendered (what decide conditions read)."""
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    host = headers.get("host", "")
    query = scope.get("query_string", b"").decode("latin-1")
    path = scope.get("path", "/")
    url = f"{scope.get('scheme', 'http')}://{host}{path}" + (f"?{query}" if query else "")
    return {
        "page": {"url": url, "path": path, "referrer": headers.get("referer", ""),
                 "search": f"?{query}" if query else ""},
        "userAgent": headers.get("user-agent", ""),
        "locale": headers.get("accept-language", "").split(",")[0].strip() or None,
    }  # fmt: skip


class LoopwiseMiddleware:
    """Fills the slots of every HTML page an ASGI app renders: one decide per page for the slots
    it marks; Loopwise slow or down leaves the defaults (the client's timeout and breaker)."""

    def __init__(self, app: ASGIApp, client: AsyncClient | Client) -> None:
        self.app = app
        self.client = client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "GET":
            await self.app(scope, receive, send)
            return
        known = visitor_id(scope["headers"])
        anonymous_id = known or str(uuid.uuid4())
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            await self._finish(start, b"".join(chunks), scope, anonymous_id, known, send)

        await self.app(scope, receive, capture)

    async def _finish(
        self,
        start: Message,
        body: bytes,
        scope: Scope,
        anonymous_id: str,
        known: str | None,
        send: Send,
    ) -> None:
        headers = [(k, v) for k, v in start.get("headers", [])]
        content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"")
        encoded = any(k.lower() == b"content-encoding" for k, _ in headers)
        if content_type.startswith(b"text/html") and not encoded:
            document = body.decode("utf-8", errors="replace")
            keys = slot_keys(document)
            if keys:
                decision = await self._decide(keys, anonymous_id, page_context(scope))
                body = fill_slots(document, decision).encode("utf-8")
                if known is None:
                    cookie = (
                        f"{COOKIE}={anonymous_id}; Path=/; Max-Age={COOKIE_MAX_AGE}; SameSite=Lax"
                    )
                    headers.append((b"set-cookie", cookie.encode("latin-1")))
            headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _decide(
        self, keys: list[str], anonymous_id: str, context: dict[str, Any]
    ) -> dict[str, Any] | None:
        client = self.client
        if isinstance(client, AsyncClient):
            return await client.decide(keys, anonymous_id=anonymous_id, context=context)
        return await run_in_threadpool(
            lambda: client.decide(keys, anonymous_id=anonymous_id, context=context)
        )
