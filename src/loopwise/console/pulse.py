"""Traffic right now, from this process's Prometheus metrics: events/s, decisions/s and decide's
p99 over the last minute.

Counters only ever grow, so a rate is the difference of two readings over their time apart; a
percentile over a window is read from the difference of two histogram readings (bucket counts),
interpolated inside the bucket it falls in, as Prometheus' ``histogram_quantile`` does. A
reading is taken at most every ``MIN_GAP`` seconds, by a background tick and by each read.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from loopwise.api.metrics import DURATION_BUCKETS, Metrics

WINDOW_SECONDS = 60.0
MIN_GAP = 2.0
TICK_SECONDS = 5.0
DECIDE_ROUTE = "/v1/decide"


@dataclass(frozen=True, slots=True)
class Reading:
    at: float
    events: float
    decisions: float
    buckets: tuple[float, ...]  # cumulative decide counts per DURATION_BUCKETS bound, then +Inf


@dataclass(frozen=True, slots=True)
class Rates:
    seconds: float  # the window actually covered
    events_per_second: float
    decisions_per_second: float
    decide_p99_ms: float | None  # None without decisions in the window


def quantile(q: float, bounds: tuple[float, ...], counts: tuple[float, ...]) -> float | None:
    """The ``q`` quantile of a histogram given cumulative ``counts`` per upper ``bounds`` (the
    last count is +Inf's)."""
    total = counts[-1]
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for bound, cumulative in zip((*bounds, float("inf")), counts, strict=True):
        if cumulative >= rank:
            if bound == float("inf"):
                return lower  # beyond the largest bound: the largest bound is what is known
            inside = cumulative - below
            share = (rank - below) / inside if inside else 1.0
            return lower + (bound - lower) * share
        lower, below = bound, cumulative
    return lower


class Pulse:
    def __init__(self, metrics: Metrics, now: Callable[[], float] = time.monotonic) -> None:
        self._metrics = metrics
        self._now = now
        self._readings: deque[Reading] = deque(maxlen=int(10 * WINDOW_SECONDS / MIN_GAP))
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._tick, name="loopwise-pulse", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stopped.set()

    def _tick(self) -> None:
        while not self._stopped.wait(TICK_SECONDS):
            self.read()

    def _value(self, name: str, labels: dict[str, str] | None = None) -> float:
        return self._metrics.registry.get_sample_value(name, labels) or 0.0

    def read(self) -> Reading:
        at = self._now()
        with self._lock:
            if self._readings and at - self._readings[-1].at < MIN_GAP:
                return self._readings[-1]
        bounds = [*(str(float(b)) for b in DURATION_BUCKETS), "+Inf"]
        reading = Reading(
            at=at,
            events=self._value("loopwise_events_accepted_total"),
            decisions=self._value("loopwise_decisions_total"),
            buckets=tuple(
                self._value(
                    "loopwise_http_request_duration_seconds_bucket",
                    {"route": DECIDE_ROUTE, "le": le},
                )
                for le in bounds
            ),
        )
        with self._lock:
            self._readings.append(reading)
        return reading

    def rates(self, window: float = WINDOW_SECONDS) -> Rates:
        latest = self.read()
        with self._lock:
            older = [r for r in self._readings if latest.at - r.at <= window and r is not latest]
        if not older:
            return Rates(0.0, 0.0, 0.0, None)
        first = older[0]
        seconds = latest.at - first.at
        counts = tuple(b - a for a, b in zip(first.buckets, latest.buckets, strict=True))
        p99 = quantile(0.99, DURATION_BUCKETS, counts)
        return Rates(
            seconds=seconds,
            events_per_second=(latest.events - first.events) / seconds if seconds else 0.0,
            decisions_per_second=(latest.decisions - first.decisions) / seconds if seconds else 0.0,
            decide_p99_ms=None if p99 is None else p99 * 1000,
        )
