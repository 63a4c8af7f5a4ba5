"""A circuit breaker: after ``failures`` consecutive failed calls the circuit opens and calls are
skipped (the caller shows its defaults) for ``reset_after`` seconds; then one trial call is let
through, and a success closes the circuit again. A page never waits on a Loopwise that is down."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class CircuitBreaker:
    def __init__(
        self,
        failures: int = 5,
        reset_after: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failures = failures
        self.reset_after = reset_after
        self._clock = clock
        self._lock = threading.Lock()
        self._count = 0
        self._opened_at: float | None = None

    @property
    def open(self) -> bool:
        with self._lock:
            return self._opened_at is not None and (
                self._clock() - self._opened_at < self.reset_after
            )

    def allow(self) -> bool:
        """Whether a call may go out now (closed, or half-open after ``reset_after``)."""
        with self._lock:
            if self._opened_at is None:
                return True
            if self._clock() - self._opened_at >= self.reset_after:
                self._opened_at = self._clock()  # one trial per period while half-open
                return True
            return False

    def succeeded(self) -> None:
        with self._lock:
            self._count = 0
            self._opened_at = None

    def failed(self) -> None:
        with self._lock:
            self._count += 1
            if self._count >= self.failures:
                self._opened_at = self._clock()
