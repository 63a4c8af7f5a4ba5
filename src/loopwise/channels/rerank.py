"""Search results in personal order: ``POST /v1/rerank``.

The caller's search engine finds the candidates and scores them; Loopwise reorders them for the
person. Each known candidate's score is a blend of three signals, each normalised to 0-1 over the
request's candidates (divided by the highest; scores that can be negative min-max; all equal
counts 1 for search and 0 for the others):

- ``search``: the caller's score;
- ``affinity``: the person's decayed interest in the item itself, its categories (the strongest)
  and its tags (the strongest, at half weight), from ``profile.affinity``;
- ``model``: the trained model's score for the person (``channels.rerank.model``, ``hybrid`` by
  default), from the same fold-in the model strategy serves; nothing until it is trained or when
  the model knows none of the person's items,

weighted by ``channels.rerank.weights``. Candidates the catalog does not know keep their place;
known ones fill the other places in blended order (ties keep the search order). Without consent
to personalization, for the global holdout and for a person Loopwise has no profile of, the
search order is returned as it came, saying why. Every rerank is logged as a decision (slot
``search``) behind the reply, so a click sent back with its ``decision_id`` attributes to it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from loopwise.catalog.items import Item
from loopwise.channels.settings import RerankSettings
from loopwise.clock import Clock, isoformat
from loopwise.decide import explain
from loopwise.decide.ids import new_decision_id
from loopwise.decide.request import DecideUser, Reason
from loopwise.decide.service import DecideService
from loopwise.decide.strategies import StrategyRegistry, profile_value
from loopwise.errors import ValidationFailed
from loopwise.events.limits import MAX_ID_CHARS
from loopwise.experiments.assignment import in_holdout
from loopwise.experiments.settings import HOLDOUT_ARM, HOLDOUT_KEY
from loopwise.privacy import consent as privacy_consent
from loopwise.profiles.context import request_context_attributes
from loopwise.profiles.identity import profile_id_for
from loopwise.storage.records import JsonDict
from loopwise.views import Views
from loopwise.workspace.compiled import CompiledWorkspace

MAX_CANDIDATES = 5000  # the schema's bound; the workspace's max_candidates is the live one
SEARCH_SLOT = "search"
TAG_WEIGHT = 0.5
UNKNOWN_ITEM = "not in the catalog: kept in its place"
SEARCH_RELEVANCE = "search relevance"


class Candidate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=MAX_ID_CHARS, description="The item id.")
    score: float = Field(description="The search engine's score (higher is better).")

    @field_validator("score")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("the score must be a finite number")
        return value


class RerankRequest(BaseModel):
    """Body of ``POST /v1/rerank``."""

    model_config = ConfigDict(extra="forbid")

    user: DecideUser = Field(description="Who searched.")
    candidates: list[Candidate] = Field(
        min_length=1,
        max_length=MAX_CANDIDATES,
        description="The search results in the search engine's order, with its scores.",
    )
    context: dict[str, Any] = Field(
        default_factory=dict, description="Segment-style context of the search (page, ...)."
    )

    @field_validator("candidates")
    @classmethod
    def _unique(cls, candidates: list[Candidate]) -> list[Candidate]:
        from loopwise.validation import invalid_at

        first: dict[str, int] = {}
        for index, candidate in enumerate(candidates):
            if candidate.id in first:
                raise invalid_at(
                    "RerankRequest",
                    (index, "id"),
                    f"item {candidate.id!r} is already at candidates[{first[candidate.id]}]; "
                    "send each candidate once",
                    candidate.id,
                )
            first[candidate.id] = index
        return candidates


class RerankedItem(BaseModel):
    id: str
    known: bool = Field(description="In the catalog; unknown ids keep their place.")
    search_position: int = Field(description="Where the search engine put it (0-based).")
    search_score: float
    score: float | None = Field(
        default=None, description="The blended score (known items only; 0-1 scale)."
    )
    signals: dict[str, float] | None = Field(
        default=None, description="Each signal, normalised 0-1: search, affinity, model."
    )
    reasons: list[str] = Field(default_factory=list)


class RerankResponse(BaseModel):
    decision_id: str = Field(description="Send it back with click events on the results.")
    profile_id: str
    personalized: bool = Field(description="False when the search order came back as it was.")
    ai_influenced: bool
    items: list[RerankedItem]
    reasons: list[Reason]


def unchanged(
    decision_id: str,
    pid: str,
    candidates: Sequence[Candidate],
    known: set[str],
    reasons: list[Reason],
) -> JsonDict:
    """The reply that keeps the search order (no consent, holdout, nobody known)."""
    items: list[JsonDict] = [
        {
            "id": c.id,
            "known": c.id in known,
            "search_position": i,
            "search_score": c.score,
            "score": None,
            "signals": None,
            "reasons": [],
        }
        for i, c in enumerate(candidates)
    ]
    return {
        "decision_id": decision_id,
        "profile_id": pid,
        "personalized": False,
        "ai_influenced": False,
        "items": items,
        "reasons": _reasons(reasons),
    }


def _reasons(reasons: list[Reason]) -> list[JsonDict]:
    return [r.model_dump(mode="json") for r in reasons]


@dataclass(frozen=True, slots=True)
class _Signals:
    search: np.ndarray
    affinity: np.ndarray
    model: np.ndarray
    affinity_why: list[str]
    model_text: str | None


class RerankService:
    def __init__(
        self,
        views: Views,
        decide: DecideService,
        compiled: Callable[[], CompiledWorkspace],
        catalog: Callable[[], Mapping[str, Item]],
        strategies: StrategyRegistry,
        clock: Clock,
    ) -> None:
        self._views = views
        self._decide = decide
        self._compiled = compiled
        self._catalog = catalog
        self._strategies = strategies
        self._clock = clock

    def rerank(self, request: RerankRequest, headers: Mapping[str, str] | None = None) -> JsonDict:
        """The reply (the shape of :class:`RerankResponse`, as plain JSON: a hundred items
        validated one by one would cost more than the ranking)."""
        compiled = self._compiled()
        workspace = compiled.workspace
        settings = workspace.channels.rerank
        if len(request.candidates) > settings.max_candidates:
            raise ValidationFailed(
                f"{len(request.candidates)} candidates is more than this workspace's "
                f"channels.rerank.max_candidates ({settings.max_candidates}); send the top ones.",
                field="candidates",
                limit=settings.max_candidates,
            )
        now = self._clock()
        catalog = self._catalog()
        user = request.user
        pid = self._views.identities.resolve_user(user.user_id, user.anonymous_id)
        profile = self._views.profiles.get(pid) if pid else None
        if pid is None:
            pid = profile_id_for(user.user_id or user.anonymous_id or "")
        context = request_context_attributes(request.context, workspace.profiles, now, headers)
        state = self._decide.consent_state(user.user_id, user.anonymous_id)
        country = context.get("country") or (profile.country if profile is not None else None)
        privacy = workspace.privacy
        personal = privacy_consent.granted(state, "personalization", country, privacy)
        identified = privacy_consent.granted(state, "analytics", country, privacy)
        bot = (context.get("device") or {}).get("type") == "bot"
        decision_id = new_decision_id()
        known = {c.id for c in request.candidates if c.id in catalog}
        candidates = request.candidates

        reasons: list[Reason] = []
        if not personal:
            reasons.append(explain.not_consented())
        elif (
            identified
            and not bot
            and workspace.holdout.enabled
            and self._holdout_arm(compiled, pid) == HOLDOUT_ARM
        ):
            reasons.append(explain.in_holdout(HOLDOUT_KEY))
        elif profile is None:
            reasons.append(
                Reason(kind="cold_start", text="nothing known about you yet: the search order")
            )
        if reasons:
            response = unchanged(decision_id, pid, candidates, known, reasons)
        else:
            attributes = compiled.profile_attributes(profile, now) if profile else {}
            response = self._personal(
                decision_id, pid, candidates, known, catalog, attributes, settings
            )
        self._log(response, now, identified=identified)
        return response

    def _holdout_arm(self, compiled: CompiledWorkspace, pid: str) -> str:
        """The person's side of the global holdout: their first exposure's arm, else the hash
        (as ``/v1/decide`` decides it)."""
        known = self._views.exposures.of(pid).get(HOLDOUT_KEY)
        if known is not None:
            return known.arm
        return HOLDOUT_ARM if in_holdout(compiled.workspace.holdout.spec, pid) else "personalized"

    def _personal(
        self,
        decision_id: str,
        pid: str,
        candidates: Sequence[Candidate],
        known: set[str],
        catalog: Mapping[str, Item],
        profile: Mapping[str, Any],
        settings: RerankSettings,
    ) -> JsonDict:
        places = [i for i, c in enumerate(candidates) if c.id in known]
        ids = [candidates[i].id for i in places]
        signals = self._signals(
            ids, [candidates[i].score for i in places], catalog, profile, settings.model
        )
        w = settings.weights
        blended = (
            w.search * signals.search + w.affinity * signals.affinity + w.model * signals.model
        )
        blended = blended / (w.search + w.affinity + w.model)
        # highest blend first; ties keep the search order (a stable sort)
        order = [int(k) for k in np.argsort(-blended, kind="stable")]
        scores, search = blended.tolist(), signals.search.tolist()
        affinity, model = signals.affinity.tolist(), signals.model.tolist()
        model_text = signals.model_text if w.model > 0 else None
        items: list[JsonDict | None] = [None] * len(candidates)
        for i, candidate in enumerate(candidates):
            if candidate.id not in known:
                items[i] = {
                    "id": candidate.id,
                    "known": False,
                    "search_position": i,
                    "search_score": candidate.score,
                    "score": None,
                    "signals": None,
                    "reasons": [UNKNOWN_ITEM],
                }
        for place, k in zip(places, order, strict=True):
            item_reasons = []
            if affinity[k] > 0 and w.affinity > 0:
                item_reasons.append(signals.affinity_why[k])
            if model[k] > 0 and model_text:
                item_reasons.append(model_text)
            source = places[k]
            items[place] = {
                "id": ids[k],
                "known": True,
                "search_position": source,
                "search_score": candidates[source].score,
                "score": scores[k],
                "signals": {"search": search[k], "affinity": affinity[k], "model": model[k]},
                "reasons": item_reasons or [SEARCH_RELEVANCE],
            }
        moved = any(places[k] != place for place, k in zip(places, order, strict=True))
        uses_model = bool(signals.model.any()) and w.model > 0
        uses_affinity = bool(signals.affinity.any()) and w.affinity > 0
        reasons = [
            Reason(
                kind="strategy",
                text=(
                    f"search results ordered for you: search {w.search:g}, your interests "
                    f"{w.affinity:g}, model {w.model:g}"
                    + ("" if moved else " (the search order already fit)")
                ),
                ref="rerank",
            )
        ]
        if not uses_affinity and not uses_model:
            reasons.append(Reason(kind="cold_start", text="no interests or model scores yet"))
        ai = moved and (uses_affinity or uses_model)
        if ai:
            reasons.append(explain.ai_influenced("rerank", uses_model))
        return {
            "decision_id": decision_id,
            "profile_id": pid,
            "personalized": True,
            "ai_influenced": ai,
            "items": items,
            "reasons": _reasons(reasons),
        }

    def _signals(
        self,
        ids: list[str],
        scores: list[float],
        catalog: Mapping[str, Item],
        profile: Mapping[str, Any],
        model_name: str,
    ) -> _Signals:
        raw_search = np.asarray(scores, dtype=np.float64)
        # scores of 0 and up keep their proportions (9.5 of 10 stays close to the top); scores
        # that can be negative are scaled from the lowest
        search = _minmax(raw_search, equal=1.0, floor_zero=bool(raw_search.min() >= 0))
        items_aff = _table(profile, "affinity.items")
        categories_aff = _table(profile, "affinity.categories")
        tags_aff = _table(profile, "affinity.tags")
        raw: list[float] = []
        why: list[str] = []
        for item_id in ids:
            item = catalog[item_id]
            own = items_aff.get(item_id, 0.0)
            best_category, category = None, 0.0
            for name in item.categories:
                value = categories_aff.get(name, 0.0)
                if value > category:
                    best_category, category = name, value
            tag = 0.0
            if tags_aff:
                for name in item.tags:
                    value = tags_aff.get(name, 0.0)
                    tag = value if value > tag else tag
            raw.append(own + category + TAG_WEIGHT * tag)
            if own >= category and own > 0:
                why.append("you showed interest in this item")
            elif category > 0:
                why.append(f'matches your interest in "{best_category}"')
            else:
                why.append("matches your interests")
        affinity = _minmax(np.asarray(raw, dtype=np.float64), equal=0.0, floor_zero=True)
        model, text = self._model_scores(ids, profile, model_name)
        return _Signals(search, affinity, model, why, text)

    def _model_scores(
        self, ids: list[str], profile: Mapping[str, Any], name: str
    ) -> tuple[np.ndarray, str | None]:
        from loopwise.models.serving import ModelStrategy, user_history

        zeros = np.zeros(len(ids), dtype=np.float64)
        strategy = self._strategies.get(name) if name in self._strategies else None
        if not isinstance(strategy, ModelStrategy) or not profile:
            return zeros, None
        bundle = strategy.bundle
        history = user_history(profile, bundle.event_weights)
        row = bundle.row(history)
        if row.nnz == 0:
            return zeros, None
        scores = bundle.scores(name, row)
        positions = [bundle.index.get(i, -1) for i in ids]
        out = np.asarray(
            [float(scores[p]) if p >= 0 else math.nan for p in positions], dtype=np.float64
        )
        finite = np.isfinite(out)
        if not finite.any():
            return zeros, None
        out[~finite] = np.min(out[finite])
        text = f"the {name} model (version {bundle.version}) ranks it for you"
        return _minmax(out, equal=0.0), text

    def _log(self, response: JsonDict, now: datetime, *, identified: bool) -> None:
        record: JsonDict = {
            "decision_id": response["decision_id"],
            "profile_id": response["profile_id"] if identified else "",
            "created_at": isoformat(now),
            "segments": [],
            "ai_influenced": response["ai_influenced"],
            "channel": "search",
            "slots": [
                {
                    "slot": SEARCH_SLOT,
                    "kind": "list",
                    "variant": None,
                    "items": [
                        {"id": i["id"], "score": i["score"] or 0.0, "propensity": 1.0}
                        for i in response["items"]
                    ],
                    "rule": None,
                    "strategy": "rerank",
                    "fallback": not response["personalized"],
                    "propensity": 1.0,
                    "ai_influenced": response["ai_influenced"],
                    "reasons": response["reasons"],
                }
            ],
        }
        self._decide.log_many([(record, [])])


def _table(profile: Mapping[str, Any], path: str) -> dict[str, float]:
    value = profile_value(profile, path)
    if not isinstance(value, Mapping):
        return {}
    return {
        str(k): float(v)
        for k, v in value.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and v > 0
    }


def _minmax(values: np.ndarray, *, equal: float, floor_zero: bool = False) -> np.ndarray:
    """Values scaled to 0-1 over the request; all equal -> ``equal`` (``floor_zero``: scaled
    from 0, so an item without any signal stays at 0)."""
    if values.size == 0:
        return values
    low = 0.0 if floor_zero else float(values.min())
    high = float(values.max())
    if high - low <= 0:
        return np.full(values.size, equal if high > 0 or not floor_zero else 0.0)
    if floor_zero and float(values.min()) == high:
        return np.full(values.size, equal)
    return np.clip((values - low) / (high - low), 0.0, 1.0)
