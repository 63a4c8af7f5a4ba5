"""The journey runner: moves each person's journey state on their events (inside the ingest
job's unit of work, as a projection hook) and on the engine's clock (due states: waits ending,
quiet hours over, inactivity), and records every action in the outbox in the same unit of work
as the state change that causes it.

Time is the engine's clock: live, the system clock; in a simulation or backtest the event-time
clock, so weeks of journeys run in minutes. Every batch of events first catches up the due
states of the people in it (a wait that ended before their next event fires before it), then
the events, then everybody else's due states up to the batch's newest event. A ticker thread
does the last part when no events come.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from loopwise.catalog.items import Item
from loopwise.clock import Clock, EventTimeClock, isoformat, system_clock
from loopwise.events.kinds import order_revenue
from loopwise.events.schema import Event
from loopwise.experiments.assignment import assign
from loopwise.journeys.compiled import JOURNEY_ARM, CompiledJourney, compile_journey
from loopwise.journeys.machine import Action, Context, EventInput, Tick, step, triggered
from loopwise.journeys.outbox import deliveries_for, segment_deliveries
from loopwise.journeys.spec import WebhookSettings
from loopwise.journeys.state import JourneyState
from loopwise.privacy import consent as privacy_consent
from loopwise.privacy.consent import ConsentState
from loopwise.privacy.settings import PrivacySettings
from loopwise.profiles.model import Profile
from loopwise.projection.effects import ProfilesMerged, ProfileUpserted, SegmentsChanged
from loopwise.projection.fold import FoldContext, Folded, pre_exposure_totals
from loopwise.storage.journey_records import DROPPED, PENDING, STATUSES, Delivery
from loopwise.storage.records import Exposure
from loopwise.storage.stores import Storage, UnitOfWork
from loopwise.views import Views
from loopwise.workspace.compiled import CompiledWorkspace

log = logging.getLogger(__name__)

COUNTS_KEY = "journey_counts:"  # config document per journey: per-step counters
METRICS = ("entered", "waiting", "sent", "converted", "exited", "capped")
DUE_BATCH = 500  # due states stepped per write job
DAY = timedelta(days=1)
WEEK = timedelta(days=7)


@dataclass
class _Batch:
    """What one unit of work changes: states, deliveries, counters, exposures."""

    states: dict[tuple[str, str], JourneyState | None] = field(default_factory=dict)
    dirty: set[tuple[str, str]] = field(default_factory=set)
    deliveries: list[Delivery] = field(default_factory=list)
    counts: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    exposures: list[Exposure] = field(default_factory=list)
    steps: int = 0
    consent: dict[str, Any] = field(default_factory=dict)  # pid -> stored record (prefetched)
    journeys: list[CompiledJourney] = field(default_factory=list)
    # pid -> this batch's track events (name, time, revenue): a journey entered mid-batch was
    # exposed after the fold counted them, so its exposure starts from those at or after entry
    tracked: dict[str, list[tuple[str, datetime, float]]] = field(default_factory=dict)


class JourneyService:
    def __init__(
        self,
        storage: Storage,
        views: Views,
        compiled: Callable[[], CompiledWorkspace],
        catalog: Callable[[], Mapping[str, Item]],
        clock: Clock,
    ) -> None:
        self._storage = storage
        self._views = views
        self._compiled = compiled
        self._catalog = catalog
        self._clock = clock
        self._cache: tuple[object, list[CompiledJourney]] | None = None
        self._next_due: datetime | None = None
        self._due_known = False
        self._lock = threading.Lock()
        self.exposure_listeners: list[Callable[[list[Exposure]], None]] = []
        self.delivery_listeners: list[Callable[[], None]] = []  # wake the delivery worker
        self._ticker: _Ticker | None = None
        # the last profile's attributes (writer thread): journeys of one input share them
        self._attributes: tuple[Profile, datetime, dict[str, Any]] | None = None

    # -- the workspace's journeys ----------------------------------------------------------
    def journeys(self) -> list[CompiledJourney]:
        workspace = self._compiled().workspace
        cache = self._cache
        if cache is None or cache[0] is not workspace:
            cache = (workspace, [compile_journey(j) for j in workspace.journeys])
            self._cache = cache
        return cache[1]

    @property
    def webhooks(self) -> WebhookSettings:
        return self._compiled().workspace.webhooks

    @property
    def privacy(self) -> PrivacySettings:
        return self._compiled().workspace.privacy

    def now(self) -> datetime:
        return self._clock()

    # -- the projection hook (inside the ingest job) ---------------------------------------
    def project(
        self, uow: UnitOfWork, events: Sequence[Event], folded: Folded, context: FoldContext
    ) -> None:
        journeys = self.journeys()
        endpoints = [e for e in self.webhooks.endpoints if e.subscribe]
        if not journeys and not endpoints:
            return
        batch = _Batch(journeys=journeys)
        profiles = {
            e.profile.id: (e.profile, e.membership)
            for e in folded.effects
            if isinstance(e, ProfileUpserted)
        }
        for effect in folded.effects:
            if isinstance(effect, ProfilesMerged):
                self._follow_merge(uow, batch, effect.source, effect.target)
        inputs: dict[str, list[EventInput]] = {}
        for event, pid in zip(events, folded.profile_ids, strict=True):
            name = event.event if event.type == "track" else None
            inputs.setdefault(pid, []).append(EventInput(event.timestamp, event.type, name))
            if name:
                batch.tracked.setdefault(pid, []).append(
                    (name, event.timestamp, order_revenue(event))
                )
        for effect in folded.effects:
            if isinstance(effect, SegmentsChanged):
                at = datetime.fromisoformat(effect.at_iso.replace("Z", "+00:00"))
                if effect.entered:
                    inputs.setdefault(effect.profile_id, []).append(
                        EventInput(at, "segments", None, effect.entered, any_event=False)
                    )
                if endpoints:
                    batch.deliveries += segment_deliveries(endpoints, effect, system_clock())
        if journeys:
            self._load(uow, batch, inputs)
            for pid, person_inputs in inputs.items():
                found = profiles.get(pid)
                profile, membership = found if found is not None else (None, frozenset())
                if profile is None:
                    entry = self._views.profiles.for_writer([pid])[pid]
                    profile, membership = entry.profile, entry.membership or frozenset()
                if profile is None:
                    continue
                person_inputs.sort(key=lambda i: i.at)
                for event_input in person_inputs:
                    self._person(uow, batch, journeys, pid, profile, membership, event_input)
        newest = max((e.timestamp for e in events), default=None)
        now = self.now()
        if isinstance(self._clock, EventTimeClock) and newest is not None and newest > now:
            now = newest
        self._write(uow, batch)
        if journeys and self._is_due(now):
            self.run_due(uow, now)

    def _load(self, uow: UnitOfWork, batch: _Batch, inputs: Mapping[str, list[EventInput]]) -> None:
        wanted = [pid for pid in inputs if not any(k[1] == pid for k in batch.states)]
        for record in uow.journeys.for_profiles(wanted):
            batch.states[(record.journey, record.profile_id)] = JourneyState.from_record(record)

    def _follow_merge(self, uow: UnitOfWork, batch: _Batch, source: str, target: str) -> None:
        """A merged person's journey states follow them (the target's own state wins)."""
        uow.outbox.reassign(source, target)
        moving = uow.journeys.for_profiles([source])
        if not moving:
            return
        held = {r.journey for r in uow.journeys.for_profiles([target])}
        for record in moving:
            uow.journeys.delete(record.journey, source)
            if record.journey not in held:
                state = JourneyState.from_record(record)
                state.profile_id = target
                batch.states[(record.journey, target)] = state
                batch.dirty.add((record.journey, target))

    def _person(
        self,
        uow: UnitOfWork,
        batch: _Batch,
        journeys: list[CompiledJourney],
        pid: str,
        profile: Profile,
        membership: frozenset[str],
        event_input: EventInput,
    ) -> None:
        consent_cache: dict[str, bool] = {}
        for journey in journeys:
            key = (journey.key, pid)
            state = batch.states.get(key)
            idle = state is None and journey.inactive_seconds is None
            if idle and not triggered(journey, event_input):
                continue  # nothing this input could start
            # a wait that ended before this event fires before it
            guard = 0
            while state is not None and state.due_at is not None and state.due_at <= event_input.at:
                due = state.due_at
                ctx = self._context(
                    uow, batch, journey, pid, profile, membership, due, consent_cache
                )
                state = self._apply(batch, journey, step(state, Tick(due), journey, ctx, pid), key)
                guard += 1
                if guard > 100:
                    break
            at = event_input.at
            ctx = self._context(uow, batch, journey, pid, profile, membership, at, consent_cache)
            self._apply(batch, journey, step(state, event_input, journey, ctx, pid), key)

    def _apply(
        self, batch: _Batch, journey: CompiledJourney, stepped: Any, key: tuple[str, str]
    ) -> JourneyState | None:
        batch.steps += 1
        if not stepped.changed:
            return stepped.state
        state: JourneyState | None = stepped.state
        batch.states[key] = state
        batch.dirty.add(key)
        counts = batch.counts.setdefault(journey.key, {})
        for step_id, metric, delta in stepped.counts:
            bucket = counts.setdefault(step_id or "_journey", {})
            bucket[metric] = bucket.get(metric, 0) + delta
        actions: list[Action] = stepped.actions
        if state is not None:
            for action in actions:
                if action.kind == "journey.entered" and journey.experiment is not None:
                    tracked = batch.tracked.get(state.profile_id, ())
                    batch.exposures.append(self._exposure(journey, state, action.at, tracked))
            batch.deliveries += deliveries_for(
                journey, state, actions, self.webhooks, system_clock()
            )
        return state

    def _exposure(
        self,
        journey: CompiledJourney,
        state: JourneyState,
        at: datetime,
        tracked: Iterable[tuple[str, datetime, float]] = (),
    ) -> Exposure:
        """The person's exposure to the journey's holdout experiment at entry; ``tracked`` (this
        batch's events of theirs) gives its first totals, as the fold gives a decide's."""
        assert journey.experiment is not None
        entry = self._views.profiles.for_writer([state.profile_id])[state.profile_id]
        metric_events = [m.event for m in journey.experiment.metrics if m.event]
        revenue = [m.event for m in journey.experiment.metrics if m.kind == "revenue" and m.event]
        after: dict[str, tuple[float, float]] = {}
        for name, when, amount in tracked:
            if name in metric_events and when >= at:
                count, total = after.get(name, (0.0, 0.0))
                after[name] = (count + 1.0, total + amount)
        return Exposure(
            experiment=journey.experiment.key,
            profile_id=state.profile_id,
            arm=state.arm or JOURNEY_ARM,
            exposed_at=at,
            slot=journey.experiment.slot,
            segments=tuple(sorted(entry.membership or ())),
            before=_without(pre_exposure_totals(entry.profile, metric_events, revenue), after),
            after=after,
        )

    def _context(
        self,
        uow: UnitOfWork,
        batch: _Batch,
        journey: CompiledJourney,
        pid: str,
        profile: Profile,
        membership: frozenset[str],
        at: datetime,
        consent_cache: dict[str, bool],
    ) -> Context:
        cached = self._attributes
        if cached is not None and cached[0] is profile and cached[1] == at:
            attributes = cached[2]
        else:
            attributes = self._compiled().profile_attributes(profile, at)
            self._attributes = (profile, at, attributes)
        category = journey.config.consent
        if category not in consent_cache:
            consent_cache[category] = self._consented(uow, batch, pid, category, attributes)
        arm = JOURNEY_ARM
        if journey.experiment is not None:
            assigned = assign(journey.experiment.spec, pid, {}, now=None)
            if assigned is not None and assigned.in_experiment:
                arm = assigned.arm_key
        sends = [
            t
            for other in batch.journeys
            if (s := batch.states.get((other.key, pid))) is not None
            for t in s.sends
        ]
        return Context(
            attributes={"profile": attributes, "segments": sorted(membership)},
            consented=consent_cache[category],
            arm=arm,
            timezone=attributes.get("timezone"),
            sends_day=sum(1 for t in sends if at - DAY < t <= at),
            sends_week=sum(1 for t in sends if at - WEEK < t <= at),
            repurchase_seconds=self._repurchase_seconds(profile),
        )

    def _consented(
        self,
        uow: UnitOfWork,
        batch: _Batch,
        pid: str,
        category: str,
        attributes: Mapping[str, Any],
    ) -> bool:
        if pid not in batch.consent:
            batch.consent[pid] = uow.consent.get([pid]).get(pid)
        record = batch.consent[pid]
        state = ConsentState.from_record(record) if record is not None else ConsentState()
        return privacy_consent.granted(state, category, attributes.get("country"), self.privacy)

    def _repurchase_seconds(self, profile: Profile) -> float | None:
        """The typical repurchase interval of what the person bought: the median of the
        items' ``attributes.repurchase_days`` (catalog), None when no item says."""
        catalog = self._catalog()
        days = sorted(
            float(value)
            for item_id in list(profile.purchased_items)[:10]
            if (item := catalog.get(item_id)) is not None
            and isinstance(value := item.attributes.get("repurchase_days"), int | float)
            and value > 0
        )
        if not days:
            return None
        return days[len(days) // 2] * 86400.0

    # -- due states (the engine's clock) ---------------------------------------------------
    def _is_due(self, now: datetime) -> bool:
        with self._lock:
            if not self._due_known:
                return True
            return self._next_due is not None and self._next_due <= now

    def run_due(self, uow: UnitOfWork, now: datetime, limit: int = DUE_BATCH) -> int:
        """Step every state due at or before ``now`` (up to ``limit``) in this unit of work."""
        compiled_journeys = self.journeys()
        journeys = {j.key: j for j in compiled_journeys}
        records = uow.journeys.due(now, limit)
        batch = _Batch(journeys=compiled_journeys)
        pids = list(dict.fromkeys(r.profile_id for r in records))
        stored_consent = uow.consent.get(pids) if pids else {}
        batch.consent = {pid: stored_consent.get(pid) for pid in pids}
        for record in uow.journeys.for_profiles(pids):
            batch.states[(record.journey, record.profile_id)] = JourneyState.from_record(record)
        entries = self._views.profiles.for_writer(pids)
        for record in records:
            key = (record.journey, record.profile_id)
            journey = journeys.get(record.journey)
            state = batch.states.get(key)
            if state is None or state.due_at is None:
                continue
            entry = entries.get(record.profile_id)
            if journey is None or entry is None or entry.profile is None:
                state.due_at = None  # journey removed or person gone: nothing to wait for
                batch.states[key] = state
                batch.dirty.add(key)
                continue
            cache: dict[str, bool] = {}
            membership = entry.membership or frozenset()
            guard = 0
            while state is not None and state.due_at is not None and state.due_at <= now:
                due = state.due_at
                ctx = self._context(
                    uow, batch, journey, record.profile_id, entry.profile, membership, due, cache
                )
                stepped = step(state, Tick(due), journey, ctx, record.profile_id)
                state = self._apply(batch, journey, stepped, key)
                guard += 1
                if guard > 100:
                    break
        self._write(uow, batch)
        remaining = len(records) >= limit
        if not remaining:
            next_due = uow.journeys.next_due()

            def known() -> None:
                with self._lock:
                    self._next_due, self._due_known = next_due, True

            uow.on_commit(known)
        return len(records)

    def tick(self) -> int:
        """Step every state due by now (the ticker and the simulator call this); returns how
        many states were stepped."""
        total = 0
        while True:
            now = self.now()
            if not self._is_due(now):
                return total
            done = self._storage.write(partial(self._run_due_job, now))
            total += done
            if done < DUE_BATCH:
                return total

    def _run_due_job(self, now: datetime, uow: UnitOfWork) -> int:
        return self.run_due(uow, now)

    def _write(self, uow: UnitOfWork, batch: _Batch) -> None:
        if batch.dirty:
            records = [
                state.to_record()
                for key in sorted(batch.dirty)
                if (state := batch.states.get(key)) is not None
            ]
            uow.journeys.put(records)
            soonest = min((r.due_at for r in records if r.due_at is not None), default=None)
            if soonest is not None:

                def sooner() -> None:
                    with self._lock:
                        if self._next_due is None or soonest < self._next_due:
                            self._next_due = soonest

                uow.on_commit(sooner)
        if batch.deliveries:
            uow.outbox.add(batch.deliveries)
            for listener in self.delivery_listeners:
                uow.on_commit(listener)
        for journey_key, steps in batch.counts.items():
            name = COUNTS_KEY + journey_key
            doc = uow.config.get(name) or {}
            for step_id, metrics in steps.items():
                bucket = doc.setdefault(step_id, {})
                for metric, delta in metrics.items():
                    bucket[metric] = int(bucket.get(metric, 0)) + delta
            uow.config.put(name, doc)
        stored = [e for e in batch.exposures if uow.exposures.insert(e)]
        if stored:
            views = self._views
            listeners = list(self.exposure_listeners)

            def publish() -> None:
                views.exposures.publish(stored)
                for listener in listeners:
                    listener(stored)

            uow.on_commit(publish)

    # -- reads -----------------------------------------------------------------------------
    def counts(self, key: str) -> dict[str, dict[str, int]]:
        return dict(self._storage.config.get(COUNTS_KEY + key) or {})

    def summaries(self) -> list[dict[str, Any]]:
        return [self._summary(j) for j in self.journeys()]

    def _summary(self, journey: CompiledJourney) -> dict[str, Any]:
        config = journey.config
        total = self.counts(config.key).get("_journey", {})
        return {
            "key": config.key,
            "name": config.name,
            "status": config.status,
            "template": config.template,
            "trigger": config.trigger.model_dump(exclude_none=True),
            "consent": config.consent,
            "holdout_percent": config.holdout_percent,
            "experiment": journey.experiment.key if journey.experiment is not None else None,
            "entered": int(total.get("entered", 0)),
            "holdout": int(total.get("holdout", 0)),
            "converted": int(total.get("converted", 0)),
            "exited": int(total.get("exited", 0)),
            "in_journey": int(total.get("entered", 0)) - int(total.get("exited", 0)),
        }

    def show(self, key: str) -> dict[str, Any]:
        from loopwise.errors import NotFound

        journey = next((j for j in self.journeys() if j.key == key), None)
        if journey is None:
            known = ", ".join(j.key for j in self.journeys()) or "none"
            raise NotFound(f'No journey "{key}". Journeys: {known}.', field="key")
        counts = self.counts(key)
        steps = []
        for compiled_step in journey.steps:
            bucket = counts.get(compiled_step.id, {})
            steps.append(
                {
                    "id": compiled_step.id,
                    "kind": compiled_step.kind,
                    "action": compiled_step.step.action,
                    **{metric: int(bucket.get(metric, 0)) for metric in METRICS},
                }
            )
        return {
            **self._summary(journey),
            "description": journey.config.description,
            "steps": steps,
            "definition": journey.config.model_dump(mode="json", by_alias=True, exclude_none=True),
        }

    def history(self, profile_ids: Iterable[str]) -> list[dict[str, Any]]:
        """A person's journeys (state and history) and their deliveries, for the profile view
        and the export."""
        ids = list(profile_ids)
        out = []
        for record in self._storage.journeys.for_profiles(ids):
            state = JourneyState.from_record(record)
            if state.entries == 0 and not state.history:
                continue  # only watched (inactivity), never entered
            out.append(state.view())
        deliveries = [
            delivery_view(d) for pid in ids for d in self._storage.outbox.for_profile(pid)
        ]
        return [{"journeys": out, "deliveries": deliveries}]

    def drop_withdrawn(self, profile_ids: Iterable[str], categories: set[str]) -> int:
        """Drop the pending deliveries that need one of ``categories`` (consent withdrawn)."""
        ids = list(profile_ids)

        def job(uow: UnitOfWork) -> int:
            dropped = 0
            for pid in ids:
                for d in uow.outbox.for_profile(pid):
                    if d.status == PENDING and d.payload.get("consent") in categories:
                        reason = f"{d.payload.get('consent')} consent withdrawn"
                        uow.outbox.update(replace(d, status=DROPPED, last_error=reason))
                        dropped += 1
            return dropped

        return self._storage.write(job)

    def outbox(self, status: str | None, limit: int) -> dict[str, Any]:
        counts = {name: 0 for name in STATUSES} | self._storage.outbox.counts()
        document: dict[str, Any] = {"counts": counts}
        if status is not None:
            document["deliveries"] = [
                delivery_view(d) for d in self._storage.outbox.list(status, limit)
            ]
        return document

    def retry(self, delivery_id: int) -> dict[str, Any]:
        from loopwise.errors import NotFound
        from loopwise.journeys.delivery import retry_now

        if not retry_now(self._storage, delivery_id, system_clock()):
            raise NotFound(
                f"No dead delivery {delivery_id}; list them with GET /v1/admin/outbox?status=dead.",
                field="delivery_id",
            )
        found = self._storage.outbox.get(delivery_id)
        assert found is not None
        for listener in self.delivery_listeners:
            listener()
        return delivery_view(found)

    # -- the ticker ------------------------------------------------------------------------
    def start(self, every_seconds: float = 1.0) -> None:
        if self._ticker is None:
            self._ticker = _Ticker(self, every_seconds)
            self._ticker.start()

    def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.stop()
            self._ticker = None


def _without(
    totals: dict[str, tuple[float, float]], later: dict[str, tuple[float, float]]
) -> dict[str, tuple[float, float]]:
    """``totals`` (the profile's, after this batch) less what the batch added after entry:
    the covariate is what happened before the exposure."""
    out = dict(totals)
    for name, (count, amount) in later.items():
        have_count, have_amount = out.get(name, (0.0, 0.0))
        left = (max(0.0, have_count - count), max(0.0, have_amount - amount))
        if left == (0.0, 0.0):
            out.pop(name, None)
        else:
            out[name] = left
    return out


def delivery_view(d: Delivery) -> dict[str, Any]:
    return {
        "id": d.id,
        "key": d.key,
        "kind": d.kind,
        "type": d.payload.get("type") or d.payload.get("action"),
        "status": d.status,
        "attempts": d.attempts,
        "created_at": isoformat(d.created_at),
        "next_attempt_at": isoformat(d.next_attempt_at),
        "done_at": isoformat(d.done_at) if d.done_at is not None else None,
        "last_error": d.last_error,
        "endpoint": d.payload.get("endpoint"),
        "journey": d.payload.get("journey"),
        "step": d.payload.get("step"),
        "segment": d.payload.get("segment"),
        "result": d.payload.get("result"),
    }


class _Ticker:
    def __init__(self, service: JourneyService, every: float) -> None:
        self._service = service
        self._every = every
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="loopwise-journeys", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        while not self._stopped.wait(self._every):
            try:
                self._service.tick()
            except Exception as exc:  # the next round may succeed (database back)
                log.warning("journey tick failed: %s", type(exc).__name__)

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
