"""The journey state machine: ``step(state, input, journey, context) -> Stepped``. Pure.

An input is an event of the person (:class:`EventInput`) or the clock reaching the state's due
time (:class:`Tick`). What the person's profile says, whether they consented, how many sends
they got across journeys and which holdout arm they hash into come in a :class:`Context` the
runner prepares; the machine reads nothing else, so the same inputs always give the same
state, actions and counts — which is what lets the runner record them in one unit of work.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from loopwise.journeys.compiled import HOLDOUT_ARM, CompiledJourney, CompiledStep
from loopwise.journeys.spec import QuietHours
from loopwise.journeys.state import ACTIVE, DONE, SENDS_LIMIT, WATCHING, JourneyState

SEND_ACTIONS = frozenset({"webhook"})  # what frequency caps and quiet hours apply to
MAX_STEPS_PER_INPUT = 1000  # a branch loop without a wait cannot spin forever


@dataclass(frozen=True, slots=True)
class EventInput:
    at: datetime
    type: str  # track, identify, page, ...
    name: str | None = None  # the track event's name
    entered: tuple[str, ...] = ()  # segments the person entered with this batch
    any_event: bool = True


@dataclass(frozen=True, slots=True)
class Tick:
    at: datetime


Input = EventInput | Tick


@dataclass(frozen=True, slots=True)
class Context:
    """What the runner knows about the person now."""

    attributes: Mapping[str, Any]  # {"profile": {...}, "segments": [...]}
    consented: bool
    arm: str  # the holdout arm the person hashes into (``journey`` without a holdout)
    timezone: str | None = None
    sends_day: int = 0  # sends across all journeys in the 24 h before now
    sends_week: int = 0
    repurchase_seconds: float | None = None  # wait: repurchase


@dataclass(frozen=True, slots=True)
class Action:
    kind: str  # webhook | set_trait | enter_segment | leave_segment | decide | journey.*
    journey: str
    step: str | None
    at: datetime
    step_config: Any = None  # the Step (params) for step actions
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Stepped:
    state: JourneyState | None
    actions: list[Action] = field(default_factory=list)
    # (step id or "", metric, delta): entered, waiting, sent, converted, exited, capped, ...
    counts: list[tuple[str, str, int]] = field(default_factory=list)
    changed: bool = False


def step(
    state: JourneyState | None,
    event: Input,
    journey: CompiledJourney,
    context: Context,
    profile_id: str,
) -> Stepped:
    out = Stepped(state=state.copy() if state is not None else None)
    run = _Run(journey, context, out)
    s = out.state
    at = event.at
    if isinstance(event, EventInput):
        if s is not None and s.status == ACTIVE:
            run.on_event(s, event)
        s = out.state
        if triggered(journey, event) and journey.running and (s is None or s.status != ACTIVE):
            run.try_enter(s, profile_id, at)
        s = out.state
        if journey.inactive_seconds is not None and event.any_event and journey.running:
            if s is None:
                s = out.state = JourneyState(journey.key, profile_id)
            if s.status != ACTIVE:
                s.status = s.status if s.status == DONE else WATCHING
                s.due_at = at + timedelta(seconds=journey.inactive_seconds)
                out.changed = True
    else:
        if s is None or s.due_at is None or s.due_at > at:
            return out
        if s.status == ACTIVE:
            run.on_due(s, at)
        elif journey.inactive_seconds is not None:
            s.due_at = None
            out.changed = True
            if journey.running:
                run.try_enter(s, profile_id, at)
        else:
            s.due_at = None
            out.changed = True
    return out


def triggered(journey: CompiledJourney, event: EventInput) -> bool:
    trigger = journey.config.trigger
    if trigger.event is not None:
        return event.type == "track" and event.name == trigger.event
    if trigger.segment_entered is not None:
        return trigger.segment_entered in event.entered
    return False


def quiet_until(at: datetime, quiet: QuietHours, zone: str | None) -> datetime | None:
    """When the quiet hours around ``at`` end (UTC), or None when ``at`` is not in them."""
    try:
        tz = ZoneInfo(zone) if zone else ZoneInfo(quiet.timezone)
    except (KeyError, ValueError):
        tz = ZoneInfo(quiet.timezone)
    local = at.astimezone(tz)
    sh, sm = map(int, quiet.start.split(":"))
    eh, em = map(int, quiet.end.split(":"))
    start, end = time(sh, sm), time(eh, em)
    now = local.time()
    if start == end:
        return None
    inside = start <= now < end if start < end else (now >= start or now < end)
    if not inside:
        return None
    day = local.date() if now < end else local.date() + timedelta(days=1)
    ends = datetime.combine(day, end, tzinfo=tz)
    return ends.astimezone(at.tzinfo)


class _Run:
    def __init__(self, journey: CompiledJourney, context: Context, out: Stepped) -> None:
        self.journey = journey
        self.context = context
        self.out = out
        self.sends_day = context.sends_day
        self.sends_week = context.sends_week

    def count(self, step: str, metric: str, delta: int = 1) -> None:
        self.out.counts.append((step, metric, delta))

    # -- entering and leaving --------------------------------------------------------------
    def try_enter(self, s: JourneyState | None, profile_id: str, at: datetime) -> None:
        journey = self.journey
        if s is not None and s.entries > 0:
            if not journey.config.reentry.allowed:
                return
            seconds = journey.reentry_seconds
            left = s.left_at
            if seconds is not None and left is not None and at < left + timedelta(seconds=seconds):
                return
        if not journey.entry(self.context.attributes):
            return
        if not self.context.consented:
            return
        if s is None:
            s = self.out.state = JourneyState(journey.key, profile_id)
        s.status = ACTIVE
        s.step = 0
        s.due_at = None
        s.waiting_for = s.waiting_at = None
        s.quiet = False
        s.arm = self.context.arm
        s.entries += 1
        s.entered_at = at
        s.left_at = None
        s.exit_reason = None
        s.converted = False
        s.visited = []
        s.note(at, "entered", arm=s.arm)
        self.out.changed = True
        self.count("", "entered")
        self.emit("journey.entered", None, at, arm=s.arm)
        if s.arm == HOLDOUT_ARM:
            self.count("", "holdout")
            self.leave(s, at, "holdout")
            return
        self.advance(s, at)

    def leave(self, s: JourneyState, at: datetime, reason: str) -> None:
        step_id = self.step_id(s)
        self.stop_waiting(s)
        s.status = DONE
        s.due_at = None
        s.left_at = at
        s.exit_reason = reason
        s.note(at, "exited", reason=reason, step=step_id)
        self.out.changed = True
        self.count(step_id or "", "exited")
        if reason != "holdout":
            self.emit("journey.exited", step_id, at, reason=reason)

    def emit(self, kind: str, step_id: str | None, at: datetime, **detail: Any) -> None:
        config = None
        if step_id is not None and step_id in self.journey.index:
            config = self.journey.steps[self.journey.index[step_id]].step
        self.out.actions.append(Action(kind, self.journey.key, step_id, at, config, detail))

    def step_id(self, s: JourneyState) -> str | None:
        steps = self.journey.steps
        return steps[s.step].id if s.step < len(steps) else None

    def stop_waiting(self, s: JourneyState) -> None:
        if s.waiting_at is not None:
            self.count(s.waiting_at, "waiting", -1)
            s.waiting_at = None
        s.waiting_for = None
        s.quiet = False

    def wait(self, s: JourneyState, step: CompiledStep, due: datetime) -> None:
        s.due_at = due
        s.waiting_at = step.id
        self.count(step.id, "waiting", 1)
        self.out.changed = True

    # -- inputs ----------------------------------------------------------------------------
    def on_event(self, s: JourneyState, event: EventInput) -> None:
        at = event.at
        conversion = self.journey.config.conversion_event
        if event.type == "track" and event.name == conversion and not s.converted:
            s.converted = True
            s.note(at, "converted")
            self.out.changed = True
            self.count("", "converted")
            for visited in s.visited:
                self.count(visited, "converted")
        if event.type == "track" and event.name in self.journey.exit_events:
            self.leave(s, at, f"event:{event.name}")
            return
        if s.waiting_for is not None and event.type == "track" and event.name == s.waiting_for:
            self.stop_waiting(s)
            s.due_at = None
            s.step += 1
            self.advance(s, at)
            return
        if self.exit_condition_holds():
            self.leave(s, at, "condition")

    def on_due(self, s: JourneyState, at: datetime) -> None:
        steps = self.journey.steps
        current = steps[s.step] if s.step < len(steps) else None
        quiet = s.quiet
        self.stop_waiting(s)
        s.due_at = None
        self.out.changed = True
        if current is None:
            self.advance(s, at)
        elif quiet:  # quiet hours over: the action step runs now
            self.advance(s, at, resume=True)
        elif current.kind == "wait_until":
            s.note(at, "timed_out", step=current.id)
            s.step = current.timeout if current.timeout is not None else s.step + 1
            self.advance(s, at)
        else:
            s.step += 1
            self.advance(s, at)

    def exit_condition_holds(self) -> bool:
        return any(condition(self.context.attributes) for condition in self.journey.exit_conditions)

    # -- running steps ---------------------------------------------------------------------
    def advance(self, s: JourneyState, at: datetime, *, resume: bool = False) -> None:
        steps = self.journey.steps
        for _ in range(MAX_STEPS_PER_INPUT):
            if self.exit_condition_holds():
                self.leave(s, at, "condition")
                return
            if s.step >= len(steps):
                self.leave(s, at, "completed")
                return
            current = steps[s.step]
            if not resume:
                s.visited.append(current.id)
                self.count(current.id, "entered")
            resume = False
            if current.kind == "wait":
                seconds = current.seconds
                if seconds is None:
                    seconds = self.context.repurchase_seconds or 30 * 86400.0
                self.wait(s, current, at + timedelta(seconds=seconds))
                return
            if current.kind == "wait_until":
                assert current.seconds is not None
                s.waiting_for = current.event
                self.wait(s, current, at + timedelta(seconds=current.seconds))
                return
            if current.kind == "branch":
                assert current.condition is not None
                took = current.condition(self.context.attributes)
                s.note(at, "branch", step=current.id, matched=took)
                nxt = current.then if took else current.otherwise
                s.step = nxt if nxt is not None else s.step + 1
                continue
            if not self.context.consented:
                self.leave(s, at, "consent")
                return
            action = current.step.action
            if action in SEND_ACTIONS:
                quiet = self.journey.quiet
                if quiet is not None:
                    ends = quiet_until(at, quiet, self.context.timezone)
                    if ends is not None:
                        s.quiet = True
                        s.note(at, "quiet_hours", step=current.id, until=ends.isoformat())
                        self.wait(s, current, ends)
                        return
                capped = self.capped(s, at)
                if capped is not None:
                    s.note(at, "capped", step=current.id, cap=capped)
                    self.count(current.id, "capped")
                    s.step += 1
                    continue
                s.sends.append(at)
                if len(s.sends) > SENDS_LIMIT:
                    del s.sends[: len(s.sends) - SENDS_LIMIT]
                self.sends_day += 1
                self.sends_week += 1
            s.note(at, "action", step=current.id, action=action)
            self.count(current.id, "sent")
            self.out.actions.append(
                Action(str(action), self.journey.key, current.id, at, current.step, {})
            )
            self.out.changed = True
            s.step += 1
        self.leave(s, at, "loop")

    def capped(self, s: JourneyState, at: datetime) -> str | None:
        caps = self.journey.config.caps
        if caps.per_journey is not None:
            since = at - timedelta(seconds=self.journey.cap_window_seconds)
            if sum(1 for t in s.sends if t > since) >= caps.per_journey:
                return "per_journey"
        if caps.all_journeys_per_day is not None and self.sends_day >= caps.all_journeys_per_day:
            return "all_journeys_per_day"
        if caps.all_journeys_per_week is not None and self.sends_week >= caps.all_journeys_per_week:
            return "all_journeys_per_week"
        return None
