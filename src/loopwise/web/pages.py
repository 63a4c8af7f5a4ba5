"""The demo storefront at ``/sample`` and the browser snippet at ``/loopwise.js``.

The store is rendered by the server, which decides every slot itself (``engine.decide``) the way a
customer's backend would, then hands the decision ids to loopwise.js so impressions, clicks, cart
adds and orders flow back into the loop. No API key is needed: the pages only read the catalog and
the write key that any page embedding loopwise.js exposes anyway.

Key-less pages are open to crawlers and scripts, so a request without the visitor cookie from a
bot-like client (``device.type`` bot or other, or no user agent), or beyond a small per-address
rate of new visitors, gets the workspace's default content without a decide: nothing is logged.

HTML is built with small f-string helpers; every dynamic value goes through :func:`esc` (values for
scripts travel in ``data-*`` attributes, never inside ``<script>``).
"""

from __future__ import annotations

import html
import json
import logging
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from loopwise.api.edge_settings import RateLimit
from loopwise.api.ratelimit import TokenBuckets
from loopwise.catalog.items import Item
from loopwise.decide.defaults import default_slots
from loopwise.decide.filters import ItemFilters
from loopwise.decide.request import (
    DecideRequest,
    DecideResponse,
    DecideUser,
    SlotDecision,
    SlotRequest,
)
from loopwise.decide.why import explain_decision
from loopwise.errors import LoopwiseError
from loopwise.profiles.useragent import parse_device
from loopwise.web.assets import SERVED, asset, asset_response, asset_url

log = logging.getLogger(__name__)

COOKIE = "lw_aid"
COOKIE_MAX_AGE = 365 * 24 * 3600
STORE_NAME = "Loopwise Outfitters"
SCAN_LIMIT = 5000  # catalog items scanned for category pages and the navigation
PAGE_SIZE = 500
CATEGORY_PAGE_ITEMS = 60
_VISITOR_ID = re.compile(r"^[A-Za-z0-9-]{8,64}$")
_SAFE_URL = re.compile(r"^(https?://|/(?!/))", re.IGNORECASE)

HOME_SLOTS = ("hero", "recommended", "trending", "recently-viewed", "cta")
# Decided in this order (no item repeats across slots; earlier slots win): the visitor's own
# recently viewed items go first, so the other rows cannot take them away from it.
HOME_DECIDE_ORDER = ("recently-viewed", "hero", "recommended", "trending", "cta")
# New visitors (no cookie) decided per client address: beyond it, the default page (no log rows)
NEW_VISITOR_RATE = RateLimit(per_second=1, burst=20)
BOT_LIKE_DEVICES = frozenset({"bot", "other"})
SLOT_TITLES = {
    "recommended": "Recommended for you",
    "trending": "Trending now",
    "recently-viewed": "Recently viewed",
    "related": "Often bought together",
}
# With no history the strategies fall back to popular items; say so instead of mislabelling them.
COLD_START_TITLES = {
    "recently-viewed": "Popular picks to get you started",
    "related": "You may also like",
}

# Wires the rendered page to loopwise.js. Static text: page data comes from data-* attributes.
# Slots are already decided server-side (they carry data-loopwise-decision), so the SDK only
# tracks: the page view, impressions when they scroll into view, clicks in slots, cart and order.
PAGE_SCRIPT = """
(function () {
  var lw = window.loopwise, data = document.body.dataset;
  if (!lw) return;
  lw.init({writeKey: data.lwKey || null, host: "", anonymousId: data.lwAid});
  if (data.lwView) lw.track("Product Viewed", JSON.parse(data.lwView));
  document.addEventListener("click", function (event) {
    var el = event.target.closest("[data-lw-track]");
    if (!el) return;
    var props = JSON.parse(el.dataset.lwProps || "{}");
    if (el.dataset.lwTrack === "Order Completed") {
      props.order_id = "o_" + Date.now().toString(36) + Math.random().toString(36).slice(2, 8);
    }
    lw.track(el.dataset.lwTrack, props);
    if (el.dataset.lwDone) { el.textContent = el.dataset.lwDone; el.disabled = true; }
  });
})();
"""


