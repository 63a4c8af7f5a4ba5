"""Segment sizes for the console: counted over every stored profile in the background, kept
current between counts by the projector's segment changes, and a random sample of profiles to
estimate a condition being edited before it is saved. The same pass counts effective consent
per category and region (explicit choices, else the regional default).

A count decodes every stored profile and evaluates the segments on the state of its last event
(``CompiledWorkspace.membership``, the definition live ingest uses), so the committed
``SegmentsChanged`` effects that arrive after it move the sizes exactly as membership moves. It runs
in the console's background thread (:mod:`loopwise.console.background`): when the console is
first used, every ``REFRESH_SECONDS`` and soon after the segment definitions change; pages read the
last result and never wait for a count. Sizes over time come from the segment history (entries
minus exits per day), anchored at today's size.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from loopwise.clock import Clock
from loopwise.privacy.consent import EMPTY, granted, region_of
from loopwise.privacy.service import PrivacyService
from loopwise.privacy.settings import PrivacySettings
from loopwise.profiles.service import ProfileService
from loopwise.projection.effects import Effect, SegmentsChanged
from loopwise.workspace.compiled import CompiledWorkspace

SAMPLE_SIZE = 2000
SERIES_DAYS = 30
YIELD_EVERY = 500  # profiles between short sleeps, so a count never starves the request threads

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Sampled:
    """One sampled profile: its id, ``profile.*`` as of its last event, and its last context."""

    profile_id: str
    attributes: dict[str, Any]
    context: dict[str, Any]


@dataclass(slots=True)
class Count:
    """One pass over the stored profiles."""

    counted_at: datetime
    profiles: int
    seconds: float
    sizes: dict[str, int]
    pairs: dict[tuple[str, str], int]
    sample: list[Sampled]
    regions: dict[str, int] = field(default_factory=dict)  # profiles per consent region
    consented: dict[tuple[str, str], int] = field(default_factory=dict)  # (region, category)
    series: dict[str, list[tuple[date, int]]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Estimate:
    """How many profiles a condition matches: exact when the sample is everyone."""

    matches: int  # in the sample
    sampled: int
    population: int
    low: int
    high: int
    examples: list[Sampled]

    @property
    def exact(self) -> bool:
        return self.sampled >= self.population

    @property
    def estimate(self) -> int:
        if self.sampled == 0:
            return 0
        return round(self.matches / self.sampled * self.population)


def wilson(matches: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion."""
    if n == 0:
        return 0.0, 1.0
    p = matches / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    denominator = 1 + z * z / n
    return max(0.0, (centre - spread) / denominator), min(1.0, (centre + spread) / denominator)


