"""The one wiring place: builds the stages from the workspace and runs the loop.

``Engine.ingest`` validates nothing itself (the HTTP edge and :mod:`loopwise.events.normalize` do);
it stores events durably, resolves identities, folds each new event into its profile with the one
reducer, updates segment membership and item statistics, and attributes outcomes to decisions.
``Engine.decide`` reads the in-memory profile and picks content for every requested slot.

Threading: all writes run as jobs on the storage's single writer thread (group commit), so profile
updates are serialised without locks. Jobs stage their in-memory changes and publish them only when
every storage call of the job succeeded. Readers (decide) see whole profile objects swapped in.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from loopwise.api.edge_settings import CorsSettings, RateLimitSettings
from loopwise.api.keys import KeyRing
from loopwise.api.public_decide import may_use_profile, unlinked_profile_id
from loopwise.catalog.importer import read_items
from loopwise.catalog.items import Item
from loopwise.clock import Clock, EventTimeClock, isoformat, parse_timestamp, system_clock
from loopwise.config import SAMPLE_WORKSPACE, Workspace, load_workspace_file, parse_workspace
from loopwise.decide import explain
from loopwise.decide.decider import Decider, SlotOverride
from loopwise.decide.item_stats import ItemStats
from loopwise.decide.request import DecideRequest, DecideResponse
from loopwise.decide.strategies import StrategyRegistry
from loopwise.errors import ConfigError, NotFound, ValidationFailed
from loopwise.events.kinds import EventKind, classify, item_ids
from loopwise.events.schema import Event
from loopwise.experiments.assignment import assign, in_holdout
from loopwise.experiments.results import report, summarize, user_outcome
from loopwise.experiments.settings import (
    HOLDOUT_ARM,
    HOLDOUT_KEY,
    PERSONALIZED_ARM,
    ExperimentConfig,
)
from loopwise.models.interactions import Interaction, interactions_from_events
from loopwise.models.manager import ModelManager
from loopwise.models.serving import MODEL_STRATEGIES
from loopwise.models.training import Progress
from loopwise.privacy import audit as privacy_audit
from loopwise.privacy import consent as privacy_consent
from loopwise.privacy import retention as privacy_retention
from loopwise.privacy.book import ConsentBook
from loopwise.profiles.cache import LruCache
from loopwise.profiles.context import country_from_context, request_context_attributes
from loopwise.profiles.identity import IdentityGraph, profile_id_for
from loopwise.profiles.model import Profile
from loopwise.profiles.reducer import merge, reduce
from loopwise.segments.clusters import (
    CLUSTER_ATTRIBUTE,
    ClusterModel,
    fit_clusters,
    is_cluster_key,
)
from loopwise.segments.registry import SegmentRegistry, membership_changes
from loopwise.storage.base import Storage, WriteTransaction

WORKSPACE_CONFIG_KEY = "workspace"
CLUSTERS_CONFIG_KEY = "clusters"  # the published ClusterModel.to_json()
RECENT_DECISIONS = 50_000  # decisions kept in memory for attribution before they hit storage

log = logging.getLogger(__name__)


@dataclass(slots=True)
class IngestResult:
    accepted: int = 0  # new events stored and applied
    duplicates: int = 0  # retries of already stored messages (ignored)
    # accepted without analytics consent: counted in item popularity only, stored nowhere
    anonymised: int = 0


@dataclass(slots=True)
class _Staged:
    """In-memory changes of one write job, published only when the job succeeds."""

    profiles: dict[str, Profile] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    memberships: dict[str, frozenset[str]] = field(default_factory=dict)
    # membership before the job touched each profile, and the time of its newest event
    memberships_before: dict[str, frozenset[str]] = field(default_factory=dict)
    last_event_at: dict[str, datetime] = field(default_factory=dict)
    undo: list[Callable[[], None]] = field(default_factory=list)  # identity changes to revert
    observations: list[tuple[EventKind, list[str], datetime, list[str], list[str]]] = field(
        default_factory=list
    )
    consent: dict[str, privacy_consent.ConsentState] = field(default_factory=dict)
    exposure_moves: list[tuple[str, str]] = field(default_factory=list)  # merged (from, to)


@dataclass(frozen=True, slots=True)
class _Served:
    """An experiment arm served in one slot of a decision; ``new`` when it is a first exposure."""

    experiment: str
    arm: str
    new: bool


class _Built:
    """The parts derived from a workspace; swapped whole when the workspace changes."""

    def __init__(
        self,
        workspace: Workspace,
        strategies: StrategyRegistry,
        clusters: ClusterModel | None = None,
    ) -> None:
        self.workspace = workspace
        # published K-Means clusters: their segments join the registry, and profile.cluster is
        # set from the same model wherever attributes are built (swapped together, atomically)
        self.clusters = clusters
        cluster_segments = clusters.segments() if clusters is not None else []
        self.registry = SegmentRegistry(
            workspace.all_segments() + cluster_segments, workspace.saved_groups
        )
        self.segment_names = {d.key: d.name for d in self.registry.definitions}
        self.slots = {slot.key: slot for slot in workspace.slots}
        # model names are valid before training: their stand-ins answer with popular items
        known_strategies = set(strategies.names()) | set(MODEL_STRATEGIES)
        for i, slot in enumerate(workspace.slots):
            uses = [(f"slots[{i}].default_strategy", slot.default_strategy)] + [
                (f"slots[{i}].rules[{j}].then.strategy", r.then.strategy)
                for j, r in enumerate(slot.rules)
                if r.then.strategy is not None
            ]
            for field_path, name in uses:
                if name not in known_strategies:
                    raise ConfigError(
                        f'Slot "{slot.key}" uses unknown strategy "{name}". Known strategies: '
                        f"{', '.join(strategies.names())}.",
                        field=field_path,
                    )
        self.experiments: dict[str, list[ExperimentConfig]] = {}
        for i, experiment in enumerate(workspace.experiments):
            self.experiments.setdefault(experiment.slot, []).append(experiment)
            for j, arm in enumerate(experiment.arms):
                if arm.strategy is not None and arm.strategy not in known_strategies:
                    raise ConfigError(
                        f'Experiment "{experiment.key}" arm "{arm.key}" uses unknown strategy '
                        f'"{arm.strategy}". Known strategies: {", ".join(strategies.names())}.',
                        field=f"experiments[{i}].arms[{j}].strategy",
                    )
        self.holdout = workspace.holdout.experiment(workspace.experiments)


class Engine:
    """Ingest -> profiles -> segments -> decide, with the feedback loop, on one storage."""

    def __init__(
        self,
        workspace: Workspace,
        storage: Storage,
        *,
        keys: KeyRing | None = None,
        clock: Clock = system_clock,
        strategies: StrategyRegistry | None = None,
        seed: int | None = None,
        data_dir: Path | None = None,
    ) -> None:
        self.clock = clock
        self.storage = storage
        self.keys = keys if keys is not None else KeyRing()
        self.strategies = strategies or StrategyRegistry.default()
        # trained models: stand-ins until a version is trained or loaded (Engine.open)
        self.models = ModelManager(self.strategies, data_dir, clock)
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._built = _Built(workspace, self.strategies, _stored_clusters(storage))
        self._identities = IdentityGraph(storage.identities())
        cache_size = workspace.profiles.cache_profiles  # bounded: evicted ones reload from storage
        self._profiles: dict[str, Profile] = LruCache(cache_size)
        self._memberships: dict[str, frozenset[str]] = LruCache(cache_size)
        self._recent_decisions: OrderedDict[str, tuple[str, datetime]] = OrderedDict()
        self._last_decision: dict[str, tuple[str, datetime]] = {}
        self._catalog: dict[str, Item] = {
            record["id"]: Item.from_record(record) for record in storage.get_items()
        }
        # trending is re-ranked at most every 30 s of event time: the ranking is a batch job
        # that must not land inside many requests
        self._stats = ItemStats(
            half_life_days=workspace.popularity.half_life_days, trending_max_age_seconds=30.0
        )
        self._decider = self._new_decider()
        self._rebuild_stats()
        self._consent = ConsentBook(storage.iter_consent())
        # the audit trail names people only by salted hashes (so erasure leaves no id in it)
        self._salt = self._privacy_salt()
        # experiment -> profile id -> (arm, first exposure time): the hot path's memory of who
        # was exposed, so decide never reads storage for it; stored exposures seed it
        self._exposed: dict[str, dict[str, tuple[str, str]]] = {}
        self._exposed_lock = threading.Lock()
        for record in storage.iter_exposures():
            self._exposed.setdefault(record["experiment"], {}).setdefault(
                record["profile_id"], (record["arm"], record["exposed_at"])
            )

    def _new_decider(self) -> Decider:
        built = self._built
        return Decider(
            built.slots,
            self.strategies,
            self._catalog,
            self._stats,
            saved_groups=built.workspace.saved_groups,
        )

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        data_dir: Path,
        workspace_file: Path | None = None,
        *,
        clock: Clock = system_clock,
        environ: Mapping[str, str] | None = None,
    ) -> tuple[Engine, dict[str, str]]:
        """Open (or create) a data directory on SQLite. Returns the engine and any keys generated
        now (to print once). The workspace file wins over an admin-API copy stored earlier only
        when the file changed since that copy was stored."""
        from loopwise.storage.sqlite import SqliteStorage

        data_dir.mkdir(parents=True, exist_ok=True)
        storage = SqliteStorage(data_dir / "loopwise.db")
        try:
            keys, new_keys = KeyRing.load_or_create(
                data_dir, os.environ if environ is None else environ
            )
            workspace_path = workspace_file or SAMPLE_WORKSPACE
            workspace = _choose_workspace(storage, workspace_path)
            engine = cls(workspace, storage, keys=keys, clock=clock, data_dir=data_dir)
            engine._import_initial_items(workspace, workspace_path)
            engine.models.load_current(workspace.training.keep_versions)
        except BaseException:
            storage.close()
            raise
        return engine, new_keys

    def _import_initial_items(self, workspace: Workspace, workspace_path: Path) -> None:
        if self._catalog or not workspace.items:
            return
        path = Path(workspace.items)
        if not path.is_absolute():
            path = workspace_path.parent / path
        self.put_items(list(read_items(path)))

    def close(self) -> None:
        self.models.stop()
        self.storage.close()

    @property
    def workspace(self) -> Workspace:
        return self._built.workspace

    @property
    def settings_country_header(self) -> str | None:
        return self.workspace.profiles.country_header

    @property
    def settings_truncate_ip(self) -> bool:
        return self.workspace.profiles.truncate_ip

    @property
    def settings_cors(self) -> CorsSettings:
        return self.workspace.cors

    @property
    def settings_rate_limits(self) -> RateLimitSettings:
        return self.workspace.rate_limits

    def healthy(self) -> bool:
        return self.storage.healthy()

    # -- ingest --------------------------------------------------------------------------------
    def submit_ingest(self, events: list[Event]) -> Future[IngestResult]:
        """Queue events; the future resolves once they are durable and applied."""
        events = [e for e in events if e.type != "group" or e.user_id or e.anonymous_id]
        return self.storage.submit(lambda txn: self._ingest_job(txn, events))

    def ingest(self, events: list[Event]) -> IngestResult:
        return self.submit_ingest(events).result()

    def _ingest_job(self, txn: WriteTransaction, events: Sequence[Event]) -> IngestResult:
        staged = _Staged()
        graph = self._identities
        result = IngestResult()
        events = self._consent_gate(txn, events, staged, result)
        # Provisional profile ids for storage; merges below reassign events within the txn.
        provisional = [
            graph.resolve_user(e.user_id, e.anonymous_id or e.previous_id)
            or profile_id_for(e.user_id or e.anonymous_id or e.previous_id or "")
            for e in events
        ]
        is_new = txn.insert_events(events, provisional)
        try:
            for event, new in zip(events, is_new, strict=True):
                if not new:
                    result.duplicates += 1
                    continue
                result.accepted += 1
                self._apply_event(txn, event, graph, staged)
            self._update_memberships(txn, staged)
            txn.upsert_profiles([p.to_record() for p in staged.profiles.values()])
        except BaseException:
            # the storage rolls this job back; take the identity links back with it
            for undo in reversed(staged.undo):
                undo()
            raise
        self._publish(staged)
        return result

    def _profile(self, profile_id: str, staged: _Staged | None = None) -> Profile | None:
        if staged is not None:
            if profile_id in staged.deleted:
                return None
            if profile_id in staged.profiles:
                return staged.profiles[profile_id]
        cached = self._profiles.get(profile_id)
        if cached is not None:
            return cached
        record = self.storage.get_profile(profile_id)
        if record is None:
            return None
        # setdefault: a reader thread must never replace a newer profile the writer published
        return self._profiles.setdefault(profile_id, Profile.from_record(record))

    def _membership(self, profile_id: str, staged: _Staged | None = None) -> frozenset[str]:
        if staged is not None and profile_id in staged.memberships:
            return staged.memberships[profile_id]
        known = self._memberships.get(profile_id)
        if known is not None:
            return known
        profile = self._profile(profile_id, staged)
        if profile is None:
            return frozenset()
        return self._profile_segments(profile, profile.last_seen)

    def _profile_segments(self, profile: Profile, at: datetime) -> frozenset[str]:
        built = self._built
        attributes = {"profile": self._profile_attributes(profile, at, built), "context": {}}
        return frozenset(built.registry.evaluate(attributes))

    @staticmethod
    def _profile_attributes(profile: Profile, at: datetime, built: _Built) -> dict[str, Any]:
        """``profile.*`` at ``at``, with ``profile.cluster`` when clusters are published."""
        attributes = profile.attributes(at, built.workspace.profiles)
        if built.clusters is not None:
            attributes[CLUSTER_ATTRIBUTE] = built.clusters.assign(attributes)
        return attributes

    def _apply_event(
        self, txn: WriteTransaction, event: Event, graph: IdentityGraph, staged: _Staged
    ) -> None:
        settings = self.workspace.profiles

        def owner_of(pid: str) -> str | None:
            profile = self._profile(pid, staged)
            return profile.user_id if profile is not None else None

        resolution = graph.plan(event, owner_of)
        staged.undo.append(graph.apply(resolution))
        pid = resolution.profile_id
        for identifier in [*resolution.new_links, *resolution.moved]:
            txn.link_identity(identifier, pid)
        self._follow_exposures(txn, resolution.new_links, pid, staged)
        existing = self._profile(pid, staged)
        profile = existing or Profile.new(pid, event.timestamp)
        if pid not in staged.memberships_before:
            staged.memberships_before[pid] = (
                self._membership(pid, staged) if existing is not None else frozenset()
            )
        if resolution.merge_from is not None:
            secondary = self._profile(resolution.merge_from, staged)
            if secondary is not None:
                profile = merge(profile, secondary, settings)
                staged.memberships_before[pid] |= self._membership(resolution.merge_from, staged)
            staged.memberships_before.pop(resolution.merge_from, None)
            staged.last_event_at.pop(resolution.merge_from, None)
            for identifier in graph.identifiers(pid):
                txn.link_identity(identifier, pid)
            txn.reassign_events(resolution.merge_from, pid)
            self._merge_consent(txn, staged, resolution.merge_from, pid)
            txn.reassign_exposures(resolution.merge_from, pid)
            staged.exposure_moves.append((resolution.merge_from, pid))
            txn.delete_profiles([resolution.merge_from])
            staged.profiles.pop(resolution.merge_from, None)
            staged.deleted.add(resolution.merge_from)
        previous_recent = list(profile.recently_viewed)
        profile = reduce(profile, event, settings, self._catalog)
        staged.profiles[pid] = profile
        staged.deleted.discard(pid)
        previous = staged.last_event_at.get(pid)
        staged.last_event_at[pid] = max(previous, event.timestamp) if previous else event.timestamp
        kind = classify(event)
        ids = item_ids(event)
        if ids:
            segments = sorted(staged.memberships_before[pid])
            staged.observations.append((kind, ids, event.timestamp, segments, previous_recent))
        self._attribute(txn, event, kind, ids, pid)

    def _follow_exposures(
        self, txn: WriteTransaction, identifiers: Sequence[str], pid: str, staged: _Staged
    ) -> None:
        """A visitor served before any of their events was stored was exposed under the profile
        id their identifier would get (``profile_id_for``). When that identifier is linked to
        another profile (e.g. ``identify`` names a user first seen now), the exposures move
        there, so the arm they saw stays theirs."""
        for identifier in identifiers:
            phantom = profile_id_for(identifier)
            if phantom == pid or not any(phantom in e for e in self._exposed.values()):
                continue
            if self._profile(phantom, staged) is None:
                txn.reassign_exposures(phantom, pid)
                staged.exposure_moves.append((phantom, pid))

    def _update_memberships(self, txn: WriteTransaction, staged: _Staged) -> None:
        """Segment membership is evaluated once per profile per write (not per event): the
        conditions are the costly part of ingest, and a batch mostly carries one user's events."""
        for pid, profile in staged.profiles.items():
            at = staged.last_event_at.get(pid, profile.last_seen)
            after = self._profile_segments(profile, at)
            entered, left = membership_changes(staged.memberships_before.get(pid, ()), after)
            if entered or left:
                txn.record_segment_changes(pid, entered, left, at)
            staged.memberships[pid] = after

    def _attribute(
        self, txn: WriteTransaction, event: Event, kind: EventKind, ids: list[str], pid: str
    ) -> None:
        """Tie impressions, clicks and conversions to the decision that led to them."""
        if kind not in (EventKind.IMPRESSION, EventKind.CLICK, EventKind.PURCHASE):
            return
        decision_id = event.decision_id
        if decision_id is not None:
            if decision_id not in self._recent_decisions and (
                self.storage.get_decision(decision_id) is None
            ):
                return
            how = "decision_id"
        elif kind == EventKind.PURCHASE:
            window = timedelta(hours=self.workspace.attribution.conversion_window_hours)
            last = self._last_decision.get(pid)
            if last is None or last[1] < event.timestamp - window:
                stored = self.storage.last_decision(pid, event.timestamp - window)
                created = parse_timestamp(stored["created_at"]) if stored else None
                last = (stored["decision_id"], created) if stored and created else None
            # a decision made after the conversion (beyond clock slack) did not cause it
            if last is None or last[1] > event.timestamp + timedelta(minutes=5):
                return
            decision_id = last[0]
            how = "last_decision_in_window"
        else:
            return
        txn.record_outcome(
            decision_id,
            {
                "kind": kind.value,
                "event": event.event,
                "message_id": event.message_id,
                "item_ids": ids,
                "slot": event.properties.get("slot"),
                "revenue": event.properties.get("revenue"),
                "at": isoformat(event.timestamp),
                "attributed_by": how,
            },
        )

    def _publish(self, staged: _Staged) -> None:
        for pid in staged.deleted:
            self._profiles.pop(pid, None)
            self._memberships.pop(pid, None)
        self._profiles.update(staged.profiles)
        self._memberships.update(staged.memberships)
        self._consent.publish(staged.consent)
        for kind, ids, at, segments, recent in staged.observations:
            self._stats.observe(kind, ids, at, segments=segments, recent_items=recent)
        if staged.exposure_moves:
            with self._exposed_lock:
                for source, target in staged.exposure_moves:
                    for exposed in self._exposed.values():
                        moved = exposed.pop(source, None)
                        kept = exposed.get(target)
                        if moved is not None and (kept is None or moved[1] < kept[1]):
                            exposed[target] = moved
        if isinstance(self.clock, EventTimeClock) and staged.last_event_at:
            self.clock.observe(max(staged.last_event_at.values()))

    def _rebuild_stats(self) -> None:
        """Item statistics are derived from the event log: rebuild them at start."""
        recent: dict[str, list[str]] = {}
        # a restarted simulation or backtest resumes at its own time, not the wall clock's
        event_clock = self.clock if isinstance(self.clock, EventTimeClock) else None
        for event in self.storage.iter_events():
            if event_clock is not None:
                event_clock.observe(event.timestamp)
            kind = classify(event)
            ids = item_ids(event)
            if not ids:
                continue
            key = event.identity
            self._stats.observe(kind, ids, event.timestamp, recent_items=recent.get(key, []))
            if kind == EventKind.ITEM_VIEW:
                recent[key] = (ids + recent.get(key, []))[:20]

    # -- decide --------------------------------------------------------------------------------
    def decide(
        self, request: DecideRequest, headers: Mapping[str, str] | None = None
    ) -> DecideResponse:
        now = self.clock()
        built = self._built
        settings = built.workspace.profiles
        user = request.user
        pid = self._identities.resolve_user(user.user_id, user.anonymous_id)
        profile = self._profile(pid) if pid else None
        # delivery: a public (write-key) decide never uses another user's profile
        if profile is not None and not may_use_profile(request, profile.user_id):
            pid, profile = unlinked_profile_id(user.anonymous_id or ""), None
        if pid is None:
            pid = profile_id_for(user.user_id or user.anonymous_id or "")
        profile_attributes = (
            self._profile_attributes(profile, now, built) if profile is not None else {}
        )
        context = request_context_attributes(request.context, settings, now, headers)
        state = privacy_consent.EMPTY
        if len(self._consent):
            state = self._consent.state(self._consent_keys(user.user_id, user.anonymous_id))
        country = context.get("country") or (profile.country if profile is not None else None)
        privacy = built.workspace.privacy
        personal = privacy_consent.granted(state, "personalization", country, privacy)
        identified = privacy_consent.granted(state, "analytics", country, privacy)
        # experiments and the holdout measure personalization: only people who consented to it
        # (and to analytics, so their exposures and outcomes may be recorded) take part
        eligible = personal and identified
        held_out = (
            eligible and built.workspace.holdout.enabled and self._holdout_arm(pid) == HOLDOUT_ARM
        )
        impersonal = None
        if not personal:
            profile_attributes = {}  # context only: no profile, no profile-based segments
            impersonal = explain.not_consented()
        elif held_out:  # the holdout is decided as if we knew nothing about the person
            profile_attributes = {}
            impersonal = explain.in_holdout(HOLDOUT_KEY)
        segments = built.registry.evaluate({"profile": profile_attributes, "context": context})
        served: dict[str, _Served] = {}
        overrides: dict[str, SlotOverride] = {}
        if eligible and not held_out and built.experiments:
            attributes = {"profile": profile_attributes, "context": context, "segments": segments}
            served, overrides = self._assign_arms(request, pid, attributes, now)
        with self._rng_lock:
            rng = random.Random(self._rng.getrandbits(64))
        slots = self._decider.decide_slots(
            request.slots,
            profile=profile_attributes,
            context=context,
            segments=segments,
            segment_names=built.segment_names,
            now=now,
            rng=rng,
            impersonal=impersonal,
            pricing=privacy_consent.granted(state, "pricing", country, privacy),
            overrides=overrides or None,
        )
        decision_id = "d_" + uuid.uuid4().hex
        response = DecideResponse(
            decision_id=decision_id,
            profile_id=pid,
            segments=segments,
            slots=slots,
            ai_influenced=any(s.ai_influenced for s in slots),
        )
        self._log_decision(response, now, identified=identified)
        if eligible and built.workspace.holdout.enabled:
            arm = HOLDOUT_ARM if held_out else PERSONALIZED_ARM
            served[HOLDOUT_KEY] = _Served(HOLDOUT_KEY, arm, self._first_exposure(HOLDOUT_KEY, pid))
        self._log_exposures(served, response, now)
        return response

    # -- experiments ---------------------------------------------------------------------------
    def _holdout_arm(self, pid: str) -> str:
        """The user's side of the global holdout: the arm of their first exposure, else the
        hash of their profile id (see :meth:`_assign_arms` for why the profile id)."""
        known = self._exposed.get(HOLDOUT_KEY, {}).get(pid)
        if known is not None:
            return known[0]
        inside = in_holdout(self._built.workspace.holdout.spec, pid)
        return HOLDOUT_ARM if inside else PERSONALIZED_ARM

    def _first_exposure(self, experiment: str, pid: str) -> bool:
        return pid not in self._exposed.get(experiment, {})

    def _assign_arms(
        self, request: DecideRequest, pid: str, attributes: Mapping[str, Any], now: datetime
    ) -> tuple[dict[str, _Served], dict[str, SlotOverride]]:
        """The arm per requested slot that has a running experiment (GrowthBook's assignment).

        The hashing id is the profile id: it is derived from the first identifier the person
        had (``p_`` + hash of the anonymous id on a first visit) and survives ``identify``, so a
        visitor who signs in keeps their arm. When an anonymous profile is merged into an older
        known profile, its exposures move there (the earlier one wins) and a stored exposure
        always beats the hash, so the arm a person first saw stays theirs.
        The workspace ``force`` map (user id, anonymous id or profile id -> arm) is the QA
        override: it works on draft and stopped experiments too, and logs no exposure.
        The first experiment of a slot that takes the user wins; others are skipped for it.
        """
        user = request.user
        ids = [i for i in (user.user_id, user.anonymous_id, pid) if i]
        served: dict[str, _Served] = {}
        overrides: dict[str, SlotOverride] = {}
        for slot_request in request.slots:
            for experiment in self._built.experiments.get(slot_request.slot, ()):
                forced = next((experiment.force[i] for i in ids if i in experiment.force), None)
                arm_key: str | None = None
                new, how = False, ""
                if forced is not None:
                    arm_key, how = forced, "forced for QA"
                elif experiment.spec.running(now):
                    known = self._exposed.get(experiment.key, {}).get(pid)
                    if known is not None and experiment.arm(known[0]) is not None:
                        arm_key, how = known[0], "since your first visit in it"
                    else:
                        assignment = assign(experiment.spec, pid, attributes, now=now)
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

    def _log_exposures(
        self, served: Mapping[str, _Served], response: DecideResponse, now: datetime
    ) -> None:
        """First exposures, written behind the reply like the decision log; the in-memory map
        is updated first so later requests never record the same exposure again."""
        records: list[dict[str, Any]] = []
        pid = response.profile_id
        with self._exposed_lock:
            for slot_key, item in served.items():
                if not item.new:
                    continue
                exposed = self._exposed.setdefault(item.experiment, {})
                if pid in exposed:
                    continue
                at = isoformat(now)
                exposed[pid] = (item.arm, at)
                records.append(
                    {
                        "experiment": item.experiment,
                        "profile_id": pid,
                        "arm": item.arm,
                        "exposed_at": at,
                        "slot": None if slot_key == HOLDOUT_KEY else slot_key,
                        "decision_id": response.decision_id,
                        "segments": response.segments,
                    }
                )
        if records:
            self.storage.submit(lambda txn: [txn.record_exposure(r) for r in records])

    def _experiment(self, key: str) -> ExperimentConfig:
        workspace = self.workspace
        if key == HOLDOUT_KEY and (workspace.holdout.enabled or HOLDOUT_KEY in self._exposed):
            return self._built.holdout
        found = workspace.experiment(key)
        if found is None:
            known = [e.key for e in workspace.experiments]
            if workspace.holdout.enabled:
                known.append(HOLDOUT_KEY)
            raise NotFound(
                f'No experiment "{key}". Known experiments: {", ".join(known) or "none"}.',
                field="key",
            )
        return found

    def list_experiments(self) -> list[dict[str, Any]]:
        """Every experiment of the workspace (and the holdout when on) with its exposures."""
        experiments = list(self.workspace.experiments)
        if self.workspace.holdout.enabled:
            experiments.append(self._built.holdout)
        return [
            {
                "key": e.key,
                "slot": e.slot,
                "status": e.status,
                "description": e.description,
                "control": e.control_key,
                "arms": [
                    {"key": a.key, "weight": w} for a, w in zip(e.arms, e.weights, strict=True)
                ],
                "metrics": [m.key for m in e.metrics],
                "exposed_users": len(self._exposed.get(e.key, {})),
            }
            for e in experiments
        ]

    def experiment_results(self, key: str, segment: str | None = None) -> dict[str, Any]:
        """Results from the engine's own logs: every exposed user's events after their first
        exposure (``loopwise.experiments.results``). ``segment`` keeps the users who were in it
        at exposure."""
        experiment = self._experiment(key)
        if segment is not None and segment not in self._built.segment_names:
            raise NotFound(
                f'No segment "{segment}". Use a segment key of the workspace, e.g. '
                f"{', '.join(sorted(self._built.segment_names)[:5])}.",
                field="segment",
            )
        self.storage.write(lambda txn: None)  # exposures queued behind replies are committed
        users = []
        for exposure in self.storage.iter_exposures(key):
            if segment is not None and segment not in exposure.get("segments", ()):
                continue
            exposed_at = parse_timestamp(exposure["exposed_at"])
            if exposed_at is None:
                continue
            users.append(
                user_outcome(
                    experiment.metrics,
                    self.storage.iter_events(exposure["profile_id"]),
                    arm=exposure["arm"],
                    segments=exposure.get("segments", ()),
                    exposed_at=exposed_at,
                    end=experiment.end,
                )
            )
        return report(experiment, summarize(experiment, users), segment=segment)

    def _log_decision(
        self, response: DecideResponse, now: datetime, *, identified: bool = True
    ) -> None:
        """Without analytics consent the decision is logged under no profile (and never
        attributed: that person's events are not stored under an identifier)."""
        logged_profile = response.profile_id if identified else ""
        record = {
            "decision_id": response.decision_id,
            "profile_id": logged_profile,
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
                    "reasons": [r.model_dump(mode="json") for r in s.reasons],
                }
                for s in response.slots
            ],
        }
        self._recent_decisions[response.decision_id] = (logged_profile, now)
        while len(self._recent_decisions) > RECENT_DECISIONS:
            self._recent_decisions.popitem(last=False)
        if identified:
            self._last_decision[response.profile_id] = (response.decision_id, now)
        # Decision logs are written behind the reply; recent ones stay in memory meanwhile.
        self.storage.submit(lambda txn: txn.insert_decision(record))

    def get_decision(self, decision_id: str) -> dict[str, Any] | None:
        return self.storage.get_decision(decision_id)

    # -- profiles ------------------------------------------------------------------------------
    def resolve(self, identifier: str) -> str | None:
        if identifier in self._identities.members:
            return identifier
        return self._identities.resolve(identifier)

    def profile_view(self, identifier: str) -> dict[str, Any] | None:
        pid = self.resolve(identifier)
        profile = self._profile(pid) if pid else None
        if profile is None or pid is None:
            return None
        now = self.clock()
        built = self._built
        attributes = self._profile_attributes(profile, now, built)
        segments = built.registry.evaluate({"profile": attributes, "context": {}})
        return {
            "profile": attributes,
            "segments": segments,
            "identifiers": sorted(self._identities.identifiers(pid)),
            "segment_history": self.storage.segment_history(pid),
        }

    # -- erasure and export --------------------------------------------------------------------
    def _person(self, identifier: str) -> tuple[str, list[str], list[str]]:
        """The live profile of ``identifier``, its identifiers, and every profile id the person's
        data may be stored under: the live one plus the provisional ids of merged identities
        (decisions made before a merge keep the id they were made for), minus ids that are now
        another person's live profile."""
        pid = self.resolve(identifier)
        if pid is None or (self._profile(pid) is None and not self._identities.identifiers(pid)):
            # no accepted event ever linked the id (e.g. analytics refused), yet its consent,
            # decisions and exposures are stored under the id a first event would give it
            phantom = profile_id_for(identifier)
            if (
                self._consent.state([phantom]).choices
                or any(phantom in exposed for exposed in self._exposed.values())
                or self.storage.decisions_for(phantom)
            ):
                return phantom, [identifier], [phantom]
            raise NotFound(
                f'No profile for "{identifier}". Use a userId or anonymousId an accepted event '
                "carried, or the profile id.",
                field="identifier",
            )
        identifiers = sorted(self._identities.identifiers(pid))
        members = self._identities.members
        earlier = {profile_id_for(i) for i in identifiers}
        profile_ids = [pid, *sorted(p for p in earlier - {pid} if p not in members)]
        return pid, identifiers, profile_ids

    def erase_profile(self, identifier: str) -> dict[str, Any]:
        """Erase a person across every merged identity, in one write job (all or nothing):
        profile, identity links, events, decisions and their outcomes, segment history; then the
        in-memory state and the write-ahead log. Returns the receipt. Trained models hold no
        copy: they are trained from the event log, so they forget the person at the next
        training. Item statistics keep only anonymous aggregate counts."""

        def job(txn: WriteTransaction) -> dict[str, Any]:
            pid, identifiers, profile_ids = self._person(identifier)
            counts: dict[str, int] = {}
            for profile_id in profile_ids:
                for table, removed in txn.delete_profile_data(profile_id).items():
                    counts[table] = counts.get(table, 0) + removed
            consent_keys = self._consent_keys(*identifiers, *profile_ids)
            for key in consent_keys:
                txn.delete_consent(key)
            counts["consent"] = sum(1 for key in consent_keys if self._consent.state([key]).choices)
            erased_at = self.clock()
            summary = {"removed": dict(counts), "identifiers": len(identifiers)}
            audit_record = privacy_audit.erasure_record(
                self.pseudonymous_id(pid),
                summary,
                self.workspace.privacy.policy_version,
                erased_at,
            )
            privacy_audit.append(txn, audit_record)
            # after the storage calls succeeded (the job can no longer fail): forget in memory
            gone = set(profile_ids)
            self._consent.forget(consent_keys)
            with self._exposed_lock:
                for exposed in self._exposed.values():
                    for profile_id in profile_ids:
                        exposed.pop(profile_id, None)
            for profile_id in profile_ids:
                self._identities.forget(profile_id)
                self._profiles.pop(profile_id, None)
                self._memberships.pop(profile_id, None)
                self._last_decision.pop(profile_id, None)
            for decision_id in [d for d, (p, _) in self._recent_decisions.items() if p in gone]:
                self._recent_decisions.pop(decision_id, None)
            return {
                "profile_id": pid,
                "identifiers": identifiers,
                "profile_ids": profile_ids,
                "removed": counts,
                "erased_at": isoformat(erased_at),
                "audit": "the consent audit trail keeps only a pseudonymous record of this erasure",
            }

        receipt = self.storage.write(job)
        self.storage.checkpoint()
        return receipt

    def export_profile(self, identifier: str) -> dict[str, Any]:
        """Everything held about a person, as one JSON-safe document (access and portability):
        the profile, identifiers, segments and their history, events, decisions with outcomes,
        experiment exposures (experiment, arm, time)."""
        pid, identifiers, profile_ids = self._person(identifier)
        view = self.profile_view(identifier) or {}
        events = [
            event.to_record()
            for profile_id in profile_ids
            for event in self.storage.iter_events(profile_id)
        ]
        decisions = [d for p in profile_ids for d in self.storage.decisions_for(p)]
        decisions.sort(key=lambda d: str(d.get("created_at", "")))
        with self._exposed_lock:
            exposures = [
                {"experiment": experiment, "arm": arm, "exposed_at": at}
                for experiment, exposed in sorted(self._exposed.items())
                for p in profile_ids
                if p in exposed
                for arm, at in [exposed[p]]
            ]
        return {
            "profile_id": pid,
            "identifiers": identifiers,
            "exported_at": isoformat(self.clock()),
            "profile": view.get("profile", {}),
            "segments": view.get("segments", []),
            "segment_history": [
                entry for p in profile_ids for entry in self.storage.segment_history(p)
            ],
            "events": events,
            "decisions": decisions,
            "exposures": exposures,
            "consent": self.get_consent(identifier),
            "consent_history": self.consent_history(identifier),
        }

    # -- catalog -------------------------------------------------------------------------------
    def put_items(self, items: list[Item]) -> int:
        records = [item.to_record() for item in items]
        self.storage.write(lambda txn: txn.upsert_items(records))
        # copy-on-write: requests in flight keep a consistent catalog; caches key on the object
        catalog = dict(self._catalog)
        catalog.update((item.id, item) for item in items)
        self._set_catalog(catalog)
        return len(items)

    def _set_catalog(self, catalog: dict[str, Item]) -> None:
        self._catalog = catalog
        self._decider = self._new_decider()

    def get_item(self, item_id: str) -> Item | None:
        return self._catalog.get(item_id)

    def list_items(self, offset: int, limit: int) -> tuple[list[Item], int]:
        ordered = sorted(self._catalog)
        return [self._catalog[i] for i in ordered[offset : offset + limit]], len(ordered)

    def delete_items(self, item_ids: list[str]) -> int:
        deleted = self.storage.write(lambda txn: txn.delete_items(item_ids))
        gone = set(item_ids)
        self._set_catalog({k: v for k, v in self._catalog.items() if k not in gone})
        return deleted

    # -- workspace -----------------------------------------------------------------------------
    def workspace_document(self) -> dict[str, Any]:
        return self.workspace.document()

    def replace_workspace(self, document: dict[str, Any]) -> dict[str, Any]:
        """Validate, persist and apply a whole workspace; if invalid, ConfigError and no change."""
        workspace = parse_workspace(document)
        built = _Built(workspace, self.strategies, self._built.clusters)
        stored = workspace.document()
        previous = self.storage.get_config(WORKSPACE_CONFIG_KEY) or {}
        self.storage.write(
            lambda txn: txn.put_config(
                WORKSPACE_CONFIG_KEY, {**previous, "document": stored, "source": "admin"}
            )
        )
        self._built = built
        self._decider = self._new_decider()
        self._memberships.clear()
        return stored

    def _replace_entry(
        self, section: str, key: str, document: dict[str, Any] | None
    ) -> dict[str, Any]:
        current = self.workspace_document()
        entries = [e for e in current.get(section, []) if e.get("key") != key]
        if document is not None:
            if "key" in document and document["key"] != key:
                raise ConfigError(
                    f'The body\'s key "{document["key"]}" differs from the URL\'s "{key}"; '
                    "make them equal or leave key out of the body.",
                    field="key",
                )
            entry = {**document, "key": key}
            position = next(
                (i for i, e in enumerate(current.get(section, [])) if e.get("key") == key),
                len(entries),
            )
            entries.insert(position, entry)
        elif len(entries) == len(current.get(section, [])):
            raise NotFound(f'No {section[:-1]} "{key}" in the workspace.', field="key")
        current[section] = entries
        try:
            self.replace_workspace(current)
        except ConfigError as exc:
            index = next((i for i, e in enumerate(entries) if e.get("key") == key), 0)
            prefix = f"{section}[{index}]"
            field_path = exc.field or ""
            if field_path.startswith(prefix):
                field_path = field_path[len(prefix) :].lstrip(".")
            raise ConfigError(exc.detail, field=field_path or None, **exc.extra) from None
        return next((e for e in self.workspace_document()[section] if e["key"] == key), {})

    def put_slot(self, key: str, document: dict[str, Any]) -> dict[str, Any]:
        return self._replace_entry("slots", key, document)

    def delete_slot(self, key: str) -> None:
        self._replace_entry("slots", key, None)

    def put_segment(self, key: str, document: dict[str, Any]) -> dict[str, Any]:
        return self._replace_entry("segments", key, document)

    def delete_segment(self, key: str) -> None:
        self._replace_entry("segments", key, None)

    # -- clusters ------------------------------------------------------------------------------
    def cluster(self, k_min: int = 2, k_max: int = 8, seed: int = 0) -> dict[str, Any]:
        """Fit K-Means on every stored profile's attributes now, publish the clusters as segments
        ``cluster_<n>`` (stored, then applied to the next ingest and decision) and report them.
        Keys follow the previous model's clusters where they match (see segments.clusters)."""
        now = self.clock()
        built = self._built
        settings = built.workspace.profiles
        rows = [
            Profile.from_record(record).attributes(now, settings)
            for record in self.storage.iter_profiles()
        ]
        model = fit_clusters(
            rows, (k_min, k_max), seed, fitted_at=isoformat(now), previous=built.clusters
        )
        document = model.to_json()
        published = _Built(self._built.workspace, self.strategies, model)
        self.storage.write(lambda txn: txn.put_config(CLUSTERS_CONFIG_KEY, document))
        self._built = published  # the decider reads no segment definitions: it stays
        self._memberships.clear()  # recomputed with the cluster segments on next use
        return {**model.summary(), "warnings": _unpublished_cluster_rules(self._built)}

    def clusters(self) -> dict[str, Any]:
        """The published clusters (``published: false`` before the first ``cluster``)."""
        built = self._built
        if built.clusters is None:
            return {"published": False, "clusters": [], "warnings": []}
        return {
            "published": True,
            **built.clusters.summary(),
            "warnings": _unpublished_cluster_rules(built),
        }

    # -- replay --------------------------------------------------------------------------------
    def rebuild_profiles(self) -> tuple[dict[str, Profile], IdentityGraph]:
        """Fold the whole event log through the same reducer, from nothing. Pure: stores nothing."""
        settings = self.workspace.profiles
        graph = IdentityGraph()
        profiles: dict[str, Profile] = {}
        for event in self.storage.iter_events():

            def owner_of(pid: str) -> str | None:
                found = profiles.get(pid)
                return found.user_id if found is not None else None

            resolution = graph.plan(event, owner_of)
            graph.apply(resolution)
            pid = resolution.profile_id
            profile = profiles.get(pid) or Profile.new(pid, event.timestamp)
            if resolution.merge_from is not None and resolution.merge_from in profiles:
                profile = merge(profile, profiles.pop(resolution.merge_from), settings)
            profiles[pid] = reduce(profile, event, settings, self._catalog)
        return profiles, graph

    def replay(self) -> dict[str, Any]:
        """Rebuild every profile from the event log and store the result. Reports how many
        stored profiles differed from the rebuilt ones (0 when live processing was exact).
        Runs as one write job, so no event is applied while profiles are rebuilt."""

        def job(txn: WriteTransaction) -> dict[str, Any]:
            profiles, graph = self.rebuild_profiles()
            live = {record["id"]: record for record in self.storage.iter_profiles()}
            rebuilt = {pid: p.to_record() for pid, p in profiles.items()}
            differing = sorted(
                pid for pid in set(live) | set(rebuilt) if live.get(pid) != rebuilt.get(pid)
            )
            txn.delete_profiles(sorted(set(live) - set(rebuilt)))
            txn.upsert_profiles(list(rebuilt.values()))
            for identifier, pid in graph.links.items():
                txn.link_identity(identifier, pid)
            self._profiles = LruCache(self.workspace.profiles.cache_profiles, profiles)
            self._identities = graph
            self._memberships.clear()
            return {
                "profiles": len(rebuilt),
                "events": self.storage.count_events(),
                "differing": len(differing),
                "differing_ids": differing[:20],
            }

        return self.storage.write(job)

    # -- privacy: consent, audit, retention ------------------------------------------------------
    def _consent_keys(self, *identifiers: str | None) -> list[str]:
        """Every key a person's consent may be stored under: their canonical profile first (else
        the profile id their first event would get), then the ids of all their identifiers."""
        keys: list[str] = []
        for identifier in identifiers:
            if not identifier:
                continue
            pid = self.resolve(identifier)
            if pid is not None:
                keys.append(pid)
                keys.extend(profile_id_for(i) for i in sorted(self._identities.identifiers(pid)))
            keys.append(profile_id_for(identifier))
        return list(dict.fromkeys(keys))

    def _consent_gate(
        self, txn: WriteTransaction, events: Sequence[Event], staged: _Staged, result: IngestResult
    ) -> list[Event]:
        """Record the consent choices events carry (``context.consent.categoryPreferences``),
        then keep only events of people who consented to analytics. An event's own choices apply
        to that event (withdrawing analytics in an event keeps the event out of the log). The
        others feed only the anonymous item counts, in memory: no event stored, no profile, no
        identity link, no segment history, no attribution."""
        privacy = self.workspace.privacy
        kept: list[Event] = []
        # fast path: nobody made a choice yet and analytics is granted by default everywhere
        nobody = privacy_consent.EMPTY
        tracked_by_default = not privacy_consent.needs_country(
            nobody, "analytics", privacy
        ) and privacy_consent.granted(nobody, "analytics", None, privacy)
        for event in events:
            choices = privacy_consent.from_event_context(event.context, privacy)
            anyone_chose = bool(choices or len(self._consent) or staged.consent)
            if tracked_by_default and not anyone_chose:
                kept.append(event)
                continue
            state = privacy_consent.EMPTY
            if anyone_chose:
                keys = self._consent_keys(event.user_id, event.anonymous_id, event.previous_id)
                if choices and keys:
                    user = event.user_id or event.anonymous_id or event.previous_id or ""
                    # a choice is never later than its receipt: a client clock ahead must not
                    # date it past the person's next explicit (PUT) choice, which would lose
                    at = min(event.timestamp, event.received_at)
                    self._record_consent(txn, staged, keys, user, choices, at, "event")
                state = self._consent.state(keys, staged.consent)
            country = None
            if privacy_consent.needs_country(state, "analytics", privacy):
                country = country_from_context(event.context) or self._known_country(event, staged)
            if privacy_consent.granted(state, "analytics", country, privacy):
                kept.append(event)
                continue
            result.anonymised += 1
            ids = item_ids(event)
            if ids:
                staged.observations.append((classify(event), ids, event.timestamp, [], []))
        return kept

    def _known_country(self, event: Event, staged: _Staged) -> str | None:
        """The country on the person's profile (for events whose context has none)."""
        pid = self._identities.resolve_user(event.user_id, event.anonymous_id)
        profile = self._profile(pid, staged) if pid else None
        return profile.country if profile is not None else None

    def _record_consent(
        self,
        txn: WriteTransaction,
        staged: _Staged,
        keys: Sequence[str],
        user: str,
        choices: Mapping[str, bool],
        at: datetime,
        source: str,
        *,
        always: bool = False,
    ) -> privacy_consent.ConsentState:
        """Apply choices to a person's state and append the change to the audit trail (a choice
        that changes nothing is recorded only when ``always``: an explicit API call)."""
        policy = self.workspace.privacy.policy_version
        before = self._consent.state(keys, staged.consent)
        after = privacy_consent.with_choices(before, choices, at, source, policy)
        if after is before and not always:
            return before
        staged.consent[keys[0]] = after
        txn.put_consent(keys[0], after.to_record())
        privacy_audit.append(
            txn,
            privacy_audit.consent_record(
                user=self.pseudonymous_id(user),
                subject=self.pseudonymous_id(keys[0]),
                before=before.explicit(),
                after=after.explicit(),
                source=source,
                policy_version=policy,
                at=at,
            ),
        )
        return after

    def _merge_consent(
        self, txn: WriteTransaction, staged: _Staged, source_pid: str, target_pid: str
    ) -> None:
        """Profiles merged: the person's state is both, the newest choice per category winning."""
        moved = self._consent.state([source_pid], staged.consent)
        if not moved.choices:
            return
        merged = privacy_consent.merge([self._consent.state([target_pid], staged.consent), moved])
        staged.consent[target_pid] = merged
        txn.put_consent(target_pid, merged.to_record())

    def get_consent(self, user_id: str, country: str | None = None) -> dict[str, Any]:
        """Effective consent per category (explicit choice, else the regional default for
        ``country``, else the profile's country)."""
        keys = self._consent_keys(user_id)
        state = self._consent.state(keys)
        if country is None:
            pid = self.resolve(user_id)
            profile = self._profile(pid) if pid else None
            country = profile.country if profile is not None else None
        view = privacy_consent.view(state, country, self.workspace.privacy)
        return {"user_id": user_id, **view}

    def put_consent(self, user_id: str, body: Any) -> dict[str, Any]:
        """Set explicit choices (``{"categories": {name: bool}, "source": str}``); durable and
        applied to the very next request when this returns. ValidationFailed on bad input."""
        choices, source = privacy_consent.parse_choices(body, self.workspace.privacy)
        now = self.clock()

        def job(txn: WriteTransaction) -> None:
            staged = _Staged()
            keys = self._consent_keys(user_id)
            self._record_consent(txn, staged, keys, user_id, choices, now, source, always=True)
            self._consent.publish(staged.consent)

        self.storage.write(job)
        return self.get_consent(user_id)

    def consent_history(self, user_id: str) -> list[dict[str, Any]]:
        """The audit records of this person's consent changes, oldest first."""
        keys = self._consent_keys(user_id)
        return list(self.storage.iter_audit([self.pseudonymous_id(k) for k in keys]))

    def _privacy_salt(self) -> str:
        """The data directory's salt for pseudonymous ids, created once."""
        salt = self.storage.get_meta(privacy_audit.SALT_META_KEY)
        if salt is not None:
            return salt

        def create(txn: WriteTransaction) -> str:
            existing = txn.read_meta(privacy_audit.SALT_META_KEY)
            if existing is not None:
                return existing
            fresh = privacy_audit.new_salt()
            txn.put_meta(privacy_audit.SALT_META_KEY, fresh)
            return fresh

        return self.storage.write(create)

    def pseudonymous_id(self, identifier: str) -> str:
        """Salted SHA-256 of ``identifier``; the salt is created once per data directory."""
        return privacy_audit.pseudonymous_id(identifier, self._salt)

    def append_erasure_record(
        self, pseudonymous_id: str, receipt_summary: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Record an erasure in the audit trail under a pseudonymous id only (see
        :meth:`pseudonymous_id`); ``receipt_summary`` must hold counts and times, no ids."""
        record = privacy_audit.erasure_record(
            pseudonymous_id, receipt_summary, self.workspace.privacy.policy_version, self.clock()
        )
        return self.storage.write(lambda txn: privacy_audit.append(txn, record))

    def run_retention(self, *, dry_run: bool = False) -> dict[str, Any]:
        """Purge behavioural data older than ``privacy.retention_days``; report counts."""
        cutoffs = privacy_retention.Cutoffs.at(self.clock(), self.workspace.privacy)

        def job(txn: WriteTransaction) -> dict[str, int]:
            counts, stale = privacy_retention.purge(txn, cutoffs, dry_run=dry_run)
            # purged exposures are no longer first exposures to remember (as after a restart)
            stamp, gone = isoformat(cutoffs.behaviour), set(stale)
            with self._exposed_lock:
                for exposed in self._exposed.values():
                    for pid in [p for p, (_, at) in exposed.items() if p in gone or at < stamp]:
                        del exposed[pid]
            for pid in stale:
                self._profiles.pop(pid, None)
                self._memberships.pop(pid, None)
                self._last_decision.pop(pid, None)
                self._identities.forget(pid)
            return counts

        try:
            counts = self.storage.write(job)
        except privacy_retention.DryRun as run:
            counts = run.counts
        return privacy_retention.report(cutoffs, counts, dry_run=dry_run)

    # -- trained models ------------------------------------------------------------------------
    def interactions(self) -> list[Interaction]:
        """The event log as model interactions, attributed to today's profiles."""
        graph = self._identities
        return list(
            interactions_from_events(
                self.storage.iter_events(), lambda e: graph.resolve(e.identity) or e.identity
            )
        )

    def train_models(self, wait: bool = True, progress: Progress | None = None) -> dict[str, Any]:
        """Train the workspace's models on the event log, store a version and serve it (see
        :meth:`loopwise.models.manager.ModelManager.train` for the contract)."""
        return self.models.train(
            self.interactions, self._catalog, self.workspace.training, wait=wait, progress=progress
        )

    def model_versions(self) -> dict[str, Any]:
        return self.models.versions(self.workspace.training.keep_versions)

    def rollback_models(self, version: str | None = None) -> dict[str, Any]:
        return self.models.rollback(self.workspace.training.keep_versions, version)

    def start_retraining(self) -> bool:
        """Periodic retraining (``training.retrain_every_minutes`` > 0), stopped by close()."""
        return self.models.start_periodic(
            self.workspace.training.retrain_every_minutes,
            self.interactions,
            lambda: self._catalog,
            lambda: self.workspace.training,
        )

    def counts(self) -> dict[str, int]:
        return {
            "events": self.storage.count_events(),
            "profiles": self.storage.count_profiles(),
            "items": len(self._catalog),
        }


def _choose_workspace(storage: Storage, path: Path) -> Workspace:
    """The file is the source of truth unless the admin API changed the workspace after the file
    was last loaded (then the stored copy wins until the file changes again)."""
    file_workspace = load_workspace_file(path)
    file_document = file_workspace.document()
    fingerprint = orjson.dumps(file_document, option=orjson.OPT_SORT_KEYS).decode()
    stored = storage.get_config(WORKSPACE_CONFIG_KEY)
    if stored and stored.get("file_fingerprint") == fingerprint and "document" in stored:
        return parse_workspace(stored["document"])
    storage.write(
        lambda txn: txn.put_config(
            WORKSPACE_CONFIG_KEY,
            {"file_fingerprint": fingerprint, "document": file_document, "source": "file"},
        )
    )
    return file_workspace


def _stored_clusters(storage: Storage) -> ClusterModel | None:
    """The published cluster model; a damaged one is skipped (with a warning) so the engine
    still starts and ``loopwise cluster`` can publish a new one."""
    document = storage.get_config(CLUSTERS_CONFIG_KEY)
    if document is None:
        return None
    try:
        return ClusterModel.from_json(document)
    except ValidationFailed as exc:
        log.warning("clusters not loaded: %s", exc.detail)
        return None


def _unpublished_cluster_rules(built: _Built) -> list[str]:
    """Rules that target a cluster key the published model does not have (they never match)."""
    published = set(built.clusters.keys) if built.clusters is not None else set()
    return [
        f'Rule "{rule.id}" of slot "{slot.key}" targets {key}, which is not published; '
        "it matches nobody until a clustering publishes it."
        for slot in built.workspace.slots
        for rule in slot.rules
        for key in rule.segments
        if is_cluster_key(key) and key not in published
    ]
