"""The edge bundle: the context-only part of a workspace, for ``loopwise-edge.js`` to decide at a
CDN edge without a round trip (``GET /v1/edge/bundle``).

It holds the segments whose condition reads only ``context.*`` and the block slots every rule of
which is context-only (its ``when`` reads only ``context``/``segments`` and its ``segments`` are
context segments) and that set no personalized prices: their variant depends on the request alone,
so the edge picks exactly what the engine would for a visitor it knows nothing about. Rules are
listed in the engine's order (priority, then specificity, then position); the first active one
that matches wins. Other slots are listed in ``personal`` and go to the API.

Experiments on such slots travel too when they are context-only (variant arms, targeting on
``context``/``segments``, no QA ``force`` map): their GrowthBook hashing (seed, version, the arms'
bucket ranges, namespace), the global holdout and the consent defaults per country, so the edge
assigns the arm the engine would (hashing the profile id of the anonymous id). The edge posts what
it served to ``POST /v1/edge/exposures``, where the engine stores the exposures: a decision without
its exposure would bias the results.
Pure: a function of the workspace; ``version`` is a hash of the bundle (the ETag).
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from loopwise.config import Workspace
from loopwise.decide.rules import Rule
from loopwise.decide.slots import Slot
from loopwise.experiments.settings import ExperimentConfig
from loopwise.privacy.consent import EU_REGION_COUNTRIES, regional_defaults
from loopwise.privacy.settings import PrivacySettings
from loopwise.segments.conditions import referenced_roots

BUNDLE_FORMAT = 2
EDGE_CONSENT = ("analytics", "personalization")  # what taking part in an experiment needs


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
    if slot.strategy == "bandit":
        return None  # a bandit draws and learns in the engine: the slot goes to the API
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


def _edge_experiment(experiment: ExperimentConfig, slot: Slot) -> dict[str, Any] | None:
    """The experiment's hashing, or None when the edge cannot assign it as the engine does."""
    if experiment.force or not _context_only(experiment.targeting, frozenset({"context"})):
        return None
    variants = {variant.id for variant in slot.variants}
    if any(arm.variant is None or arm.variant not in variants for arm in experiment.arms):
        return None
    spec = experiment.spec
    return {
        "key": experiment.key,
        "seed": spec.hash_seed,
        "hash_version": spec.hash_version,
        "ranges": [list(r) for r in spec.ranges],
        "namespace": list(spec.namespace) if spec.namespace is not None else None,
        "condition": experiment.targeting,
        "arms": [{"key": arm.key, "variant": arm.variant} for arm in experiment.arms],
        "start": spec.start.isoformat() if spec.start else None,
        "end": spec.end.isoformat() if spec.end else None,
    }


def _consent_defaults(privacy: PrivacySettings) -> dict[str, Any]:
    """The regional defaults of the categories an experiment needs, per country that differs
    from the default (an explicit choice, passed by the caller, beats them)."""
    default = {k: v for k, v in regional_defaults(None, privacy).items() if k in EDGE_CONSENT}
    countries: dict[str, dict[str, bool]] = {}
    for code in sorted(EU_REGION_COUNTRIES | set(privacy.defaults.regions) - {"EU"}):
        values = {k: v for k, v in regional_defaults(code, privacy).items() if k in EDGE_CONSENT}
        if values != default:
            countries[code] = values
    return {"default": default, "countries": countries}


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
    running: dict[str, list[ExperimentConfig]] = {}
    for experiment in workspace.experiments:
        if experiment.status == "running" or experiment.force:
            running.setdefault(experiment.slot, []).append(experiment)
    slots: dict[str, Any] = {}
    experiments: dict[str, list[dict[str, Any]]] = {}
    personal: list[str] = []
    for slot in workspace.slots:
        edge = _edge_slot(slot, context_segments) if slot.kind == "block" else None
        hashing = [_edge_experiment(e, slot) for e in running.get(slot.key, [])]
        if edge is None or any(h is None for h in hashing):
            personal.append(slot.key)
            continue
        slots[slot.key] = edge
        if hashing:
            experiments[slot.key] = [h for h in hashing if h is not None]
    holdout = workspace.holdout
    body = {
        "format": BUNDLE_FORMAT,
        "segments": segments,
        "slots": slots,
        "personal": personal,
        "experiments": experiments,
        "holdout": (
            {"percent": holdout.spec.percent, "seed": holdout.spec.seed or holdout.spec.key}
            if holdout.enabled
            else None
        ),
        "consent": _consent_defaults(workspace.privacy),
    }
    digest = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
    return {"version": digest, **body}
