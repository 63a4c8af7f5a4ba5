"""Incremental item statistics: popularity, per-segment popularity, trending, co-occurrence.

The engine calls :meth:`ItemStats.observe` for every new event; strategies query it on the hot
decide path. Decayed scores are kept in a fixed reference frame: an event at time ``t`` adds
``w * 2**((t - origin) / half_life)``, so the *order* of items never changes as time passes, only
when events arrive. A sorted ranking can therefore be maintained in place (one bisect per update)
and popularity queries never sort the catalog. Trending (a ratio of two decay rates, whose order
does drift with time) is cached and recomputed at most every ``trending_refresh_events``
observations or when the cache is older than ``trending_max_age_seconds`` (1 s) of event time.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from loopwise.clock import isoformat, parse_timestamp
from loopwise.events.kinds import EventKind

DAY = 86_400.0

# How much one event says about interest in an item. Impressions say nothing by themselves.
KIND_WEIGHTS: dict[EventKind, float] = {
    EventKind.ITEM_VIEW: 1.0,
    EventKind.CLICK: 2.0,
    EventKind.ADD_TO_CART: 3.0,
    EventKind.PURCHASE: 5.0,
}

# Keep exponents small so floats never overflow; rebasing multiplies every value by one factor.
_MAX_EXPONENT = 60.0
SNAPSHOT_VERSION = 1


class DecayedScores:
    """Exponentially decayed sums per key, optionally with a live ranking (highest first)."""

    def __init__(self, half_life_seconds: float, *, ranked: bool = True) -> None:
        self.half_life = half_life_seconds
        self.origin: float | None = None
        self.values: dict[str, float] = {}
        self._ranked = ranked
        self._order: list[tuple[float, str]] = []  # (-value, key), ascending
        # bumped on every change of values or order: caches derived from the ranking key on it
        self.version = 0

    def add(self, key: str, weight: float, ts: float) -> None:
        if self.origin is None:
            self.origin = ts
        exponent = (ts - self.origin) / self.half_life
        if exponent > _MAX_EXPONENT:
            self._rebase(ts)
            exponent = 0.0
        increment = weight * 2.0**exponent
        old = self.values.get(key)
        new = increment if old is None else old + increment
        self.values[key] = new
        self.version += 1
        if self._ranked:
            if old is not None:
                index = bisect.bisect_left(self._order, (-old, key))
                del self._order[index]
            bisect.insort(self._order, (-new, key))

    def _rebase(self, ts: float) -> None:
        assert self.origin is not None
        factor = 2.0 ** (-(ts - self.origin) / self.half_life)
        self.values = {key: value * factor for key, value in self.values.items()}
        self._order = [(value * factor, key) for value, key in self._order]
        self.origin = ts
        self.version += 1

    def factor(self, ts: float) -> float:
        """Multiplier turning a stored value into its decayed value at ``ts``."""
        if self.origin is None:
            return 0.0
        return 2.0 ** (-(ts - self.origin) / self.half_life)

    def value(self, key: str, ts: float) -> float:
        return self.values.get(key, 0.0) * self.factor(ts)

    def total(self) -> int:
        return len(self.values)

    def slice(self, start: int, stop: int) -> list[tuple[float, str]]:
        return self._order[start:stop]

    def state(self) -> dict[str, Any]:
        return {"origin": self.origin, "values": dict(self.values)}

    def load(self, state: Mapping[str, Any]) -> None:
        origin = state.get("origin")
        self.origin = None if origin is None else float(origin)
        self.values = {str(k): float(v) for k, v in (state.get("values") or {}).items()}
        if self._ranked:
            self._order = sorted((-value, key) for key, value in self.values.items())
        self.version += 1


class ItemStats:
    """Live, decayed statistics over item interactions. An internal lock lets the ingest writer
    and the decide readers share one instance."""

    def __init__(
        self,
        half_life_days: float = 7.0,
        *,
        trending_short_days: float = 1.0,
        trending_long_days: float = 7.0,
        trending_min_volume: float = 3.0,
        trending_smoothing: float = 0.5,
        trending_refresh_events: int = 500,
        trending_max_age_seconds: float = 1.0,
        max_neighbours: int = 100,
    ) -> None:
        if half_life_days <= 0 or trending_short_days <= 0 or trending_long_days <= 0:
            raise ValueError("half-lives must be positive")
        self.half_life_days = half_life_days
        self._popular = DecayedScores(half_life_days * DAY)
        self._segments: dict[str, DecayedScores] = {}
        self._short = DecayedScores(trending_short_days * DAY, ranked=False)
        self._long = DecayedScores(trending_long_days * DAY, ranked=False)
        self._min_volume = trending_min_volume
        self._smoothing = trending_smoothing
        self._refresh_events = max(1, trending_refresh_events)
        self._trending_max_age = trending_max_age_seconds
        self._trending: list[tuple[str, float]] = []
        self._trending_at: float | None = None
        self._since_trending = 0
        self._neighbours: dict[str, dict[str, float]] = {}
        self._max_neighbours = max(1, max_neighbours)
        self.first_seen: dict[str, datetime] = {}
        self.observations = 0
        self._lock = threading.RLock()

    # -- writing ----------------------------------------------------------------------------

    def observe(
        self,
        kind: EventKind,
        item_ids: Sequence[str],
        at: datetime,
        segments: Sequence[str] = (),
        recent_items: Sequence[str] = (),
    ) -> None:
        """Account one event about ``item_ids`` by a user in ``segments`` who recently saw
        ``recent_items`` (newest first). Events of kinds without a weight are ignored."""
        weight = KIND_WEIGHTS.get(kind, 0.0)
        if weight <= 0 or not item_ids:
            return
        ts = at.timestamp()
        with self._lock:
            self.observations += 1
            self._since_trending += 1
            for item_id in item_ids:
                seen = self.first_seen.get(item_id)
                if seen is None or at < seen:  # the earliest, whatever order events come in
                    self.first_seen[item_id] = at
                self._popular.add(item_id, weight, ts)
                self._short.add(item_id, weight, ts)
                self._long.add(item_id, weight, ts)
                for segment in segments:
                    scores = self._segments.get(segment)
                    if scores is None:
                        scores = self._segments[segment] = DecayedScores(self.half_life_days * DAY)
                    scores.add(item_id, weight, ts)
            self._co_occur(item_ids, recent_items, weight)

    def _co_occur(self, item_ids: Sequence[str], recent: Sequence[str], weight: float) -> None:
        partners = list(dict.fromkeys([*item_ids, *recent]))
        for item_id in dict.fromkeys(item_ids):
            for other in partners:
                if other != item_id:
                    self._link(item_id, other, weight)
                    if other not in item_ids:
                        self._link(other, item_id, weight)

    def _link(self, a: str, b: str, weight: float) -> None:
        neighbours = self._neighbours.setdefault(a, {})
        neighbours[b] = neighbours.get(b, 0.0) + weight
        if len(neighbours) > self._max_neighbours + self._max_neighbours // 4:
            keep = sorted(neighbours.items(), key=lambda kv: (-kv[1], kv[0]))
            self._neighbours[a] = dict(keep[: self._max_neighbours])

    # -- checkpoints --------------------------------------------------------------------------
    @property
    def lock(self) -> threading.RLock:
        """Held while observing: hold it to read a snapshot and a position consistently."""
        return self._lock

    def snapshot(self) -> dict[str, Any]:
        """Everything the statistics hold, JSON-safe (a checkpoint's content). Taken under the
        lock, so it is one consistent state even while events are being observed."""
        with self._lock:
            return {
                "v": SNAPSHOT_VERSION,
                "settings": self._settings(),
                "popular": self._popular.state(),
                "segments": {key: scores.state() for key, scores in self._segments.items()},
                "short": self._short.state(),
                "long": self._long.state(),
                "neighbours": {key: dict(n) for key, n in self._neighbours.items()},
                "first_seen": {key: isoformat(at) for key, at in self.first_seen.items()},
                "observations": self.observations,
            }

    def restore(self, state: Mapping[str, Any]) -> bool:
        """Load a snapshot taken with the same settings; False (and nothing loaded) when it is of
        another version or settings (its values would be in another reference frame)."""
        if state.get("v") != SNAPSHOT_VERSION or state.get("settings") != self._settings():
            return False
        with self._lock:
            self._popular.load(state["popular"])
            self._segments = {}
            for key, scores_state in (state.get("segments") or {}).items():
                scores = DecayedScores(self.half_life_days * DAY)
                scores.load(scores_state)
                self._segments[str(key)] = scores
            self._short.load(state["short"])
            self._long.load(state["long"])
            self._neighbours = {
                str(k): {str(o): float(w) for o, w in n.items()}
                for k, n in (state.get("neighbours") or {}).items()
            }
            self.first_seen = {}
            for key, value in (state.get("first_seen") or {}).items():
                at = parse_timestamp(value)
                if at is not None:
                    self.first_seen[str(key)] = at
            self.observations = int(state.get("observations", 0))
            self._trending_at = None
        return True

    def _settings(self) -> list[float]:
        return [
            self.half_life_days,
            self._short.half_life,
            self._long.half_life,
            float(self._max_neighbours),
        ]

    # -- reading ----------------------------------------------------------------------------

    @property
    def empty(self) -> bool:
        return self._popular.total() == 0

    def segments(self) -> list[str]:
        """Segments that have popularity data."""
        with self._lock:
            return sorted(self._segments)

    def segment_volume(self, segment: str) -> int:
        """Distinct items with activity in a segment (0 when unknown)."""
        scores = self._segments.get(segment)
        return scores.total() if scores is not None else 0

    def score(self, item_id: str, at: datetime, segment: str | None = None) -> float:
        scores = self._popular if segment is None else self._segments.get(segment)
        if scores is None:
            return 0.0
        with self._lock:
            return scores.value(item_id, at.timestamp())

    def scores(
        self, item_ids: Sequence[str], at: datetime, segment: str | None = None
    ) -> dict[str, float]:
        """Decayed popularity of many items at once (0 for items without activity)."""
        scores = self._popular if segment is None else self._segments.get(segment)
        if scores is None:
            return dict.fromkeys(item_ids, 0.0)
        with self._lock:
            factor = scores.factor(at.timestamp())
            values = scores.values
            return {item_id: values.get(item_id, 0.0) * factor for item_id in item_ids}

    def iter_popular(
        self, at: datetime, segment: str | None = None, chunk: int = 64
    ) -> Iterator[tuple[str, float]]:
        """Items by decayed popularity at ``at``, highest first, lazily (stop when you have
        enough). An unknown segment yields nothing."""
        scores = self._popular if segment is None else self._segments.get(segment)
        if scores is None:
            return
        ts = at.timestamp()
        start = 0
        while True:
            with self._lock:
                part = scores.slice(start, start + chunk)
                factor = scores.factor(ts)
            if not part:
                return
            for negative, item_id in part:
                yield item_id, -negative * factor
            start += chunk

    def ranking(self) -> tuple[tuple[object, int], list[tuple[float, str]]]:
        """The overall popularity ranking as it stands: its :meth:`ranking_key` and its
        ``(-stored value, item id)`` pairs, highest first (a copy). ``-stored * factor`` (see
        :meth:`popular_factor`) is the decayed popularity :meth:`iter_popular` yields, to the
        same float."""
        with self._lock:
            scores = self._popular
            return (scores, scores.version), scores.slice(0, len(scores.values))

    def ranking_key(self) -> tuple[object, int]:
        """Changes whenever the overall popularity ranking (or its stored values) does."""
        scores = self._popular
        return scores, scores.version

    def popular_factor(self, at: datetime) -> float:
        """The multiplier turning a stored popularity value into its decayed value at ``at``."""
        with self._lock:
            return self._popular.factor(at.timestamp())

    def popular(
        self, at: datetime, segment: str | None = None, limit: int = 100
    ) -> list[tuple[str, float]]:
        """The ``limit`` most popular items (overall or within one segment) with their scores."""
        result = []
        for pair in self.iter_popular(at, segment, chunk=max(1, limit)):
            result.append(pair)
            if len(result) >= limit:
                break
        return result

    def trending(self, at: datetime, limit: int = 100) -> list[tuple[str, float]]:
        """Items whose short-window rate beats their long-window rate, strongest rise first.

        Score = (short rate + s) / (long rate + s) with rates per day and smoothing ``s``; only
        items with at least ``trending_min_volume`` weighted events in the long window and a
        ratio above 1 qualify.
        """
        ts = at.timestamp()
        with self._lock:
            stale = (
                self._trending_at is None
                or self._since_trending >= self._refresh_events
                or abs(ts - self._trending_at) > self._trending_max_age
            )
            if stale:
                self._trending = self._compute_trending(ts)
                self._trending_at = ts
                self._since_trending = 0
            return self._trending[:limit]

    def _compute_trending(self, ts: float) -> list[tuple[str, float]]:
        short_factor = self._short.factor(ts)
        long_factor = self._long.factor(ts)
        # A decayed sum with half-life h approximates rate * h / ln 2; convert both to per day.
        short_rate = math.log(2) / (self._short.half_life / DAY)
        long_rate = math.log(2) / (self._long.half_life / DAY)
        scored = []
        for item_id, long_value in self._long.values.items():
            volume = long_value * long_factor
            if volume < self._min_volume:
                continue
            short = self._short.values.get(item_id, 0.0) * short_factor * short_rate
            long = volume * long_rate
            ratio = (short + self._smoothing) / (long + self._smoothing)
            if ratio > 1.0:
                scored.append((item_id, ratio))
        scored.sort(key=lambda pair: (-pair[1], pair[0]))
        return scored

    def together(self, item_ids: Sequence[str], limit: int = 100) -> list[tuple[str, float]]:
        """Items most often seen/bought together with ``item_ids`` (newest first: earlier anchors
        weigh more). The anchors themselves are left out."""
        anchors = list(dict.fromkeys(item_ids))
        totals: dict[str, float] = {}
        with self._lock:
            for rank, anchor in enumerate(anchors):
                weight = 1.0 / (1.0 + rank)
                for other, count in self._neighbours.get(anchor, {}).items():
                    totals[other] = totals.get(other, 0.0) + count * weight
        for anchor in anchors:
            totals.pop(anchor, None)
        ranked = sorted(totals.items(), key=lambda pair: (-pair[1], pair[0]))
        return ranked[:limit]