class WriteKeys(Protocol):
    @property
    def write_key_plain(self) -> str | None: ...


class StoreEngine(Protocol):
    """What the pages need from :class:`loopwise.engine.Engine`."""

    @property
    def keys(self) -> WriteKeys: ...

    def get_item(self, item_id: str) -> Item | None: ...

    def list_items(self, offset: int, limit: int) -> tuple[list[Item], int]: ...

    def workspace_document(self) -> dict[str, Any]: ...

    def decide(
        self, request: DecideRequest, headers: Mapping[str, str] | None = None
    ) -> DecideResponse: ...


# -- small HTML helpers ---------------------------------------------------------------------------
def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def safe_url(url: object, default: str = "#") -> str:
    """Only relative or http(s) links: workspace content must not inject ``javascript:`` URLs."""
    text = str(url) if url is not None else ""
    return text if _SAFE_URL.match(text) else default


def data_json(value: Any) -> str:
    """JSON for a data-* attribute (escaped like everything else)."""
    return esc(json.dumps(value, separators=(",", ":"), ensure_ascii=False))


def item_href(item_id: str) -> str:
    return "/sample/items/" + quote(item_id, safe="")


def category_href(name: str) -> str:
    return "/sample/category/" + quote(name, safe="")


def format_price(price: object) -> str:
    if isinstance(price, int | float) and not isinstance(price, bool):
        return f"${price:,.2f}"
    return ""


def why(slot: SlotDecision, decision_id: str = "") -> str:
    """The disclosure of why this content (and whether AI) was chosen for this visitor: the same
    plain words ``GET /v1/decisions/{id}/why`` returns (loopwise.js refreshes it from there)."""
    if not slot.reasons:
        return ""
    explained = explain_decision(
        {"decision_id": decision_id, "slots": [slot.model_dump(mode="json")]}
    )["slots"][0]
    texts = [explained["summary"]] + [t for t in explained["reasons"] if t != explained["summary"]]
    lines = "".join(f"<li>{esc(text)}</li>" for text in texts)
    return (  # not data-loopwise-slot: the section is the slot (one impression per slot)
        f'<details class="why" data-loopwise-why="{esc(slot.slot)}">'
        f"<summary>Why am I seeing this?</summary><ul>{lines}</ul></details>"
    )


# -- slots ----------------------------------------------------------------------------------------
def render_block(slot: SlotDecision, decision_id: str) -> str:
    if slot.variant is None:
        return ""
    content = slot.variant.content
    parts = []
    if content.get("headline"):
        parts.append(f"<h2>{esc(content['headline'])}</h2>")
    if content.get("body"):
        parts.append(f"<p>{esc(content['body'])}</p>")
    if content.get("cta"):
        href = esc(safe_url(content.get("cta_url"), "/sample"))
        parts.append(f'<a class="button" href="{href}">{esc(content["cta"])}</a>')
    return (
        f'<section class="block block-{esc(slot.slot)}" {slot_attributes(slot.slot, decision_id)} '
        f'data-loopwise-variant="{esc(slot.variant.id)}">'
        f'<div class="block-body">{"".join(parts)}</div>{why(slot, decision_id)}</section>'
    )


def slot_attributes(slot: str, decision_id: str) -> str:
    """A server-rendered slot for loopwise.js: decided (so not hidden, not decided again), with
    the decision id its impression and clicks are attributed to (none for default content)."""
    decision = f' data-loopwise-decision="{esc(decision_id)}"' if decision_id else ""
    return f'data-loopwise-slot="{esc(slot)}" data-loopwise-state="filled"{decision}'


def render_card(
    item_id: str, title: str, price: object, image: str | None, categories: Sequence[str]
) -> str:
    href = esc(item_href(item_id))
    label = esc(categories[0]) if categories else ""
    picture = (
        f'<img src="{esc(safe_url(image))}" alt="" loading="lazy">'
        if image and safe_url(image) != "#"
        else f'<span class="placeholder" aria-hidden="true">{esc(title[:1])}</span>'
    )
    return (
        f'<article class="card"><a href="{href}" data-loopwise-item="{esc(item_id)}">'
        f'<div class="thumb">{picture}</div><div class="card-body">'
        f'<span class="kicker">{label}</span><h3>{esc(title)}</h3>'
        f'<span class="price">{esc(format_price(price))}</span></div></a></article>'
    )


