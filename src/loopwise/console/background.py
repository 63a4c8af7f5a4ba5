"""The console's one background thread: it runs the batch readers (segment census, ledger) when
the console is first used, every ``REFRESH_SECONDS`` after (longer when a round is slow, so the
counts never take more than a tenth of a core), and soon after someone asks (:meth:`wake`: the
segment definitions changed). Pages never wait for it: sizes stay current between rounds through
the live segment changes."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

REFRESH_SECONDS = 1800.0
# a round that takes long waits longer before the next (at most a tenth of the time counting)
BUSY_FACTOR = 10.0
log = logging.getLogger(__name__)


class Background:
    def __init__(
        self, jobs: Sequence[Callable[[], object]], refresh_seconds: float = REFRESH_SECONDS
    ) -> None:
        self._jobs = list(jobs)
        self._refresh = refresh_seconds
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._idle = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.rounds = 0

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="loopwise-console", daemon=True
                )
                self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()

    def wait_round(self, timeout: float) -> bool:
        """Wait until a round has finished (tests and benchmarks)."""
        return self._idle.wait(timeout)

    def _loop(self) -> None:
        while not self._stopped.is_set():
            self._wake.clear()
            began = time.monotonic()
            for job in self._jobs:
                try:
                    job()
                except Exception as exc:  # storage down: the next round may succeed
                    log.warning("console background job failed: %s", type(exc).__name__)
            self.rounds += 1
            self._idle.set()
            self._wake.wait(max(self._refresh, BUSY_FACTOR * (time.monotonic() - began)))
