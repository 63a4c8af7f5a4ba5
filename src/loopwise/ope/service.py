"""Off-policy evaluation of a candidate policy for a block slot from the decision log.

One request shape for ``loopwise ope`` and ``POST /v1/admin/ope``::

    {"policy": "uniform" | "variant:b" | "logged" | "bandit" | {"variants": {...}, ...},
     "slot": "hero", "from": "2026-01-01T00:00:00Z", "to": null, "reward": "click",
     "bootstrap": 1000, "seed": 12345}

The reply: the estimates (``ipw``, ``snipw``, ``dr``, each with ``value`` and ``interval``), the
logs' own reward rate, the effective sample size, and what was read. A candidate with zero
support is refused (:class:`~loopwise.ope.evaluate.NotEstimable`, a 422).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from loopwise.bandits.service import BanditService
from loopwise.bandits.settings import BANDIT, BanditSettings
from loopwise.decide.slots import Slot
from loopwise.errors import NotFound, ValidationFailed
from loopwise.ope import policies
from loopwise.ope.evaluate import NotEstimable, evaluate
from loopwise.ope.logs import block_slots, read_decisions
from loopwise.storage.stores import Storage
from loopwise.workspace.compiled import CompiledWorkspace


class OpeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    policy: str | dict[str, Any] = Field(
        description="A named policy (uniform, logged, bandit, variant:<id>) or a policy "
        "document {variants: {id: p}, segments: {segment: {id: p}}}."
    )
    slot: str | None = Field(
        default=None, description="The block slot (needed when several were decided)."
    )
    start: datetime | None = Field(default=None, alias="from", description="Decisions from.")
    end: datetime | None = Field(default=None, alias="to", description="Decisions before.")
    reward: Literal["click", "conversion"] = Field(default="click")
    bootstrap: int = Field(default=1000, ge=100, le=20_000, description="Bootstrap resamples.")
    seed: int = Field(default=12345, ge=0, description="Seed of the bootstrap.")

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # times without a zone are UTC
        return value


def parse_request(document: Any) -> OpeRequest:
    try:
        return OpeRequest.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or None
        raise ValidationFailed(f"{first['msg']}", field=where) from None


class OpeService:
    def __init__(
        self,
        storage: Storage,
        compiled: Callable[[], CompiledWorkspace],
        bandits: BanditService | None = None,
    ) -> None:
        self._storage = storage
        self._compiled = compiled
        self._bandits = bandits

    def run(self, request: OpeRequest) -> dict[str, Any]:
        if request.start and request.end and request.end <= request.start:
            raise ValidationFailed("'to' must be after 'from'", field="to")
        slot = self._slot(request)
        variants = [v.id for v in slot.variants]
        decisions = self._storage.decisions.iter(request.start)
        data = read_decisions(
            decisions, slot.key, variants, reward=request.reward, start=request.start,
            end=request.end,
        )  # fmt: skip
        if data.n_rounds == 0:
            raise NotEstimable(
                f"No logged decisions of slot {slot.key!r} in that period: nothing to estimate "
                "from. Widen from/to, or let the slot serve first.",
                field="slot",
            )
        candidate = self._candidate(request, slot, list(data.action_names))
        pi_full = candidate(data)
        report = evaluate(data, pi_full, n_bootstrap=request.bootstrap, seed=request.seed)
        name = request.policy if isinstance(request.policy, str) else "document"
        return {
            "format": "loopwise",
            "slot": slot.key,
            "policy": name,
            "reward": request.reward,
            "from": request.start.isoformat() if request.start else None,
            "to": request.end.isoformat() if request.end else None,
            **report,
        }

    def _slot(self, request: OpeRequest) -> Slot:
        slots = self._compiled().slots
        key = request.slot
        if key is None and isinstance(request.policy, Mapping) and request.policy.get("slot"):
            key = str(request.policy["slot"])
        if key is None:
            logged = block_slots(self._storage.decisions.iter(request.start))
            choices = sorted(k for k in logged if k in slots)
            if len(choices) != 1:
                raise ValidationFailed(
                    "Name the block slot to evaluate (--slot / slot): "
                    + (f"the log has {', '.join(choices)}." if choices else "none was decided."),
                    field="slot",
                )
            key = choices[0]
        slot = slots.get(key)
        if slot is None:
            raise NotFound(
                f"Unknown slot {key!r}. Slots: {', '.join(sorted(slots)) or 'none'}.",
                field="slot",
            )
        if slot.kind != "block":
            raise ValidationFailed(
                f"Slot {key!r} is a list slot; off-policy evaluation covers block slots (their "
                "variants).",
                field="slot",
            )
        if isinstance(request.policy, Mapping):
            named_slot = request.policy.get("slot")
            if named_slot is not None and named_slot != slot.key:
                raise ValidationFailed(
                    f"the policy is for slot {named_slot!r}, not {slot.key!r}", field="policy.slot"
                )
        return slot

    def _candidate(
        self, request: OpeRequest, slot: Slot, variants: list[str]
    ) -> policies.Candidate:
        if isinstance(request.policy, Mapping):
            return policies.from_document(request.policy, variants)
        return policies.named(request.policy, variants, bandit=self._live_bandit(slot))

    def _live_bandit(self, slot: Slot) -> policies.BanditProbabilities | None:
        """The slot's bandit as it stands (if it has one, or one serves an experiment arm)."""
        service = self._bandits
        if service is None or (slot.strategy != BANDIT and not self._experiment_bandit(slot.key)):
            return None
        settings = slot.bandit or BanditSettings()
        arms = [v.id for v in slot.variants]
        weights = [v.weight for v in slot.variants]

        def probabilities(context: Mapping[str, Any]) -> Mapping[str, float]:
            trace = context.get("bandit")
            x = trace.get("x") if isinstance(trace, Mapping) else None
            segments = context.get("segments") or ()
            return service.probabilities_for(slot.key, settings, arms, weights, segments, x)

        return probabilities

    def _experiment_bandit(self, slot: str) -> bool:
        return any(
            arm.strategy == BANDIT
            for experiment in self._compiled().experiments.get(slot, ())
            for arm in experiment.arms
        )