def render_list(slot: SlotDecision, decision_id: str, engine: StoreEngine) -> str:
    cards = []
    for decided in slot.items:
        item = engine.get_item(decided.id)
        price = (decided.attributes or {}).get("price", item.price if item else None)
        categories = item.categories if item else ()
        image = decided.image or (item.image if item else None)
        cards.append(render_card(decided.id, decided.title, price, image, categories))
    if not cards:
        return ""
    title = SLOT_TITLES.get(slot.slot, slot.slot.replace("-", " ").capitalize())
    if any(reason.kind == "cold_start" for reason in slot.reasons):
        title = COLD_START_TITLES.get(slot.slot, title)
    return (
        f'<section class="shelf" {slot_attributes(slot.slot, decision_id)}><h2>{esc(title)}</h2>'
        f'<div class="grid">{"".join(cards)}</div>{why(slot, decision_id)}</section>'
    )


def render_slots(response: DecideResponse | None, engine: StoreEngine) -> dict[str, str]:
    """Slot key -> its HTML (empty for slots that have nothing to show)."""
    if response is None:
        return {}
    out = {}
    for slot in response.slots:
        if slot.kind == "block":
            out[slot.slot] = render_block(slot, response.decision_id)
        else:
            out[slot.slot] = render_list(slot, response.decision_id, engine)
    return out


# -- page frame -----------------------------------------------------------------------------------
def layout(
    title: str,
    main: str,
    *,
    write_key: str | None,
    visitor_id: str,
    categories: Iterable[str],
    view: Mapping[str, Any] | None = None,
) -> str:
    nav = "".join(f'<a href="{esc(category_href(c))}">{esc(c)}</a>' for c in categories)
    body_data = f'data-lw-key="{esc(write_key or "")}" data-lw-aid="{esc(visitor_id)}"'
    if view is not None:
        body_data += f' data-lw-view="{data_json(view)}"'
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · {esc(STORE_NAME)}</title>"
        f'<link rel="stylesheet" href="{esc(asset_url("store.css", "/sample"))}"></head>'
        f"<body {body_data}>"
        f'<header class="top"><a class="brand" href="/sample">{esc(STORE_NAME)}</a>'
        f'<nav>{nav}</nav></header><main>{main}</main><footer class="foot">'
        "<p>A demo store personalised live by Loopwise. Content marked "
        "<em>Why am I seeing this?</em> was chosen for you by rules and recommendation models.</p>"
        '<p><a href="/sample/reset">Start over as a new visitor</a> · '
        "<loopwise-preferences></loopwise-preferences></p></footer>"
        f'<script src="{esc(asset_url("loopwise.js"))}"></script>'
        f'<script src="{esc(asset_url("loopwise-preferences.js"))}" defer></script>'
        f"<script>{PAGE_SCRIPT}</script></body></html>"
    )


def scan_catalog(engine: StoreEngine, limit: int = SCAN_LIMIT) -> list[Item]:
    items: list[Item] = []
    while len(items) < limit:
        page, total = engine.list_items(len(items), min(PAGE_SIZE, limit - len(items)))
        items.extend(page)
        if not page or len(items) >= total:
            break
    return items


def category_names(items: Iterable[Item]) -> list[str]:
    return sorted({category for item in items for category in item.categories})


# -- router ---------------------------------------------------------------------------------------
def visitor(request: Request) -> tuple[str, bool]:
    """The visitor's anonymous id from the ``lw_aid`` cookie, or a new one (and True)."""
    current = request.cookies.get(COOKIE, "")
    if _VISITOR_ID.match(current):
        return current, False
    return str(uuid.uuid4()), True


