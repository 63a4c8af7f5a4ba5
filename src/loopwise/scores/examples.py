"""Point-in-time training examples from the event log.

The log is folded from nothing, in log order, by the one fold live ingest runs
(:func:`loopwise.projection.fold.fold_event`: identity resolution, merges, the reducer), so the
profile a person has right after an event is exactly the profile the live engine had then. Some
of those moments are sampled (seeded, at most ``max_per_person`` per person); each becomes an
example whose features are :func:`~loopwise.scores.features.scoring_attributes` of that state —
the function serving calls on the live profile — and whose labels look only at what the person
did in ``(t, t + horizon]``, ``t`` being the state's last event. Examples whose window reaches
past the end of the log are left out of that score (their label is unknown, not negative).
"""

from __future__ import annotations

import bisect
import random
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from loopwise.catalog.items import Item
from loopwise.events.kinds import EventKind, classify, item_ids
from loopwise.events.schema import Event
from loopwise.profiles.model import Profile
from loopwise.projection.effects import ProfilesMerged
from loopwise.projection.fold import FoldContext, fold_event
from loopwise.projection.snapshot import Snapshot
from loopwise.scores.features import scoring_attributes
from loopwise.scores.spec import ScoreDefinition, ScoreSettings
from loopwise.storage.records import LoggedEvent
from loopwise.workspace.compiled import CompiledWorkspace

#: not something a person did (no activity for churn, never a label)
NOT_ACTIVITY = frozenset({EventKind.IDENTIFY, EventKind.ALIAS, EventKind.GROUP})
#: attributes features never read: left out of stored examples to keep them small
_UNUSED = (
    "id",
    "user_id",
    "anonymous_ids",
    "traits",
    "pages_7d",
    "pages_30d",
    "page_paths_7d",
    "page_paths_30d",
    "campaign",
    "first_seen",
)


class NoSegments(CompiledWorkspace):
    """The workspace as the training fold sees it: memberships are not needed to rebuild
    profiles (they never change a profile), so none are evaluated."""

    def membership(self, profile: Profile) -> frozenset[str]:
        return frozenset()


@dataclass(slots=True)
class Examples:
    """Sampled moments: who, when (``t``), the attributes at ``t``, the person's segments at
    ``t``, and per score the label (1, 0, or NaN when the window is not over yet)."""

    persons: list[str] = field(default_factory=list)
    at: list[datetime] = field(default_factory=list)
    attributes: list[dict[str, Any]] = field(default_factory=list)
    segments: list[tuple[str, ...]] = field(default_factory=list)
    labels: dict[str, np.ndarray] = field(default_factory=dict)
    first_event: datetime | None = None
    log_end: datetime | None = None
    events: int = 0
    people: int = 0

    def __len__(self) -> int:
        return len(self.persons)

    def times(self) -> np.ndarray:
        return np.array([t.timestamp() for t in self.at], dtype=np.float64)


def event_categories(event: Event, catalog: Mapping[str, Item]) -> set[str]:
    """Categories an event is about: its properties' ``category``/``categories`` (also in
    ``products``) and its items' catalog categories."""
    found: set[str] = set()
    props = event.properties
    lines = props.get("products")
    entries = (
        [props, *(line for line in lines if isinstance(line, dict))]
        if isinstance(lines, list)
        else [props]
    )
    for entry in entries:
        for key in ("category", "categories"):
            value = entry.get(key)
            values = value if isinstance(value, list) else [value]
            found.update(v for v in values if isinstance(v, str) and v)
    for item_id in item_ids(event):
        item = catalog.get(item_id)
        if item is not None:
            found.update(item.categories)
    return found


def matches(
    definition: ScoreDefinition, event: Event, kind: EventKind, categories: set[str]
) -> bool:
    """Whether ``event`` is one the definition's label counts."""
    if definition.event is None:
        return False
    wanted = definition.event
    if kind.value != wanted and event.event != wanted:
        return False
    return definition.category is None or definition.category in categories


