"""One visit: what a simulated user does on the site, as the Segment messages a client would send.

The flow of a session (see :mod:`loopwise.sim.behaviour` for the probabilities):

1. ``page`` for the home page (referrer and campaign from the visit's traffic source);
2. the policy is asked for the home page slots; each non-empty slot sends ``Content Viewed``
   (the impression, with ``decision_id``);
3. the visitor may bounce (more likely when what was shown is irrelevant to them);
4. a registered visitor may log in (``identify`` with the ``userId``; later messages carry it);
5. clicks on shown items: ``Content Clicked``, then the product ``page`` and ``Product Viewed``
   with the ``decision_id`` and ``slot``;
6. organic product views (``page`` + ``Product Viewed``) about the visit's *intent* (one liked
   category, often the previous visit's; :func:`loopwise.sim.population.session_intent`), each
   often a neighbour of the one before (:func:`organic_views`); after each view maybe
   ``Product Added`` (items of the intent appeal ``intent_boost`` more in this visit, and items
   with the visit's *need*, a tag of the intent, ``need_boost`` more:
   :func:`loopwise.sim.population.session_need`); visits are as long as real ones and go back
   to products seen earlier in them (a ``Product Viewed`` only), and products set aside in
   visits before the previous one appeal less (``moved_on``);
7. a non-empty cart is checked out (``Order Completed`` with revenue and products) or abandoned.

Randomness is drawn in a fixed order and the per-item draws (mood noise, add-to-cart) are made
for the whole catalog up front, so two policies simulated with the same session seed face the
same visitor in the same mood: differences in outcome come from what was shown.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from loopwise.clock import isoformat
from loopwise.sim.behaviour import (
    BehaviourParams,
    ChoiceModel,
    add_to_cart_probability,
    bounce_probability,
    browse_distribution,
    click_probability,
    order_probability,
)
from loopwise.sim.catalog import SimCatalog
from loopwise.sim.population import SimUser, session_intent, session_need

SITE = "https://shop.example.com"
LIBRARY = {"name": "loopwise-sim", "version": "1.0"}
LOGIN_AT_START = 0.35  # chance a registered, logged-out visitor logs in early in a visit
SOURCE_LOYALTY = 0.6  # chance a visit comes through the user's usual source, else direct
MEAN_STEP_SECONDS = 25.0  # think time between actions
MAX_STEP_SECONDS = 120.0

# traffic source -> (referrers to pick from, URL query, campaign context)
_ARRIVALS: dict[str, tuple[tuple[str, ...], str, dict[str, str] | None]] = {
    "direct": (("",), "", None),
    "organic_search": (
        ("https://www.google.com/", "https://www.bing.com/", "https://duckduckgo.com/"),
        "",
        None,
    ),
    "paid": (
        ("https://www.google.com/",),
        "?utm_source=google&utm_medium=cpc&utm_campaign=spring_sale",
        {"source": "google", "medium": "cpc", "name": "spring_sale"},
    ),
    "social": (
        ("https://www.instagram.com/", "https://www.facebook.com/", "https://t.co/"),
        "",
        None,
    ),
    "email": (
        ("",),
        "?utm_source=newsletter&utm_medium=email&utm_campaign=weekly_picks",
        {"source": "newsletter", "medium": "email", "name": "weekly_picks"},
    ),
    "referral": (("https://blog.example.org/gift-guide",), "", None),
}


@dataclass(frozen=True, slots=True)
class SlotAsk:
    """A slot on the home page and how many items it shows."""

    slot: str
    n: int


DEFAULT_SLOTS: tuple[SlotAsk, ...] = (SlotAsk("recommended", 4),)


@dataclass(frozen=True, slots=True)
class PolicyRequest:
    """What a site knows when it asks for content: ids, the page context, the slots, the time."""

    anonymous_id: str
    user_id: str | None
    context: dict[str, Any]  # Segment-style: page, userAgent, locale, location, campaign, consent
    slots: tuple[SlotAsk, ...]
    timestamp: datetime

    @property
    def user_key(self) -> str:
        """The id the site would use: the user id once logged in, else the anonymous id."""
        return self.user_id or self.anonymous_id


@dataclass(frozen=True, slots=True)
class PolicyResponse:
    """Item ids per slot; ``arm`` labels the variant for per-arm ground-truth summaries."""

    decision_id: str | None
    items_by_slot: dict[str, list[str]]
    arm: str = "default"


Policy = Callable[[PolicyRequest], PolicyResponse]


@dataclass(slots=True)
class SessionOutcome:
    """The messages of one visit plus the ground truth a benchmark wants about it."""

    user_id: str
    day: int
    arm: str
    messages: list[dict[str, Any]] = field(default_factory=list)
    decision_id: str | None = None
    shown: list[int] = field(default_factory=list)  # item indices, in slot order
    clicked: list[int] = field(default_factory=list)
    viewed: list[int] = field(default_factory=list)
    carted: list[int] = field(default_factory=list)
    purchased: list[int] = field(default_factory=list)
    bounced: bool = False
    revisits: int = 0  # organic views of a product already viewed in the visit (not in viewed)
    intent: int | None = None  # the category index the visit was about
    need: int | None = None  # the tag index (a product type of the intent) it was after
    revenue: float = 0.0
    logged_in: bool = False  # at the end of the visit
    # (user id, item id, time, "view" | "cart" | "purchase") in time order
    interactions: list[tuple[str, str, datetime, str]] = field(default_factory=list)

    @property
    def converted(self) -> bool:
        return bool(self.purchased)


def message_ids(session_key: str) -> Callable[[int], str]:
    """UUID-shaped message ids fixed by the session key and the message's place in the session
    (one hash per session: ids are made for every message, so they must be cheap)."""
    h = hashlib.sha256(session_key.encode()).hexdigest()
    prefix = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:24]}"
    return lambda seq: f"{prefix}{seq:08x}"


class _Emitter:
    """Builds the messages of one session with a moving clock and the session's context."""

    def __init__(
        self,
        user: SimUser,
        start: datetime,
        session_key: str,
        steps: np.ndarray,
        referrer: str,
        query: str,
        campaign: dict[str, str] | None,
    ) -> None:
        self.user = user
        self.now = start
        self.message_id = message_ids(session_key)
        self.steps = steps  # think times in ms, one per step
        self.n_steps = 0
        self.user_id: str | None = None
        self.query = query
        self.campaign = campaign
        self.referrer = referrer
        self.url = SITE + "/" + query
        self.path = "/"
        self.messages: list[dict[str, Any]] = []

    def step(self) -> None:
        self.now += timedelta(milliseconds=int(self.steps[self.n_steps % self.steps.size]))
        self.n_steps += 1

    def context(self) -> dict[str, Any]:
        user = self.user
        context: dict[str, Any] = {
            "page": {"url": self.url, "path": self.path, "referrer": self.referrer},
            "userAgent": user.user_agent,
            "locale": user.locale,
            "timezone": user.timezone,
            "location": {"country": user.country},
            "consent": {"categoryPreferences": dict(user.consent)},
            "library": dict(LIBRARY),
        }
        if self.campaign is not None:
            context["campaign"] = dict(self.campaign)
        return context

    def emit(self, kind: str, **fields: Any) -> dict[str, Any]:
        message: dict[str, Any] = {"type": kind, "anonymousId": self.user.anonymous_id}
        if self.user_id is not None:
            message["userId"] = self.user_id
        message.update(fields)
        message["context"] = self.context()
        message["messageId"] = self.message_id(len(self.messages))
        message["timestamp"] = _iso(self.now)
        self.messages.append(message)
        return message

    def page(self, path: str, name: str, title: str) -> None:
        url = SITE + path
        if self.messages:  # navigation inside the site
            self.referrer, self.url, self.path = self.url, url, path
        self.emit(
            "page",
            name=name,
            properties={
                "url": self.url,
                "path": path,
                "referrer": self.referrer,
                "title": title,
            },
        )

    def track(self, event: str, properties: dict[str, Any]) -> None:
        self.emit("track", event=event, properties=properties)