def page_context(request: Request, title: str) -> dict[str, Any]:
    """The Segment-style context a browser would send for this page view."""
    url = request.url
    return {
        "page": {
            "url": str(url),
            "path": url.path,
            "referrer": request.headers.get("referer", ""),
            "title": title,
            "search": f"?{url.query}" if url.query else "",
        },
        "userAgent": request.headers.get("user-agent", ""),
        "locale": request.headers.get("accept-language", "").split(",")[0].strip() or None,
    }


WARM_UP_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0"
)


def warm_up() -> None:
    """Pay the one-time costs before the first visitor does (the first page after start took
    600-900 ms): the user-agent parser loads its regexes (~130 ms), the browser files are built
    and compressed (brotli at quality 11)."""
    parse_device(WARM_UP_AGENT)
    for name in SERVED:
        asset(name)


def bot_like(request: Request) -> bool:
    """A client that is not a person's browser: no user agent, a known bot or an HTTP library."""
    agent = request.headers.get("user-agent", "").strip()
    return not agent or parse_device(agent)["type"] in BOT_LIKE_DEVICES


def client_address(request: Request) -> str:
    return request.client.host if request.client is not None else ""


def build_router(engine: StoreEngine) -> APIRouter:
    """Routes for the browser files and the ``/sample`` store, bound to one engine."""
    router = APIRouter(include_in_schema=False)
    new_visitors = TokenBuckets()
    warm_up()

    def decide(
        request: Request, visitor_id: str, title: str, slots: list[SlotRequest], is_new: bool
    ) -> tuple[DecideResponse | None, str]:
        """Decide server-side; a workspace without these slots still gets a working page. An
        unidentified bot-like or too frequent new visitor gets the defaults, with no log rows."""
        if is_new and (
            bot_like(request)
            or new_visitors.take(("sample", client_address(request)), NEW_VISITOR_RATE) > 0
        ):
            return default_response(engine, [s.slot for s in slots]), ""
        try:
            decide_request = DecideRequest(
                user=DecideUser(anonymous_id=visitor_id),
                context=page_context(request, title),
                slots=slots,
            )
            return engine.decide(decide_request, dict(request.headers)), ""
        except LoopwiseError as exc:
            log.warning("sample store: decide failed: %s", exc.detail)
            return (
                None,
                f'<p class="notice">Personalised content unavailable: {esc(exc.detail)}</p>',
            )

    def page(
        title: str,
        main: str,
        visitor_id: str,
        is_new: bool,
        *,
        status_code: int = 200,
        view: Mapping[str, Any] | None = None,
    ) -> HTMLResponse:
        body = layout(
            title,
            main,
            write_key=engine.keys.write_key_plain,
            visitor_id=visitor_id,
            categories=category_names(scan_catalog(engine)),
            view=view,
        )
        response = HTMLResponse(body, status_code=status_code)
        response.headers["Cache-Control"] = "no-store"  # personalised per visitor
        if is_new:
            response.set_cookie(
                COOKIE, visitor_id, max_age=COOKIE_MAX_AGE, path="/", samesite="lax", httponly=True
            )
        return response

    for name in ("loopwise.js", "loopwise.mjs", "loopwise-preferences.js", "loopwise-edge.js"):
        router.add_api_route(f"/{name}", _asset_endpoint(name), methods=["GET"])
    router.add_api_route("/sample/store.css", _asset_endpoint("store.css"), methods=["GET"])

    @router.get("/sample/reset")
    def reset() -> Response:
        response = RedirectResponse("/sample", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    @router.get("/sample", response_class=HTMLResponse)
    def home(request: Request) -> HTMLResponse:
        visitor_id, is_new = visitor(request)
        response, notice = decide(
            request,
            visitor_id,
            "Home",
            [SlotRequest(slot=key) for key in HOME_DECIDE_ORDER],
            is_new,
        )
        html_slots = render_slots(response, engine)
        main = notice + "".join(html_slots.get(key, "") for key in HOME_SLOTS)
        return page("Home", main, visitor_id, is_new)

    @router.get("/sample/items/{item_id:path}", response_class=HTMLResponse)  # ids may hold "/"
    def item_page(item_id: str, request: Request) -> HTMLResponse:
        visitor_id, is_new = visitor(request)
        item = engine.get_item(item_id)
        if item is None:
            main = not_found(f"We could not find an item with id {item_id!r}.")
            return page("Not found", main, visitor_id, is_new, status_code=404)
        others = ItemFilters(exclude_items=[item.id])
        response, notice = decide(
            request,
            visitor_id,
            item.title,
            [
                SlotRequest(slot="related", filters=others),
                SlotRequest(slot="recommended", filters=others),
            ],
            is_new,
        )
        html_slots = render_slots(response, engine)
        main = (
            render_item(item)
            + notice
            + html_slots.get("related", "")
            + html_slots.get("recommended", "")
        )
        view = {
            "product_id": item.id,
            "category": item.categories[0] if item.categories else None,
            "price": item.price,
        }
        return page(item.title, main, visitor_id, is_new, view=view)

    @router.get("/sample/category/{name:path}", response_class=HTMLResponse)
    def category_page(name: str, request: Request) -> HTMLResponse:
        visitor_id, is_new = visitor(request)
        items = [item for item in scan_catalog(engine) if name in item.categories]
        if not items:
            main = not_found(f"There is no category called {name!r}.")
            return page("Not found", main, visitor_id, is_new, status_code=404)
        cards = "".join(
            render_card(i.id, i.title, i.price, i.image, i.categories)
            for i in items[:CATEGORY_PAGE_ITEMS]
        )
        main = (
            f'<section class="shelf"><h1>{esc(name.replace("-", " ").capitalize())}</h1>'
            f'<p class="muted">{len(items)} items</p><div class="grid">{cards}</div></section>'
        )
        return page(name, main, visitor_id, is_new)

    return router


def _asset_endpoint(name: str) -> Any:
    def endpoint(request: Request) -> Response:
        return asset_response(request, name)

    endpoint.__name__ = "asset_" + re.sub(r"\W", "_", name)
    return endpoint


def default_response(engine: StoreEngine, slots: Sequence[str]) -> DecideResponse:
    """The workspace's default content for ``slots``, as a decision that was never logged."""
    decided = default_slots(engine.workspace_document(), slots, engine.get_item)
    return DecideResponse(decision_id="", profile_id="", segments=[], slots=decided)


def not_found(message: str) -> str:
    return (
        f'<section class="empty"><h1>Not found</h1><p>{esc(message)}</p>'
        '<a class="button" href="/sample">Back to the store</a></section>'
    )


def render_item(item: Item) -> str:
    price = item.price
    product = {"product_id": item.id, "price": price, "quantity": 1}
    added = {
        **product,
        "name": item.title,
        "category": item.categories[0] if item.categories else None,
    }
    order = {"revenue": price or 0, "currency": "USD", "products": [product]}
    disabled = "" if item.in_stock else " disabled"
    stock = "In stock" if item.in_stock else "Out of stock"
    brand = item.attributes.get("brand")
    categories = " ".join(
        f'<a class="chip" href="{esc(category_href(c))}">{esc(c)}</a>' for c in item.categories
    )
    tags = " ".join(f'<span class="tag">{esc(t)}</span>' for t in item.tags)
    return (
        '<section class="product"><div class="thumb large">'
        f'<span class="placeholder" aria-hidden="true">{esc(item.title[:1])}</span></div>'
        f'<div class="details"><p class="kicker">{esc(brand or "")}</p><h1>{esc(item.title)}</h1>'
        f'<p class="price">{esc(format_price(price))} <span class="stock">{esc(stock)}</span></p>'
        f"<p>{esc(item.text)}</p><p>{categories} {tags}</p>"
        '<div class="actions">'
        f'<button class="button" data-lw-track="Product Added" data-lw-props="{data_json(added)}" '
        f'data-lw-done="Added to cart"{disabled}>Add to cart</button>'
        f'<button class="button secondary" data-lw-track="Order Completed" '
        f'data-lw-props="{data_json(order)}" data-lw-done="Thanks for your order"{disabled}>'
        "Buy now</button></div></div></section>"
    )
