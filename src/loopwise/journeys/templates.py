"""Built-in journey templates, ready to switch on: ``{key: my_cart, template: cart_abandonment,
endpoint: crm}`` in ``journeys:`` expands to a whole journey (docs/journeys.md lists them).

Template parameters (besides any journey field, which replaces the template's): ``endpoint``
(the webhook endpoint every send goes to), ``slot`` (content decided for that slot rides along
with each send), ``wait`` (the template's main wait).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from loopwise.errors import ConfigError

PARAMETERS = ("endpoint", "slot", "wait")


def _send(endpoint: str, slot: str | None, step_id: str) -> dict[str, Any]:
    step: dict[str, Any] = {"id": step_id, "action": "webhook", "endpoint": endpoint}
    if slot:
        step["slot"] = slot
    return step


def welcome(endpoint: str, slot: str | None, wait: str | None) -> dict[str, Any]:
    """Three messages over a week to someone who just signed up; stops once they buy."""
    gap = wait or "2d"
    return {
        "name": "Welcome series",
        "trigger": {"event": "Signed Up"},
        "steps": [
            _send(endpoint, slot, "welcome_1"),
            {"id": "wait_1", "wait": gap},
            {"id": "bought", "branch": {"if": {"profile.purchases": {"$gte": 1}}, "then": "end"}},
            _send(endpoint, slot, "welcome_2"),
            {"id": "wait_2", "wait": gap},
            _send(endpoint, slot, "welcome_3"),
        ],
        "exit": [{"event": "Order Completed"}],
        "reentry": {"allowed": False},
    }


def browse_abandonment(endpoint: str, slot: str | None, wait: str | None) -> dict[str, Any]:
    """Viewed products, added nothing and bought nothing for a while: one nudge."""
    return {
        "name": "Browse abandonment",
        "trigger": {"event": "Product Viewed"},
        "steps": [{"id": "wait", "wait": wait or "4h"}, _send(endpoint, slot, "reminder")],
        "exit": [{"event": "Product Added"}, {"event": "Order Completed"}],
        "reentry": {"allowed": True, "after": "7d"},
        "caps": {"per_journey": 1, "per_journey_within": "7d"},
    }


def cart_abandonment(endpoint: str, slot: str | None, wait: str | None) -> dict[str, Any]:
    """Added to the cart and did not buy within the wait: exactly one reminder."""
    return {
        "name": "Cart abandonment",
        "trigger": {"event": "Product Added"},
        "steps": [{"id": "wait", "wait": wait or "1h"}, _send(endpoint, slot, "reminder")],
        "exit": [{"event": "Order Completed"}],
        "reentry": {"allowed": True, "after": "7d"},
    }


def replenishment(endpoint: str, slot: str | None, wait: str | None) -> dict[str, Any]:
    """After an order, wait the typical repurchase interval of what was bought, then remind."""
    return {
        "name": "Replenishment",
        "trigger": {"event": "Order Completed"},
        "steps": [
            {"id": "wait", "wait": wait or "repurchase"},
            _send(endpoint, slot, "reminder"),
        ],
        "reentry": {"allowed": True},
        "conversion_event": "Order Completed",
    }


def win_back(endpoint: str, slot: str | None, wait: str | None) -> dict[str, Any]:
    """A customer gone quiet long enough to be churned (lifecycle ``churned``: 90 days by
    default) gets a win-back message, and a second one two weeks later if still away."""
    return {
        "name": "Win-back",
        "trigger": {"inactive_for": wait or "90d"},
        "entry": {"profile.purchases": {"$gte": 1}},
        "steps": [
            _send(endpoint, slot, "win_back_1"),
            {"id": "wait", "wait_until": {"event": "Order Completed", "at_most": "14d"}},
            {
                "id": "came_back",
                "branch": {"if": {"profile.days_since_last_seen": {"$lt": 14}}, "then": "end"},
            },
            _send(endpoint, slot, "win_back_2"),
        ],
        "exit": [{"event": "Order Completed"}],
        "reentry": {"allowed": True, "after": "90d"},
    }


def post_purchase_cross_sell(endpoint: str, slot: str | None, wait: str | None) -> dict[str, Any]:
    """A few days after an order, what goes with it (give ``slot`` a complements slot)."""
    return {
        "name": "Post-purchase cross-sell",
        "trigger": {"event": "Order Completed"},
        "steps": [{"id": "wait", "wait": wait or "3d"}, _send(endpoint, slot, "cross_sell")],
        "reentry": {"allowed": True, "after": "14d"},
    }


TEMPLATES: dict[str, Callable[[str, str | None, str | None], dict[str, Any]]] = {
    "welcome": welcome,
    "browse_abandonment": browse_abandonment,
    "cart_abandonment": cart_abandonment,
    "replenishment": replenishment,
    "win_back": win_back,
    "post_purchase_cross_sell": post_purchase_cross_sell,
}


def expand(entry: Any, where: str) -> Any:
    """A ``journeys:`` entry with ``template`` becomes the template's journey with the entry's
    own fields on top; entries without one pass through unchanged."""
    if not isinstance(entry, dict) or entry.get("template") is None:
        return entry
    name = entry["template"]
    build = TEMPLATES.get(name) if isinstance(name, str) else None
    if build is None:
        raise ConfigError(
            f"Unknown journey template {name!r}. Templates: {', '.join(TEMPLATES)}.",
            field=f"{where}.template",
        )
    endpoint = entry.get("endpoint")
    if not isinstance(endpoint, str) or not endpoint:
        raise ConfigError(
            f"Template {name!r} sends webhooks: give endpoint, the key of a webhooks endpoint.",
            field=f"{where}.endpoint",
        )
    slot, wait = entry.get("slot"), entry.get("wait")
    document = build(endpoint, slot if isinstance(slot, str) else None, wait)
    own = {k: v for k, v in entry.items() if k not in PARAMETERS}
    return {**document, **own}