def _iso(moment: datetime) -> str:
    """:func:`loopwise.clock.isoformat` for times already in UTC (the simulator's only kind)."""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _product(catalog: SimCatalog, index: int) -> dict[str, Any]:
    item = catalog.items[index]
    return {
        "product_id": item.id,
        "name": item.title,
        "category": item.categories[0],
        "price": float(catalog.price[index]),
        "currency": "USD",
        "url": item.url,
    }


def simulate_session(
    user: SimUser,
    day: int,
    catalog: SimCatalog,
    policy: Policy,
    rng: np.random.Generator,
    clock_start: datetime,
    *,
    model: ChoiceModel | None = None,
    slots: tuple[SlotAsk, ...] = DEFAULT_SLOTS,
    logged_in: bool = False,
    session_key: str | None = None,
    previous_intent: int | None = None,
    previous_need: int | None = None,
    need_rng: np.random.Generator | None = None,
    moved_on: np.ndarray | None = None,
) -> SessionOutcome:
    """Simulate one visit starting at ``clock_start``; ``logged_in`` carries over from earlier
    visits (the site remembers the login). ``session_key`` seeds the message ids (the runner
    passes one that includes the simulation seed). ``moved_on`` are the item indices the user
    viewed in visits before the previous one and not in it: they appeal ``moved_on_discount``
    less in this visit (people move on from products they looked at and set aside)."""
    model = model if model is not None else ChoiceModel(catalog)
    params = model.params
    true_u = model.utilities(user)
    n_items = true_u.size
    # -- all per-session randomness, in a fixed order (common random numbers across policies)
    session_u = true_u + rng.normal(0.0, params.noise_sd, n_items)
    add_draws = rng.random(n_items)
    source = user.traffic_source if rng.random() < SOURCE_LOYALTY else "direct"
    referrers, query, campaign = _ARRIVALS[source]
    referrer = referrers[int(rng.integers(len(referrers)))]
    bounce_draw, login_draw, order_draw = rng.random(3)
    click_draws = rng.random(sum(ask.n for ask in slots))
    n_organic = organic_view_count(rng, params)
    pick_draws = rng.random(n_organic)
    # enough think times for the longest possible visit: impressions, login, click + view +
    # add per shown item, view + add per organic view, checkout
    n_steps = len(slots) + 1 + 3 * click_draws.size + 3 * n_organic + 3
    steps = np.minimum(3.0 + rng.exponential(MEAN_STEP_SECONDS, n_steps), MAX_STEP_SECONDS)
    intent_draws = rng.random(2)
    follow_draws = rng.random(n_organic)
    revisit_draws = rng.random((2, n_organic))
    # -- the visit's intent: a liked category, often the previous visit's; its items appeal more
    intent = session_intent(user, day, previous_intent, (intent_draws[0], intent_draws[1]))
    in_intent = catalog.category_index == intent
    # the need: a product type within the intent (its own stream, so adding it left every other
    # draw of the run as it was)
    need_draws = (need_rng if need_rng is not None else rng).random(2)
    need = session_need(user, catalog, intent, previous_need, (need_draws[0], need_draws[1]))
    has_need = catalog.item_vectors[:, len(catalog.categories) + need] > 0
    session_u = session_u + params.intent_boost * in_intent + params.need_boost * has_need
    if moved_on is not None and moved_on.size:  # products set aside in visits before the last
        session_u = session_u.copy()
        session_u[moved_on] -= params.moved_on_discount
    would_add = add_draws < add_to_cart_probability(session_u, user.purchase_propensity, params)
    organic = organic_views(catalog, session_u, np.flatnonzero(in_intent), pick_draws,
                            follow_draws, params, revisit_draws)  # fmt: skip

    key = session_key or f"{user.id}:{isoformat(clock_start)}"
    out = _Emitter(user, clock_start, key, np.round(steps * 1000.0), referrer, query, campaign)
    if logged_in:
        out.user_id = user.id
    out.emit(
        "page",
        name="Home",
        properties={"url": out.url, "path": "/", "referrer": referrer, "title": "Home"},
    )
    request = PolicyRequest(
        anonymous_id=user.anonymous_id,
        user_id=out.user_id,
        context=out.context(),
        slots=slots,
        timestamp=clock_start,
    )
    response = policy(request)
    outcome = SessionOutcome(
        user_id=user.id, day=day, arm=response.arm, decision_id=response.decision_id
    )
    outcome.intent = intent
    outcome.need = need
    decision = {"decision_id": response.decision_id} if response.decision_id else {}

    shown: list[tuple[str, int, int]] = []  # (slot, position, item index)
    for ask in slots:
        indices = _valid_items(response.items_by_slot.get(ask.slot, []), catalog, ask.n)
        if not indices:
            continue
        out.step()
        out.track(
            "Content Viewed",
            {
                **decision,
                "slot": ask.slot,
                "products": [
                    {"product_id": catalog.ids[i], "position": k + 1} for k, i in enumerate(indices)
                ],
            },
        )
        shown.extend((ask.slot, k, i) for k, i in enumerate(indices))
    outcome.shown = [i for _, _, i in shown]

    shown_true = true_u[np.array(outcome.shown, dtype=int)]
    if bounce_draw < bounce_probability(shown_true, model.mean_utility(user), params):
        outcome.bounced = True
        outcome.messages = out.messages
        outcome.logged_in = out.user_id is not None
        return outcome

    if user.registered and out.user_id is None and login_draw < LOGIN_AT_START:
        _login(out, user)

    cart: list[int] = []

    def view(index: int, extra: dict[str, Any]) -> None:
        out.step()
        item = catalog.items[index]
        out.page(f"/p/{item.id}", "Product", item.title)
        out.track("Product Viewed", {**_product(catalog, index), **extra})
        outcome.viewed.append(index)
        outcome.interactions.append((user.id, item.id, out.now, "view"))
        if would_add[index]:
            out.step()
            out.track("Product Added", {**_product(catalog, index), "quantity": 1, **extra})
            cart.append(index)
            outcome.interactions.append((user.id, item.id, out.now, "cart"))

    if shown:
        positions = np.array([k for _, k, _ in shown])
        shown_indices = np.array([i for _, _, i in shown])
        p_click = click_probability(session_u[shown_indices], positions, params)
        for j, (slot, k, index) in enumerate(shown):
            if click_draws[j] >= p_click[j] or index in outcome.viewed:
                continue
            out.step()
            out.track(
                "Content Clicked",
                {**decision, "slot": slot, "item_id": catalog.ids[index], "position": k + 1},
            )
            outcome.clicked.append(index)
            view(index, {**decision, "slot": slot})
    for index in (int(i) for i in organic):
        if index in outcome.viewed:  # back to a product seen earlier in the visit: a view only
            out.step()
            item = catalog.items[index]
            out.page(f"/p/{item.id}", "Product", item.title)
            out.track("Product Viewed", _product(catalog, index))
            outcome.interactions.append((user.id, item.id, out.now, "view"))
            outcome.revisits += 1
        else:
            view(index, {})

    outcome.carted = list(cart)
    if cart and order_draw < order_probability(
        session_u[np.array(cart)], user.purchase_propensity, params
    ):
        if user.registered and out.user_id is None:
            _login(out, user)
        out.step()
        out.page("/checkout", "Checkout", "Checkout")
        out.step()
        revenue = round(float(catalog.price[np.array(cart)].sum()), 2)
        order_id = "order-" + out.message_id(len(out.messages))
        out.track(
            "Order Completed",
            {
                **decision,
                "order_id": order_id,
                "revenue": revenue,
                "currency": "USD",
                "products": [{**_product(catalog, i), "quantity": 1} for i in cart],
            },
        )
        outcome.purchased = list(cart)
        outcome.revenue = revenue
        outcome.interactions.extend((user.id, catalog.ids[i], out.now, "purchase") for i in cart)
    outcome.messages = out.messages
    outcome.logged_in = out.user_id is not None
    return outcome


