"""The edge bundle: the context-only part of a workspace, for ``loopwise-edge.js`` to decide at a
CDN edge without a round trip (``GET /v1/edge/bundle``).

It holds the segments whose condition reads only ``context.*`` and the block slots every rule of
which is context-only (its ``when`` reads only ``context``/``segments`` and its ``segments`` are
context segments), that set no personalized prices and run no experiment: their variant depends
on the request alone, so the edge picks exactly what the engine would for a visitor it knows
nothing about. Rules are listed in the engine's order (priority, then specificity, then position);
the first active one that matches wins. Other slots are listed in ``personal`` and go to the API.
Pure: a function of the workspace; ``version`` is a hash of the bundle (the ETag).
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from loopwise.config import Workspace
from loopwise.decide.rules import Rule
from loopwise.decide.slots import Slot
from loopwise.segments.conditions import referenced_roots

BUNDLE_FORMAT = 1


def _context_only(condition: Any, allowed: frozenset[str] = frozenset({"context"})) -> bool:
    return referenced_roots(condition) <= allowed


def _edge_rule(rule: Rule, context_segments: set[str]) -> dict[str, Any] | None:
    reads = frozenset({"context", "segments"})
    if rule.pricing or not _context_only(rule.when, reads):
        return None
    if not set(rule.segments) <= context_segments:
        return None
    return {
        "id": rule.id,
        "when": rule.when,
        "segments": rule.segments,
        "variant": rule.then.variant,
        "active_from": rule.active_from.isoformat() if rule.active_from else None,
        "active_to": rule.active_to.isoformat() if rule.active_to else None,
    }


def _edge_slot(slot: Slot, context_segments: set[str]) -> dict[str, Any] | None:
    ordered = sorted(
        enumerate(slot.rules), key=lambda pair: (-pair[1].priority, -pair[1].specificity, pair[0])
    )
    rules = [_edge_rule(rule, context_segments) for _, rule in ordered]
    if any(rule is None for rule in rules):
        return None
    return {
        "default_variant": slot.default_variant_model().id,
        "variants": {variant.id: variant.content for variant in slot.variants},
        "rules": rules,
    }


def build_edge_bundle(workspace: Workspace) -> dict[str, Any]:
    """The bundle document (with its ``version``)."""
    segments = [
        {"key": s.key, "condition": s.condition}
        for s in workspace.all_segments()
        if s.condition and _context_only(s.condition)
    ]
    context_segments = {
        s.key for s in workspace.all_segments() if s.condition and _context_only(s.condition)
    }
    experimented = {e.slot for e in workspace.experiments}
    slots: dict[str, Any] = {}
    personal: list[str] = []
    for slot in workspace.slots:
        edge = (
            _edge_slot(slot, context_segments)
            if slot.kind == "block" and slot.key not in experimented
            else None
        )
        if edge is None:
            personal.append(slot.key)
        else:
            slots[slot.key] = edge
    body = {"format": BUNDLE_FORMAT, "segments": segments, "slots": slots, "personal": personal}
    digest = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
    return {"version": digest, **body}
