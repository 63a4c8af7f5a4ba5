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

from loopwise.api.keys import KeyRing
from loopwise.catalog.importer import read_items
from loopwise.catalog.items import Item
from loopwise.clock import Clock, isoformat, parse_timestamp, system_clock
from loopwise.config import SAMPLE_WORKSPACE, Workspace, load_workspace_file, parse_workspace
from loopwise.decide.decider import Decider
from loopwise.decide.item_stats import ItemStats
from loopwise.decide.request import DecideRequest, DecideResponse
from loopwise.decide.strategies import StrategyRegistry
from loopwise.errors import ConfigError, NotFound
from loopwise.events.kinds import EventKind, classify, item_ids
from loopwise.events.schema import Event
from loopwise.profiles.cache import LruCache
from loopwise.profiles.context import request_context_attributes
from loopwise.profiles.identity import IdentityGraph, profile_id_for
from loopwise.profiles.model import Profile
from loopwise.profiles.reducer import merge, reduce
from loopwise.segments.registry import SegmentRegistry, membership_changes
from loopwise.storage.base import Storage, WriteTransaction

WORKSPACE_CONFIG_KEY = "workspace"
RECENT_DECISIONS = 50_000  # decisions kept in memory for attribution before they hit storage


@dataclass(slots=True)
class IngestResult:
    accepted: int = 0  # new events stored and applied
    duplicates: int = 0  # retries of already stored messages (ignored)


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


class _Built:
    """The parts derived from a workspace; swapped whole when the workspace changes."""

    def __init__(self, workspace: Workspace, strategies: StrategyRegistry) -> None:
        self.workspace = workspace
        self.registry = SegmentRegistry(workspace.all_segments(), workspace.saved_groups)
        self.segment_names = {d.key: d.name for d in self.registry.definitions}
        self.slots = {slot.key: slot for slot in workspace.slots}
        known_strategies = set(strategies.names())
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
    ) -> None:
        self.clock = clock
        self.storage = storage
        self.keys = keys if keys is not None else KeyRing()
        self.strategies = strategies or StrategyRegistry.default()
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._built = _Built(workspace, self.strategies)
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
            engine = cls(workspace, storage, keys=keys, clock=clock)
            engine._import_initial_items(workspace, workspace_path)
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
        self.storage.close()

    @property
    def workspace(self) -> Workspace:
        return self._built.workspace

    @property
    def settings_country_header(self) -> str | None:
        return self.workspace.profiles.country_header

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
        # Provisional profile ids for storage; merges below reassign events within the txn.
        provisional = [
            graph.resolve_user(e.user_id, e.anonymous_id or e.previous_id)
            or profile_id_for(e.user_id or e.anonymous_id or e.previous_id or "")
            for e in events
        ]
        is_new = txn.insert_events(events, provisional)
        result = IngestResult()
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
        attributes = {"profile": profile.attributes(at, self.workspace.profiles), "context": {}}
        return frozenset(self._built.registry.evaluate(attributes))

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
        for kind, ids, at, segments, recent in staged.observations:
            self._stats.observe(kind, ids, at, segments=segments, recent_items=recent)

    def _rebuild_stats(self) -> None:
        """Item statistics are derived from the event log: rebuild them at start."""
        recent: dict[str, list[str]] = {}
        for event in self.storage.iter_events():
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
        if pid is None:
            pid = profile_id_for(user.user_id or user.anonymous_id or "")
        profile_attributes = profile.attributes(now, settings) if profile is not None else {}
        context = request_context_attributes(request.context, settings, now, headers)
        segments = built.registry.evaluate({"profile": profile_attributes, "context": context})
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
        )
        decision_id = "d_" + uuid.uuid4().hex
        response = DecideResponse(
            decision_id=decision_id,
            profile_id=pid,
            segments=segments,
            slots=slots,
            ai_influenced=any(s.ai_influenced for s in slots),
        )
        self._log_decision(response, now)
        return response

    def _log_decision(self, response: DecideResponse, now: datetime) -> None:
        record = {
            "decision_id": response.decision_id,
            "profile_id": response.profile_id,
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
        self._recent_decisions[response.decision_id] = (response.profile_id, now)
        while len(self._recent_decisions) > RECENT_DECISIONS:
            self._recent_decisions.popitem(last=False)
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
        attributes = profile.attributes(now, self.workspace.profiles)
        segments = self._built.registry.evaluate({"profile": attributes, "context": {}})
        return {
            "profile": attributes,
            "segments": segments,
            "identifiers": sorted(self._identities.identifiers(pid)),
            "segment_history": self.storage.segment_history(pid),
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
        built = _Built(workspace, self.strategies)
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
