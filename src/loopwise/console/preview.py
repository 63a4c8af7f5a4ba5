""" "Preview as": the whole page's decision for a chosen profile or a built context, with its
reasons, on the live workspace or on a draft of it (an unsaved change).

The same decider the engine serves with, over the live catalog and item statistics, but nothing
is logged and no experiment arm is assigned (a preview must not expose anyone); a draft is
validated whole first, exactly as saving it would be.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from loopwise.composition import Services
from loopwise.config import parse_workspace
from loopwise.decide.decider import Decider
from loopwise.decide.explain import not_consented
from loopwise.decide.request import SlotDecision, SlotRequest
from loopwise.errors import NotFound
from loopwise.workspace.compiled import CompiledWorkspace


@dataclass(frozen=True, slots=True)
class Audience:
    """Who the preview is for: a stored profile (any of its ids), and/or a context."""

    identifier: str = ""
    country: str = ""
    device: str = ""
    source: str = ""
    segments: tuple[str, ...] = ()
    personalization: bool = True

    def context(self) -> dict[str, Any]:
        context: dict[str, Any] = {}
        if self.country:
            context["country"] = self.country.upper()
        if self.device:
            context["device"] = {"type": self.device}
        if self.source:
            context["traffic_source"] = self.source
        return context


@dataclass(frozen=True, slots=True)
class PagePreview:
    slots: list[SlotDecision]
    segments: list[str]
    profile_found: bool


def compile_draft(services: Services, document: dict[str, Any]) -> CompiledWorkspace:
    """A whole workspace document compiled as the engine would (ConfigError when invalid)."""
    live = services.workspace.compiled
    return CompiledWorkspace(parse_workspace(document), live.strategies, live.clusters, live.scores)


def preview_page(
    services: Services, compiled: CompiledWorkspace, audience: Audience, slots: list[str]
) -> PagePreview:
    now = services.clock()
    attributes: dict[str, Any] = {}
    found = False
    if audience.identifier:
        profile = services.profiles.profile(audience.identifier)
        if profile is None:
            raise NotFound(
                f'No profile for "{audience.identifier}"; use a user id, anonymous id or profile '
                "id that sent events, or leave it empty and build a context.",
                field="identifier",
            )
        attributes, found = compiled.profile_attributes(profile, now), True
    context = audience.context()
    impersonal = None
    if not audience.personalization:
        attributes, impersonal = {}, not_consented()
    evaluated = compiled.registry.evaluate({"profile": attributes, "context": context})
    segments = sorted(set(evaluated) | set(audience.segments))
    decider = Decider(
        compiled.slots,
        services.strategies,
        services.catalog.items,
        services.views.item_stats.stats,
        saved_groups=compiled.workspace.saved_groups,
    )
    decided = decider.decide_slots(
        [SlotRequest(slot=key) for key in slots if key in compiled.slots],
        profile=attributes,
        context=context,
        segments=segments,
        segment_names=compiled.segment_names,
        now=now,
        rng=random.Random(0),
        impersonal=impersonal,
        pricing=audience.personalization,
    )
    return PagePreview(decided, segments, found)