def organic_view_count(rng: np.random.Generator, params: BehaviourParams) -> int:
    """Distinct products a visitor browses to by themselves: ``1 + NegBin`` with mean
    ``params.organic_views`` and dispersion ``params.organic_dispersion`` (many one-product
    visits and a long tail of long ones, as in real logs; a huge dispersion gives ``1 +
    Poisson``)."""
    mean = max(params.organic_views - 1.0, 0.0)
    if mean == 0.0:
        return 1
    r = params.organic_dispersion
    return 1 + int(rng.negative_binomial(r, r / (r + mean)))


def organic_views(
    catalog: SimCatalog,
    session_utility: np.ndarray,
    intent_items: np.ndarray,
    pick_draws: np.ndarray,
    follow_draws: np.ndarray,
    params: BehaviourParams,
    revisit_draws: np.ndarray | None = None,
) -> np.ndarray:
    """The item indices a visitor browses to by themselves, in order: the first from
    :func:`browse_distribution` over the intent's items; each next one, with probability
    ``params.follow_share``, a neighbour of the previous view (softmax over the intent's items of
    ``follow_similarity · v_prev · v_i + U_i / τ``: same tags, same look), else a fresh draw like
    the first. This is the order inside a session that sequence-aware models learn from.

    With ``revisit_draws`` (two rows of uniforms, one column per view), before each view after
    the first the visitor goes back, with probability ``params.revisit_share``, to a product
    seen before the previous one in the visit (softmax of ``U / τ`` over those: the ones they
    liked best, to compare) and the next view follows from that one. Revisits, and fresh draws
    that land on a product seen before, repeat an index already in the result."""
    n_items = session_utility.size
    fresh = np.cumsum(browse_distribution(session_utility, intent_items, params))
    views: list[int] = []
    distinct: list[int] = []
    for j, draw in enumerate(pick_draws):
        if (
            revisit_draws is not None
            and len(distinct) > 1
            and revisit_draws[0, j] < params.revisit_share
        ):
            earlier = np.asarray([i for i in distinct if i != views[-1]])
            logits = session_utility[earlier] / params.browse_temperature
            weights = np.cumsum(np.exp(logits - logits.max()))
            back = int(np.searchsorted(weights, revisit_draws[1, j] * weights[-1], side="right"))
            views.append(int(earlier[min(back, earlier.size - 1)]))
        if views and intent_items.size > 1 and follow_draws[j] < params.follow_share:
            prev = views[-1]
            candidates = intent_items[intent_items != prev]
            similarity = catalog.item_vectors[candidates] @ catalog.item_vectors[prev]
            logits = params.follow_similarity * similarity
            logits = logits + session_utility[candidates] / params.browse_temperature
            weights = np.cumsum(np.exp(logits - logits.max()))
            pick = int(np.searchsorted(weights, draw * weights[-1], side="right"))
            views.append(int(candidates[min(pick, candidates.size - 1)]))
        else:
            pick = int(np.searchsorted(fresh, draw * fresh[-1], side="right"))
            views.append(min(pick, n_items - 1))
        if views[-1] not in distinct:
            distinct.append(views[-1])
    return np.asarray(views, dtype=np.int64)


def _login(out: _Emitter, user: SimUser) -> None:
    out.step()
    out.user_id = user.id
    out.emit(
        "identify",
        traits={"country": user.country, "preferred_device": user.device},
    )


def _valid_items(item_ids: list[str], catalog: SimCatalog, n: int) -> list[int]:
    """Catalog indices of the first ``n`` distinct known ids (unknown ids are not rendered)."""
    indices: list[int] = []
    for item_id in item_ids:
        index = catalog.index_of.get(item_id)
        if index is not None and index not in indices:
            indices.append(index)
            if len(indices) == n:
                break
    return indices