class SegmentCensus:
    def __init__(
        self,
        profiles: ProfileService,
        compiled: Callable[[], CompiledWorkspace],
        privacy: PrivacyService,
        privacy_settings: Callable[[], PrivacySettings],
        clock: Clock,
        *,
        seed: int | None = None,
    ) -> None:
        self._profiles = profiles
        self._compiled = compiled
        self._clock = clock
        self._rng = random.Random(seed)
        self._privacy = privacy
        self._privacy_settings = privacy_settings
        self._lock = threading.Lock()
        self._count: Count | None = None
        self._deltas: Counter[str] = Counter()
        self.on_definitions_changed: Callable[[], None] = lambda: None
        self.running = False

    # -- listeners -----------------------------------------------------------------------------
    def on_effects(self, effects: Sequence[Effect]) -> None:
        """After commit: segment entries and exits move the sizes until the next count."""
        moved: Counter[str] = Counter()
        for effect in effects:
            if isinstance(effect, SegmentsChanged):
                moved.update(effect.entered)
                moved.subtract(effect.left)
        if moved:
            with self._lock:
                self._deltas.update(moved)

    def definitions_changed(self, before: CompiledWorkspace, after: CompiledWorkspace) -> None:
        if before.registry.definitions != after.registry.definitions:
            self.on_definitions_changed()  # recount soon: a new segment has no size yet

    # -- counting ------------------------------------------------------------------------------
    def count_now(self) -> Count:
        """Count every stored profile now (blocking; the background thread calls it)."""
        self.running = True
        began = time.perf_counter()
        try:
            compiled = self._compiled()
            now = self._clock()
            sizes: Counter[str] = Counter()
            pairs: Counter[tuple[str, str]] = Counter()
            sample: list[Sampled] = []
            settings = self._privacy_settings()
            explicit = dict(self._privacy.consent_states())
            regions: Counter[str] = Counter()
            consented: Counter[tuple[str, str]] = Counter()
            with self._lock:
                self._deltas.clear()  # what arrives from now on moves this count
            seen = 0
            for profile in self._profiles.every_profile():
                # the state at the profile's own last event, as live ingest evaluates it
                # (CompiledWorkspace.membership): sizes, the sample and estimates agree
                attributes = compiled.profile_attributes(profile, profile.last_seen)
                membership = sorted(
                    compiled.registry.evaluate({"profile": attributes, "context": {}})
                )
                sizes.update(membership)
                for i, first in enumerate(membership):
                    for second in membership[i + 1 :]:
                        pairs[(first, second)] += 1
                seen += 1
                region = region_of(profile.country, settings)
                regions[region] += 1
                state = explicit.get(profile.id, EMPTY)
                for category in settings.consent_categories:
                    if granted(state, category, profile.country, settings):
                        consented[(region, category)] += 1
                # reservoir sampling: every profile has the same chance to be in the sample
                slot = seen - 1 if seen <= SAMPLE_SIZE else self._rng.randrange(seen)
                if slot < SAMPLE_SIZE:
                    row = Sampled(profile.id, attributes, profile.context_attributes())
                    if seen <= SAMPLE_SIZE:
                        sample.append(row)
                    else:
                        sample[slot] = row
                if seen % YIELD_EVERY == 0:
                    time.sleep(0.001)
            count = Count(
                counted_at=now,
                profiles=seen,
                seconds=time.perf_counter() - began,
                sizes=dict(sizes),
                pairs=dict(pairs),
                sample=sample,
                regions=dict(regions),
                consented=dict(consented),
            )
            count.series = self._series(count.sizes, now)
            with self._lock:
                self._count = count
            return count
        finally:
            self.running = False

    def _series(self, sizes: Mapping[str, int], now: datetime) -> dict[str, list[tuple[date, int]]]:
        """Daily sizes for the last ``SERIES_DAYS`` days: today's size minus the net entries
        recorded after each day."""
        first = now.date() - timedelta(days=SERIES_DAYS - 1)
        net: dict[str, Counter[date]] = defaultdict(Counter)
        since = datetime.combine(first, datetime.min.time(), tzinfo=now.tzinfo)
        for _, change in self._profiles.segment_changes(since):
            net[change.segment][change.at.date()] += 1 if change.change == "entered" else -1
        days = [first + timedelta(days=i) for i in range(SERIES_DAYS)]
        series: dict[str, list[tuple[date, int]]] = {}
        for segment, size in sizes.items():
            moves = net.get(segment, Counter())
            points: list[tuple[date, int]] = []
            later = 0
            for day in reversed(days):
                points.append((day, max(0, size - later)))
                later += moves.get(day, 0)
            series[segment] = points[::-1]
        return series

    # -- reads ---------------------------------------------------------------------------------
    @property
    def last(self) -> Count | None:
        return self._count

    def sizes(self) -> dict[str, int] | None:
        """Every profile segment's live size (None before the first count)."""
        with self._lock:
            count, deltas = self._count, dict(self._deltas)
        if count is None:
            return None
        keys = set(count.sizes) | set(deltas)
        return {k: max(0, count.sizes.get(k, 0) + deltas.get(k, 0)) for k in keys}

    def overlap(self, first: str, second: str) -> int | None:
        count = self._count
        if count is None:
            return None
        if first == second:
            return count.sizes.get(first, 0)
        a, b = sorted((first, second))
        return count.pairs.get((a, b), 0)

    def estimate(
        self, matcher: Callable[[Mapping[str, Any]], bool], *, examples: int = 8
    ) -> Estimate | None:
        """How many profiles ``matcher`` (a compiled condition over ``{"profile", "context"}``,
        the context being each profile's last one) matches, from the sample."""
        count = self._count
        if count is None:
            return None
        found: list[Sampled] = []
        matches = 0
        for row in count.sample:
            try:
                hit = matcher({"profile": row.attributes, "context": row.context})
            except Exception:  # a condition that cannot be evaluated matches nobody
                hit = False
            if hit:
                matches += 1
                if len(found) < examples:
                    found.append(row)
        n, population = len(count.sample), max(count.profiles, len(count.sample))
        low, high = wilson(matches, n)
        if n >= population:
            low_n = high_n = matches
        else:
            low_n, high_n = math.floor(low * population), math.ceil(high * population)
        return Estimate(matches, n, population, low_n, high_n, found)