class Timelines:
    """Per person, the sorted times of their activity and of each score's label events."""

    def __init__(self, definitions: Iterable[ScoreDefinition]) -> None:
        self.definitions = [d for d in definitions if d.event is not None]
        self.activity: dict[str, list[float]] = {}
        self.labelled: dict[tuple[str, str], list[float]] = {}

    def add(self, person: str, event: Event, kind: EventKind, catalog: Mapping[str, Item]) -> None:
        if kind in NOT_ACTIVITY:
            return
        at = event.timestamp.timestamp()
        self.activity.setdefault(person, []).append(at)
        categories: set[str] | None = None
        for definition in self.definitions:
            if definition.category is not None and categories is None:
                categories = event_categories(event, catalog)
            if matches(definition, event, kind, categories or set()):
                self.labelled.setdefault((person, definition.key), []).append(at)

    def follow(self, merged_into: Mapping[str, str]) -> None:
        """Key every timeline by the person's final profile (after the log's merges), sorted."""
        activity: dict[str, list[float]] = {}
        for person, times in self.activity.items():
            activity.setdefault(_final(merged_into, person), []).extend(times)
        labelled: dict[tuple[str, str], list[float]] = {}
        for (person, key), times in self.labelled.items():
            labelled.setdefault((_final(merged_into, person), key), []).extend(times)
        for times in [*activity.values(), *labelled.values()]:
            times.sort()
        self.activity, self.labelled = activity, labelled

    def label(self, definition: ScoreDefinition, person: str, t: float) -> float:
        """1.0 / 0.0 from what happened in ``(t, t + horizon]``."""
        end = t + definition.horizon_days * 86_400.0
        times = (
            self.activity.get(person, [])
            if definition.inactive
            else self.labelled.get((person, definition.key), [])
        )
        i = bisect.bisect_right(times, t)
        happened = i < len(times) and times[i] <= end
        return float(not happened) if definition.inactive else float(happened)


def build_examples(
    logged: Callable[[], Iterable[LoggedEvent]],
    compiled: CompiledWorkspace,
    catalog: Mapping[str, Item],
    settings: ScoreSettings,
    *,
    sample_rate: float | None = None,
    log_end: datetime | None = None,
) -> Examples:
    """Examples from the log (``logged()`` iterates it in log order; it is read twice: once to
    count each person's events, once to fold). ``sample_rate`` (default: enough moments for
    ``settings.max_examples``) is the chance an activity event becomes a moment, lowered per
    person so that about ``max_per_person`` of their events do, spread over their whole history;
    ``compiled`` gives the segments per example (for per-segment reports)."""
    per_person: Counter[str] = Counter(
        entry.profile_id for entry in logged() if classify(entry.event) not in NOT_ACTIVITY
    )
    total = sum(per_person.values())
    rate = sample_rate
    if rate is None:
        wanted = settings.max_examples * 1.5  # some fall to censoring
        rate = 1.0 if not total else min(1.0, wanted / total)
    chance = {
        person: min(rate, settings.max_per_person / count) for person, count in per_person.items()
    }
    context = FoldContext(
        NoSegments(compiled.workspace, compiled.strategies, compiled.clusters), catalog
    )
    rng = random.Random(settings.seed)
    snapshot = Snapshot.empty()
    timelines = Timelines(settings.definitions)
    merged_into: dict[str, str] = {}
    out = Examples()
    settings_profiles = compiled.settings
    for entry in logged():
        event = entry.event
        out.events += 1
        if out.first_event is None or event.timestamp < out.first_event:
            out.first_event = event.timestamp
        if out.log_end is None or event.timestamp > out.log_end:
            out.log_end = event.timestamp
        pid, effects = fold_event(snapshot, event, context)
        for effect in effects:
            if isinstance(effect, ProfilesMerged):
                merged_into[effect.source] = effect.target
        kind = classify(event)
        timelines.add(pid, event, kind, catalog)
        if kind in NOT_ACTIVITY or rng.random() >= chance.get(entry.profile_id, rate):
            continue
        profile = snapshot.profiles.get(pid)
        if profile is None:
            continue
        attributes = scoring_attributes(profile, settings_profiles)
        for key in _UNUSED:
            attributes.pop(key, None)
        out.persons.append(pid)
        out.at.append(profile.last_seen)
        out.attributes.append(attributes)
        out.segments.append(tuple(sorted(compiled.membership(profile))))
    if log_end is not None:
        out.log_end = log_end
    out.persons = [_final(merged_into, pid) for pid in out.persons]
    out.people = len({p for p, profile in snapshot.profiles.items() if profile is not None})
    timelines.follow(merged_into)
    end = out.log_end.timestamp() if out.log_end is not None else 0.0
    for definition in settings.definitions:
        horizon = timedelta(days=definition.horizon_days).total_seconds()
        labels = np.full(len(out.persons), np.nan)
        for i, (person, at) in enumerate(zip(out.persons, out.at, strict=True)):
            t = at.timestamp()
            if t + horizon <= end:
                labels[i] = timelines.label(definition, person, t)
        out.labels[definition.key] = labels
    return out


def _final(merged_into: Mapping[str, str], pid: str) -> str:
    seen: set[str] = set()
    while pid in merged_into and pid not in seen:
        seen.add(pid)
        pid = merged_into[pid]
    return pid
