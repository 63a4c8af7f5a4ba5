"""The decide service: one page for one person — consent, profile, segments, experiment arms, the
decider — then the decision log and first exposures, written behind the reply.

Reads only views (profiles, identities, consent, exposures, item statistics): no store read on
the hot path for a person seen recently. The decision and exposure writes are queued jobs; their
views learn of them after commit. ``get_decision`` waits for a decision still being written, so a
client asking "why?" right after the reply finds it.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import Any, Protocol, TypeVar

from loopwise.api.public_decide import may_use_profile, unlinked_profile_id
from loopwise.bandits.service import BanditService
from loopwise.catalog.items import Item
from loopwise.clock import Clock, isoformat
from loopwise.decide import explain
from loopwise.decide.decider import Decider, SlotOverride
from loopwise.decide.ids import new_decision_id
from loopwise.decide.prerender import PrerenderCache
from loopwise.decide.request import (
    DecideRequest,
    DecideResponse,
    SlotDecision,
    SlotRequest,
    built,
)
from loopwise.decide.strategies import StrategyRegistry
from loopwise.experiments.assignment import assign, in_holdout
from loopwise.experiments.settings import HOLDOUT_ARM, HOLDOUT_KEY, PERSONALIZED_ARM
from loopwise.privacy import consent as privacy_consent
from loopwise.privacy.settings import PrivacySettings
from loopwise.profiles.context import request_context_attributes
from loopwise.profiles.identity import profile_id_for
from loopwise.profiles.model import Profile
from loopwise.projection.fold import pre_exposure_totals
from loopwise.scores import explain as score_reasons
from loopwise.segments.registry import SegmentRegistry
from loopwise.storage.records import Exposure, JsonDict
from loopwise.storage.stores import Storage, UnitOfWork
from loopwise.views import Views
from loopwise.workspace.compiled import CompiledWorkspace

PENDING_WAIT_SECONDS = 5.0
MAX_REMEMBERED_DEFAULTS = 4096  # (consent category, country) pairs; countries come from requests

T = TypeVar("T")


class ClaimedWrites(Protocol):
    """Write jobs that first claim the projection partitions of the people they touch (several
    workers on PostgreSQL, :mod:`loopwise.distributed.claims`): a first exposure is then stored
    while no other worker folds, merges or erases that person."""

    def submit(
        self,
        identifiers: Sequence[str],
        profile_ids: Sequence[str],
        job: Callable[[UnitOfWork], T],
    ) -> Future[T]: ...


class SeededOnUse(random.Random):
    """``random.Random(seed)``, seeded on its first draw: the same numbers, and a decision that
    draws none (a slot without exploration, most of them) does not pay for seeding a Mersenne
    Twister (a few microseconds, more than the rest of the rng's part in a decision)."""

    def __init__(self, seed: int) -> None:
        self._unseeded: int | None = seed
        self.gauss_next = None

    def _seed_now(self) -> None:
        seed = self._unseeded
        if seed is not None:
            self._unseeded = None
            super().seed(seed)

    def random(self) -> float:
        self._seed_now()
        return super().random()

    def getrandbits(self, k: int, /) -> int:
        self._seed_now()
        return super().getrandbits(k)

    def seed(self, a: Any = None, version: int = 2) -> None:
        self._unseeded = None
        super().seed(a, version)

    def getstate(self) -> tuple[Any, ...]:
        self._seed_now()
        return super().getstate()

    def setstate(self, state: tuple[Any, ...]) -> None:
        self._unseeded = None
        super().setstate(state)


@dataclass(frozen=True, slots=True)
class _Logged:
    """A decision waiting for its write: the log record, its first exposures, and the request's
    identifiers (user id, anonymous id) when its profile id was resolved from them."""

    record: JsonDict
    exposures: list[Exposure]
    identifiers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Prepared:
    """What a caller deciding for many people already knows about one of them (a campaign):
    their profile id and profile, their consent, the ``context.*`` the audience shares and,
    when it evaluated them already (a segment audience), their ``profile.*`` attributes now."""

    pid: str
    profile: Profile | None
    consent: privacy_consent.ConsentState
    context: Mapping[str, Any]
    attributes: Mapping[str, Any] | None = None  # profile.* now, when already evaluated
    # the segment registry and its evaluator for ``context`` (SegmentRegistry.evaluator),
    # used while the workspace still has that registry
    segments: tuple[SegmentRegistry, Callable[[Mapping[str, Any]], list[str]]] | None = None


@dataclass(frozen=True, slots=True)
class CampaignDecision:
    """One person's decision in a campaign (:meth:`DecideService.decide_campaign`): its log
    record and first exposures, for :meth:`DecideService.log_many`, and each requested slot as
    the reply's JSON shows it."""

    decision_id: str
    profile_id: str
    record: JsonDict
    exposures: list[Exposure]
    slots: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class _Decided:
    """A decision before it is logged: the reply, when it was made, whether it may be logged
    under the person (analytics consent), its first exposures and the identifiers its profile
    id was resolved from."""

    response: DecideResponse
    now: datetime
    identified: bool
    exposures: list[Exposure]
    resolved_from: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Served:
    """An experiment arm served in one slot of a decision; ``new`` when it is a first exposure."""

    experiment: str
    arm: str
    new: bool


class DecideService:
    def __init__(
        self,
        storage: Storage,
        views: Views,
        compiled: Callable[[], CompiledWorkspace],
        catalog: Callable[[], Mapping[str, Item]],
        strategies: StrategyRegistry,
        clock: Clock,
        *,
        seed: int | None = None,
        bandits: BanditService | None = None,
    ) -> None:
        self._storage = storage
        self._bandits = bandits
        self._views = views
        self._compiled = compiled
        self._catalog = catalog
        self._strategies = strategies
        self._clock = clock
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        # (category, country) -> (privacy settings, granted by default), see granted()
        self._defaults: dict[tuple[str, str | None], tuple[PrivacySettings, bool]] = {}
        self._pending: dict[str, Future[Any]] = {}  # decision id -> its write
        self._pending_lock = threading.Lock()
        # decisions waiting for the write job not yet started (see _log)
        self._log_lock = threading.Lock()
        self._log_queue: list[_Logged] = []
        self._log_future: Future[Any] | None = None
        self._log_ids: dict[int, list[str]] = {}  # id(job future) -> its decision ids
        # told of first exposures after they are committed (experiment results)
        self.exposure_listeners: list[Callable[[list[Exposure]], None]] = []
        # told of each logged decision after it is committed (bandits count their trials)
        self.decision_listeners: list[Callable[[JsonDict], None]] = []
        # several workers: first exposures are written under the person's partition claim
        self.claimed_writes: ClaimedWrites | None = None
        self.decider = self.new_decider()
        self.prerender = PrerenderCache(
            lambda: self._compiled().workspace.prerender, lambda: self._clock().timestamp()
        )

    def new_decider(self) -> Decider:
        """A decider over today's slots and catalog (rebuilt when either changes)."""
        compiled = self._compiled()
        return Decider(
            compiled.slots,
            self._strategies,
            self._catalog(),
            self._views.item_stats.stats,
            saved_groups=compiled.workspace.saved_groups,
            bandits=self._bandits,
            frozen_catalog=True,  # the catalog service swaps its mapping, and calls refresh
        )

    def refresh(self) -> None:
        self.decider = self.new_decider()
        self.prerender.invalidate()

    # -- deciding ------------------------------------------------------------------------------
    def consent_state(
        self, user_id: str | None, anonymous_id: str | None
    ) -> privacy_consent.ConsentState:
        consent = self._views.consent
        if not consent.anyone_chose():
            return privacy_consent.EMPTY
        identities = self._views.identities
        keys: list[str] = []
        for identifier in (user_id, anonymous_id):
            if not identifier:
                continue
            pid = identities.resolve(identifier)
            if pid is not None:
                keys.append(pid)
                keys.extend(profile_id_for(i) for i in sorted(identities.members(pid)))
            keys.append(profile_id_for(identifier))
        return consent.state(dict.fromkeys(keys))

    def prefetch_consent(self, people: Sequence[tuple[str | None, str | None]]) -> None:
        """Read into the views what :meth:`consent_state` reads for each of ``people`` (user
        id, anonymous id): a campaign's chunk, most of them not seen lately, costs one store
        read per view instead of three per person."""
        consent = self._views.consent
        if not consent.anyone_chose():
            return
        identities = self._views.identities
        identifiers = [i for person in people for i in person if i]
        pids = list(dict.fromkeys(identities.resolve_many(identifiers).values()))
        members = identities.members_many(pids)
        keys = [profile_id_for(i) for pid in pids for i in members.get(pid, ())]
        consent.states([*pids, *keys, *(profile_id_for(i) for i in identifiers)])

    def granted(
        self,
        state: privacy_consent.ConsentState,
        category: str,
        country: str | None,
        privacy: PrivacySettings,
    ) -> bool:
        """``privacy.consent.granted``; for someone who chose nothing (most people) the regional
        default, remembered per privacy settings object, category and country."""
        if state.choices:
            return privacy_consent.granted(state, category, country, privacy)
        key = (category, country)
        known = self._defaults.get(key)
        if known is not None and known[0] is privacy:
            return known[1]
        value = privacy_consent.granted(state, category, country, privacy)
        if len(self._defaults) < MAX_REMEMBERED_DEFAULTS:
            self._defaults[key] = (privacy, value)
        return value

    def decide(
        self,
        request: DecideRequest,
        headers: Mapping[str, str] | None = None,
        *,
        prepared: Prepared | None = None,
    ) -> DecideResponse:
        """``prepared``: what the caller already looked up (a campaign's audience: the person's
        profile and consent, the context the audience shares). The decision is logged behind
        the reply."""
        decided = self._decide(request, headers, prepared)
        record = decision_record(decided.response, decided.now, identified=decided.identified)
        identifiers = decided.resolved_from if prepared is None else ()
        self._log(_Logged(record, decided.exposures, identifiers))
        return decided.response

    def decide_campaign(self, request: DecideRequest, prepared: Prepared) -> CampaignDecision:
        """:meth:`decide` for one person of a campaign, not logged: the caller writes a chunk
        of decisions at once (:meth:`log_many`). Each slot is serialized once, for both the
        caller's row (the reply's JSON) and the log record."""
        decided = self._decide(request, None, prepared)
        response = decided.response
        slots = [_slot_json(slot) for slot in response.slots]
        record = decision_record(response, decided.now, identified=decided.identified, dumped=slots)
        return CampaignDecision(
            response.decision_id, response.profile_id, record, decided.exposures, slots
        )

    def _decide(
        self, request: DecideRequest, headers: Mapping[str, str] | None, prepared: Prepared | None
    ) -> _Decided:
        now = self._clock()
        compiled = self._compiled()
        workspace = compiled.workspace
        user = request.user
        pid: str | None
        if prepared is not None:
            pid, profile = prepared.pid, prepared.profile
        else:
            pid = self._views.identities.resolve_user(user.user_id, user.anonymous_id)
            profile = self._views.profiles.get(pid) if pid else None
        # a public (write-key) decide never uses another user's profile
        # what a first exposure's profile id is resolved again from (several workers); a public
        # (write-key) caller's anonymous id may since be linked to someone it did not prove
        trusted = (user.user_id,) if request.caller_only else (user.user_id, user.anonymous_id)
        resolved_from = tuple(i for i in trusted if i)
        if profile is not None and not may_use_profile(request, profile.user_id):
            pid, profile = unlinked_profile_id(user.anonymous_id or ""), None
            resolved_from = ()
        if pid is None:
            pid = profile_id_for(user.user_id or user.anonymous_id or "")
        if prepared is not None and prepared.attributes is not None and profile is not None:
            profile_attributes = dict(prepared.attributes)
        else:
            profile_attributes = (
                compiled.profile_attributes(profile, now) if profile is not None else {}
            )
        if prepared is not None:
            context, state = dict(prepared.context), prepared.consent
        else:
            context = request_context_attributes(request.context, workspace.profiles, now, headers)
            state = self.consent_state(user.user_id, user.anonymous_id)
        country = context.get("country") or (profile.country if profile is not None else None)
        privacy = workspace.privacy
        granted = self.granted
        personal = granted(state, "personalization", country, privacy)
        identified = granted(state, "analytics", country, privacy)
        # experiments and the holdout measure personalization: only people who consented to it
        # (and to analytics, so their exposures and outcomes may be recorded) take part, and
        # never crawlers or headless browsers
        bot = (context.get("device") or {}).get("type") == "bot"
        eligible = personal and identified and not bot
        # stored arms matter only to the holdout and to experiments on the requested slots
        experimented = workspace.holdout.enabled or any(
            compiled.experiments.get(s.slot) for s in request.slots
        )
        exposures = self._views.exposures.of(pid) if eligible and experimented else {}
        held_out = (
            eligible
            and workspace.holdout.enabled
            and self._holdout_arm(compiled, pid, exposures) == HOLDOUT_ARM
        )
        impersonal = None
        if not personal:
            profile_attributes = {}  # context only: no profile, no profile-based segments
            impersonal = explain.not_consented()
        elif held_out:  # the holdout is decided as if we knew nothing about the person
            profile_attributes = {}
            impersonal = explain.in_holdout(HOLDOUT_KEY)
        folded = prepared.segments if prepared is not None else None
        if folded is not None and folded[0] is compiled.registry:
            segments = folded[1]({"profile": profile_attributes, "context": context})
        else:
            segments = compiled.registry.evaluate(
                {"profile": profile_attributes, "context": context}
            )
        served: dict[str, _Served] = {}
        overrides: dict[str, SlotOverride] = {}
        if eligible and not held_out and compiled.experiments:
            attributes = {"profile": profile_attributes, "context": context, "segments": segments}
            served, overrides = self._assign_arms(
                compiled, request, pid, attributes, exposures, now
            )
        with self._rng_lock:
            rng = SeededOnUse(self._rng.getrandbits(64))
        pricing = granted(state, "pricing", country, privacy)

        def decide_slots(requests: list[SlotRequest], shown: set[str]) -> list[SlotDecision]:
            return self.decider.decide_slots(
                requests, profile=profile_attributes, context=context, segments=segments,
                segment_names=compiled.segment_names, now=now, rng=rng, impersonal=impersonal,
                pricing=pricing, overrides=overrides or None, shown=shown,
            )  # fmt: skip

        # the pre-render cache answers the slots that depend only on segments and context
        slots, cache = self.prerender.decide_page(
            compiled.slots, request.slots, decide_slots, profile=profile_attributes,
            context=context, segments=segments, now=now, pricing=pricing, impersonal=impersonal,
            overridden=frozenset(overrides),
        )  # fmt: skip
        # a predictive score that made a rule fire is disclosed, with what moved it
        scored = profile if profile_attributes and not impersonal else None
        score_reasons.annotate(slots, compiled, compiled.scores, scored, segments)
        # every field given, each of its type: validation would only copy the lists
        response = built(
            DecideResponse,
            {
                "decision_id": new_decision_id(),
                "profile_id": pid,
                "segments": segments,
                "slots": slots,
                "ai_influenced": any(s.ai_influenced for s in slots),
                "cache": cache,
            },
        )
        if eligible and workspace.holdout.enabled:
            arm = HOLDOUT_ARM if held_out else PERSONALIZED_ARM
            served[HOLDOUT_KEY] = _Served(HOLDOUT_KEY, arm, HOLDOUT_KEY not in exposures)
        records = self._first_exposures(compiled, served, response, profile, now)
        return _Decided(response, now, identified, records, resolved_from)

    # -- experiments ---------------------------------------------------------------------------
    @staticmethod
    def _holdout_arm(
        compiled: CompiledWorkspace, pid: str, exposures: Mapping[str, Exposure]
    ) -> str:
        """The person's side of the global holdout: the arm of their first exposure, else the
        hash of their profile id."""
        known = exposures.get(HOLDOUT_KEY)
        if known is not None:
            return known.arm
        inside = in_holdout(compiled.workspace.holdout.spec, pid)
        return HOLDOUT_ARM if inside else PERSONALIZED_ARM

    @staticmethod
    def _assign_arms(
        compiled: CompiledWorkspace,
        request: DecideRequest,
        pid: str,
        attributes: Mapping[str, Any],
        exposures: Mapping[str, Exposure],
        now: datetime,
    ) -> tuple[dict[str, _Served], dict[str, SlotOverride]]:
        """The arm per requested slot that has a running experiment (GrowthBook's assignment).

        The hashing id is the profile id: it is derived from the first identifier the person
        had and survives ``identify``, so a visitor who signs in keeps their arm. A stored
        exposure always beats the hash, so the arm a person first saw stays theirs. The
        workspace ``force`` map (user id, anonymous id or profile id -> arm) is the QA
        override: it works on draft and stopped experiments too, and logs no exposure. The
        first experiment of a slot that takes the user wins; others are skipped for it."""
        user = request.user
        ids = [i for i in (user.user_id, user.anonymous_id, pid) if i]
        served: dict[str, _Served] = {}
        overrides: dict[str, SlotOverride] = {}
        for slot_request in request.slots:
            for experiment in compiled.experiments.get(slot_request.slot, ()):
                forced = next((experiment.force[i] for i in ids if i in experiment.force), None)
                arm_key: str | None = None
                new, how = False, ""
                if forced is not None:
                    arm_key, how = forced, "forced for QA"
                elif experiment.spec.running(now):
                    known = exposures.get(experiment.key)
                    if known is not None and experiment.arm(known.arm) is not None:
                        arm_key, how = known.arm, "since your first visit in it"
                    else:
                        assignment = assign(
                            experiment.spec,
                            pid,
                            attributes,
                            now=now,
                            targeting=compiled.targeting.get(experiment.key),
                        )
                        if assignment is not None and assignment.in_experiment:
                            arm_key, how, new = assignment.arm_key, "assigned at random", True
                if arm_key is None:
                    continue
                arm = experiment.arm(arm_key)
                assert arm is not None  # validated: force and exposures name existing arms
                serves = f"strategy {arm.strategy}" if arm.strategy else f"variant {arm.variant}"
                reason = explain.experiment_arm(experiment.key, arm.key, f"{serves} ({how})")
                overrides[slot_request.slot] = SlotOverride(
                    reason=reason,
                    strategy=arm.strategy,
                    strategy_params=arm.strategy_params,
                    variant=arm.variant,
                )
                if forced is None:
                    served[slot_request.slot] = _Served(experiment.key, arm.key, new)
                break
        return served, overrides

    @staticmethod
    def _first_exposures(
        compiled: CompiledWorkspace,
        served: Mapping[str, _Served],
        response: DecideResponse,
        profile: Profile | None,
        now: datetime,
    ) -> list[Exposure]:
        records: list[Exposure] = []
        seen: set[str] = set()
        for slot_key, item in served.items():
            if not item.new or item.experiment in seen:
                continue
            seen.add(item.experiment)
            experiment = compiled.experiment(item.experiment)
            metrics = experiment.metrics if experiment is not None else []
            names = [m.event for m in metrics if m.event]
            revenue = [m.event for m in metrics if m.event and m.kind == "revenue"]
            records.append(
                Exposure(
                    experiment=item.experiment,
                    profile_id=response.profile_id,
                    arm=item.arm,
                    exposed_at=now,
                    slot=None if slot_key == HOLDOUT_KEY else slot_key,
                    decision_id=response.decision_id,
                    segments=tuple(response.segments),
                    before=pre_exposure_totals(profile, names, revenue),
                )
            )
        return records

    # -- the decision log ----------------------------------------------------------------------
    def _log(self, logged: _Logged) -> None:
        """Written behind the reply. Without analytics consent the decision is logged under no
        profile (and never attributed). A first exposure is stored once (the first wins); the
        exposure view learns of it after commit.

        Group commit: the decision joins the queue of the write job not yet started, if there
        is one, else it submits one. A job costs the writer far more than a decision's insert
        does, and under load many decisions now share one. With several workers, a decision
        with a first exposure is written by its own job under the person's partition claim
        (:meth:`_log_claimed`)."""
        decision_id = str(logged.record["decision_id"])
        if logged.exposures and self.claimed_writes is not None:
            self._log_claimed(self.claimed_writes, logged)
            return
        with self._log_lock:
            future = self._log_future
            if future is None:  # a closed storage raises here, with nothing queued
                future = self._log_future = self._storage.submit(self._drain_log)
                future.add_done_callback(self._forget_drained)  # not done: it needs the lock
            self._log_queue.append(logged)
            with self._pending_lock:
                self._pending[decision_id] = future
            self._log_ids.setdefault(id(future), []).append(decision_id)

    def _drain_log(self, uow: UnitOfWork) -> None:
        """The write job of :meth:`_log`: every decision queued until it started."""
        with self._log_lock:
            entries, self._log_queue = self._log_queue, []
            self._log_future = None
        self._write_logged(uow, entries)

    def _write_logged(self, uow: UnitOfWork, entries: Sequence[_Logged]) -> None:
        listeners = list(self.decision_listeners)
        uow.decisions.insert_many([logged.record for logged in entries])
        for logged in entries:
            self._insert_exposures(uow, logged.exposures)
            for listener in listeners:
                uow.on_commit(partial(listener, logged.record))

    def _log_claimed(self, writes: ClaimedWrites, logged: _Logged) -> None:
        """Another worker may be folding, merging or erasing this person right now, and its
        identity view may be behind: under the claim of the person's partitions the profile id
        is resolved again from the store, so an exposure never lands on a profile a merge has
        just folded into another one (where nobody would read it again)."""
        pid = logged.exposures[0].profile_id

        def job(uow: UnitOfWork) -> None:
            current = pid
            if logged.identifiers:
                linked = uow.identities.resolve(logged.identifiers)
                current = next((linked[i] for i in logged.identifiers if i in linked), pid)
            entry = logged if current == pid else _moved(logged, pid, current)
            self._write_logged(uow, [entry])

        future = writes.submit(logged.identifiers, [pid], job)
        self._remember_pending([str(logged.record["decision_id"])], future)

    def _remember_pending(self, ids: list[str], future: Future[Any]) -> None:
        with self._pending_lock:
            for decision_id in ids:
                self._pending[decision_id] = future

        def forget(_: object) -> None:
            with self._pending_lock:
                for decision_id in ids:
                    if self._pending.get(decision_id) is future:
                        del self._pending[decision_id]

        future.add_done_callback(forget)

    def _forget_drained(self, future: Future[Any]) -> None:
        with self._log_lock:
            ids = self._log_ids.pop(id(future), [])
        with self._pending_lock:
            for decision_id in ids:
                if self._pending.get(decision_id) is future:
                    del self._pending[decision_id]

    def log_many(self, entries: list[tuple[JsonDict, list[Exposure]]]) -> Future[Any]:
        """One write job for many decisions a sink collected (a campaign's chunk): each decision
        record and its first exposures; ``get_decision`` waits for it like for one."""

        def job(uow: UnitOfWork) -> None:
            uow.decisions.insert_many([record for record, _ in entries])
            for _, exposures in entries:
                self._insert_exposures(uow, exposures)

        ids = [str(record["decision_id"]) for record, _ in entries]
        exposed = [e.profile_id for _, exposures in entries for e in exposures]
        if exposed and self.claimed_writes is not None:  # a campaign's audience is resolved
            future = self.claimed_writes.submit((), exposed, job)  # already: claim, no re-resolve
        else:
            future = self._storage.submit(job)
        self._remember_pending(ids, future)
        return future

    def _insert_exposures(self, uow: UnitOfWork, exposures: list[Exposure]) -> list[Exposure]:
        """A first exposure is stored once (the first wins); the exposure view and the
        listeners learn of it after commit."""
        stored = [e for e in exposures if uow.exposures.insert(e)]
        if stored:
            views, listeners = self._views, list(self.exposure_listeners)

            def publish() -> None:
                views.exposures.publish(stored)
                for listener in listeners:
                    listener(stored)

            uow.on_commit(publish)
        return stored

    def store_exposures(self, exposures: list[Exposure]) -> list[Exposure]:
        """Store first exposures decided elsewhere (the edge); returns those new, once durable."""
        return self._storage.write(lambda uow: self._insert_exposures(uow, exposures))

    def get_decision(self, decision_id: str) -> JsonDict | None:
        with self._pending_lock:
            pending = self._pending.get(decision_id)
        if pending is not None:
            try:
                pending.result(timeout=PENDING_WAIT_SECONDS)
            except Exception:
                return None
        return self._storage.decisions.get(decision_id)

    def logged_since(self, since: datetime) -> Iterator[JsonDict]:
        """Logged decisions made at or after ``since`` (read-only; the console's alerts)."""
        return self._storage.decisions.iter(since)

    def flush(self) -> None:
        """Wait until every decision and exposure queued so far is committed (no write of its
        own: a results request must not cost a commit)."""
        with self._pending_lock:
            pending = list(self._pending.values())
        for future in pending:
            try:
                future.result(timeout=PENDING_WAIT_SECONDS)
            except Exception:
                continue


def decision_record(
    response: DecideResponse,
    now: datetime,
    *,
    identified: bool,
    dumped: Sequence[Mapping[str, Any]] | None = None,
) -> JsonDict:
    """The decision's log record. ``dumped``: the slots' JSON already made (:func:`_slot_json`),
    whose reasons the record takes rather than serializing them again."""
    if dumped is None:
        reasons = [[r.model_dump(mode="json") for r in s.reasons] for s in response.slots]
    else:
        reasons = [[_reason_record(r) for r in slot["reasons"]] for slot in dumped]
    return {
        "decision_id": response.decision_id,
        "profile_id": response.profile_id if identified else "",
        "created_at": isoformat(now),
        "segments": response.segments,
        "ai_influenced": response.ai_influenced,
        "slots": [
            {
                "slot": s.slot,
                "kind": s.kind,
                "variant": s.variant.id if s.variant is not None else None,
                "items": [
                    {"id": i.id, "score": i.score, "propensity": i.propensity} for i in s.items
                ],
                "rule": s.rule,
                "strategy": s.strategy,
                "fallback": s.fallback,
                "propensity": s.propensity,
                "ai_influenced": s.ai_influenced,
                "reasons": slot_reasons,
                **({"bandit": s.bandit} if s.bandit is not None else {}),
            }
            for s, slot_reasons in zip(response.slots, reasons, strict=True)
        ],
    }


def _slot_json(decision: SlotDecision) -> dict[str, Any]:
    """A slot as the reply's JSON shows it."""
    return decision.model_dump(mode="json", exclude_none=True)


def _reason_record(reason: Mapping[str, Any]) -> JsonDict:
    """A reason of :func:`_slot_json` as ``Reason.model_dump(mode="json")`` writes it: the
    same fields, ``ref`` too when it is None (left out of the reply's JSON)."""
    return {"kind": reason["kind"], "text": reason["text"], "ref": reason.get("ref")}


def _moved(logged: _Logged, old: str, new: str) -> _Logged:
    """The decision and its first exposures under the profile id the store resolves now."""
    record = logged.record
    if record.get("profile_id"):  # logged under no profile without analytics consent
        record = {**record, "profile_id": new}
    exposures = [replace(e, profile_id=new) if e.profile_id == old else e for e in logged.exposures]
    return _Logged(record, exposures, logged.identifiers)
