"""Exposures of experiments decided at the edge (``POST /v1/edge/exposures``).

``loopwise-edge.js`` assigns context-only experiments locally; a decision whose exposure is never
stored would leave that person out of the results, and only the people the edge served (not the
ones it did not) would be missing: a biased comparison. So the edge posts what it served, and
this service stores the first exposures exactly as a decide would: under the engine's profile id,
only for people who consented to personalization and analytics (a stored choice wins over the one
the edge passes, which wins over the regional default), never for bots, with the global holdout's
own exposure, and the first exposure of a person wins (an arm they saw first stays theirs).
Nothing is stored for an experiment that is not running (a stale bundle); a name the workspace
does not know is a 4xx naming the field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from loopwise.clock import Clock
from loopwise.decide.request import DecideUser
from loopwise.decide.service import DecideService
from loopwise.errors import ValidationFailed
from loopwise.experiments.assignment import in_holdout
from loopwise.experiments.settings import HOLDOUT_ARM, HOLDOUT_KEY, PERSONALIZED_ARM
from loopwise.privacy import consent as privacy_consent
from loopwise.profiles.identity import profile_id_for
from loopwise.projection.fold import pre_exposure_totals
from loopwise.storage.records import Exposure
from loopwise.views import Views
from loopwise.workspace.compiled import CompiledWorkspace

MAX_EDGE_EXPOSURES = 20


class EdgeExposure(BaseModel):
    model_config = ConfigDict(extra="forbid")

    experiment: str = Field(min_length=1, max_length=100)
    arm: str = Field(min_length=1, max_length=100)
    slot: str = Field(min_length=1, max_length=100)


class EdgeExposuresRequest(BaseModel):
    """Body of POST /v1/edge/exposures: what ``decideAtEdge`` served one visitor."""

    model_config = ConfigDict(extra="forbid")

    user: DecideUser
    context: dict[str, Any] = Field(
        default_factory=dict,
        description="The context namespace the edge decided with (country, device.type, ...).",
    )
    consent: dict[str, bool] | None = Field(
        default=None, description="The visitor's explicit choices the edge decided with."
    )
    exposures: list[EdgeExposure] = Field(default_factory=list, max_length=MAX_EDGE_EXPOSURES)


class EdgeExposureService:
    def __init__(
        self,
        decide: DecideService,
        views: Views,
        compiled: Callable[[], CompiledWorkspace],
        clock: Clock,
    ) -> None:
        self._decide = decide
        self._views = views
        self._compiled = compiled
        self._clock = clock

    def record(self, request: EdgeExposuresRequest) -> dict[str, Any]:
        """Validate, then store the first exposures (durable when it returns)."""
        compiled = self._compiled()
        for index, item in enumerate(request.exposures):
            experiment = compiled.workspace.experiment(item.experiment)
            if experiment is None:
                raise ValidationFailed(
                    f"Unknown experiment {item.experiment!r}; reload the edge bundle.",
                    field=f"exposures[{index}].experiment",
                )
            if experiment.slot != item.slot or experiment.arm(item.arm) is None:
                raise ValidationFailed(
                    f"Experiment {item.experiment!r} runs on slot {experiment.slot!r} with arms "
                    f"{[a.key for a in experiment.arms]}; send one of them.",
                    field=f"exposures[{index}].arm",
                )
        now = self._clock()
        user = request.user
        pid = self._views.identities.resolve_user(user.user_id, user.anonymous_id)
        profile = self._views.profiles.get(pid) if pid else None
        pid = pid or profile_id_for(user.user_id or user.anonymous_id or "")
        reason = self._ineligible(request, compiled)
        if reason is not None:
            refused = [{"experiment": e.experiment, "reason": reason} for e in request.exposures]
            return {"profile_id": pid, "recorded": [], "kept": [], "skipped": refused}
        exposures = self._views.exposures.of(pid)
        attributes = compiled.profile_attributes(profile, now) if profile is not None else {}
        segments = compiled.registry.evaluate({"profile": attributes, "context": request.context})
        served: list[tuple[str, str, str | None]] = []
        skipped: list[dict[str, str]] = []
        held_out = False
        if compiled.workspace.holdout.enabled:
            known = exposures.get(HOLDOUT_KEY)
            inside = in_holdout(compiled.workspace.holdout.spec, pid)
            arm = known.arm if known else (HOLDOUT_ARM if inside else PERSONALIZED_ARM)
            held_out = arm == HOLDOUT_ARM
            served.append((HOLDOUT_KEY, arm, None))
        for item in request.exposures:
            experiment = compiled.workspace.experiment(item.experiment)
            assert experiment is not None  # validated above
            if held_out:
                skipped.append({"experiment": item.experiment, "reason": "in the holdout"})
            elif not experiment.spec.running(now):
                skipped.append({"experiment": item.experiment, "reason": "not running"})
            else:
                served.append((item.experiment, item.arm, item.slot))
        records = []
        for key, arm, slot in served:
            if key in exposures:
                continue  # the first exposure stays
            experiment = compiled.experiment(key)
            metrics = experiment.metrics if experiment is not None else []
            names = [m.event for m in metrics if m.event]
            revenue = [m.event for m in metrics if m.event and m.kind == "revenue"]
            records.append(
                Exposure(
                    experiment=key,
                    profile_id=pid,
                    arm=arm,
                    exposed_at=now,
                    slot=slot,
                    segments=tuple(segments),
                    before=pre_exposure_totals(profile, names, revenue),
                )
            )
        stored = self._decide.store_exposures(records)
        kept = {e.experiment: e.arm for e in exposures.values()}
        return {
            "profile_id": pid,
            "recorded": [{"experiment": e.experiment, "arm": e.arm} for e in stored],
            "kept": [{"experiment": k, "arm": v} for k, v in kept.items()],
            "skipped": skipped,
        }

    def _ineligible(self, request: EdgeExposuresRequest, compiled: CompiledWorkspace) -> str | None:
        """Why the person takes part in no experiment, as decide would say, or None."""
        device = request.context.get("device")
        if isinstance(device, dict) and device.get("type") == "bot":
            return "a bot"
        user = request.user
        state = self._decide.consent_state(user.user_id, user.anonymous_id)
        country = request.context.get("country")
        country = country if isinstance(country, str) else None
        privacy = compiled.workspace.privacy
        for category in ("personalization", "analytics"):
            choice = state.choices.get(category)
            given = (request.consent or {}).get(category)
            if choice is not None:
                ok = choice.granted
            elif given is not None:
                ok = given
            else:
                ok = privacy_consent.granted(state, category, country, privacy)
            if not ok:
                return f"no {category} consent"
        return None
