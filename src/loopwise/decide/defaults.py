"""A workspace's default content per slot, decided without a person: what a page shows when it
does not ask Loopwise (a crawler on the sample store) or cannot reach it (a client's fallback).

Block slots show their ``default_variant`` (else their first variant); list slots show their
``fallback_items`` that exist and are in stock, up to ``n``. Pure: reads the workspace document
and an item lookup.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from loopwise.catalog.items import Item
from loopwise.decide.request import DecidedItem, DecidedVariant, Reason, SlotDecision

DEFAULT_REASON = Reason(kind="fallback", text="Default content: shown to every visitor")


def default_slot(slot: Mapping[str, Any], get_item: Callable[[str], Item | None]) -> SlotDecision:
    """The default of one slot (a workspace ``slots[]`` entry)."""
    key = str(slot.get("key", ""))
    if slot.get("kind") == "block":
        variants = [v for v in slot.get("variants") or [] if isinstance(v, Mapping)]
        wanted = slot.get("default_variant")
        chosen = next(
            (v for v in variants if v.get("id") == wanted), variants[0] if variants else None
        )
        variant = (
            DecidedVariant(id=str(chosen["id"]), content=dict(chosen.get("content") or {}))
            if chosen is not None
            else None
        )
        return SlotDecision(slot=key, kind="block", variant=variant, reasons=[DEFAULT_REASON])
    items: list[DecidedItem] = []
    for item_id in slot.get("fallback_items") or []:
        item = get_item(str(item_id))
        if item is None or not item.in_stock:
            continue
        items.append(
            DecidedItem(id=item.id, title=item.title, url=item.url, image=item.image, score=0.0,
                        propensity=1.0, attributes={"price": item.price})
        )  # fmt: skip
        if len(items) >= int(slot.get("n") or 4):
            break
    return SlotDecision(slot=key, kind="list", items=items, fallback=True, reasons=[DEFAULT_REASON])


def default_slots(
    workspace: Mapping[str, Any], keys: Sequence[str], get_item: Callable[[str], Item | None]
) -> list[SlotDecision]:
    """The defaults of the requested slots that the workspace defines, in request order."""
    slots = {s.get("key"): s for s in workspace.get("slots") or [] if isinstance(s, Mapping)}
    return [default_slot(slots[key], get_item) for key in keys if key in slots]
