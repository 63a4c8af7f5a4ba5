"""The item statistics view: popularity, per-segment popularity, trending and co-occurrence,
fed observations after commit, checkpointed with the log position it reflects.

Start-up loads the newest checkpoint and applies only the observations after it, so it does not
grow with history. A checkpoint is captured under the statistics' lock (one consistent state and
its position), encoded off the writer thread, then stored by a small write job that also drops the
observations it covers. Locking: ``ItemStats``' own re-entrant lock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

import orjson

from loopwise.decide.item_stats import ItemStats
from loopwise.events.kinds import EventKind
from loopwise.storage.records import Checkpoint, Observation
from loopwise.storage.stores import ItemStatsStoreReader

log = logging.getLogger(__name__)

CHECKPOINT_EVERY_OBSERVATIONS = 50_000
CHECKPOINT_EVERY_SECONDS = 300.0


class ItemStatsView:
    def __init__(self, stats: ItemStats) -> None:
        self.stats = stats
        self.position = 0  # the newest observation applied
        self.since_checkpoint = 0

    def apply(self, observations: Sequence[Observation], positions: Sequence[int]) -> None:
        with self.stats.lock:
            for observation, position in zip(observations, positions, strict=True):
                self._observe(observation)
                self.position = max(self.position, position)
            self.since_checkpoint += len(observations)

    def _observe(self, observation: Observation) -> None:
        self.stats.observe(
            EventKind(observation.kind),
            observation.item_ids,
            observation.at,
            segments=observation.segments,
            recent_items=observation.recent_items,
        )

    def replace(self, stats: ItemStats, position: int) -> None:
        """Serve a rebuilt state (a replay) from now on."""
        with self.stats.lock:
            self.stats.restore(stats.snapshot())
            self.position = position
            self.since_checkpoint = 0

    def fold_in(self, observations: Iterable[Observation]) -> int:
        """Apply stored observations (start-up's tail, a replay); returns how many."""
        count = 0
        with self.stats.lock:
            for observation in observations:
                self._observe(observation)
                self.position = max(self.position, observation.seq)
                count += 1
        return count

    def load(self, store: ItemStatsStoreReader, observe_time: Callable[[datetime], None]) -> int:
        """The checkpoint, then the tail after it. Returns the tail's length; a checkpoint of
        other settings (half-lives changed) is ignored and the tail alone is applied."""
        checkpoint = store.checkpoint()
        after = 0
        if checkpoint is not None:
            try:
                restored = self.stats.restore(orjson.loads(checkpoint.data))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                log.warning("item statistics checkpoint unreadable (%s); rebuilding", exc)
                restored = False
            if restored:
                after = checkpoint.position
                self.position = checkpoint.position
                observe_time(checkpoint.saved_at)
        tail = 0
        newest: datetime | None = None
        for observation in store.observations(after):
            with self.stats.lock:
                self._observe(observation)
                self.position = max(self.position, observation.seq)
            newest = observation.at if newest is None or observation.at > newest else newest
            tail += 1
        if newest is not None:
            observe_time(newest)
        self.since_checkpoint = tail
        return tail

    def capture(self, now: datetime) -> Checkpoint:
        """A consistent checkpoint of what is applied now."""
        with self.stats.lock:
            state = self.stats.snapshot()
            position = self.position
            self.since_checkpoint = 0
        return Checkpoint(position, orjson.dumps(state), now)

    def due(self, last_checkpoint: float) -> bool:
        if self.since_checkpoint >= CHECKPOINT_EVERY_OBSERVATIONS:
            return True
        return self.since_checkpoint > 0 and (
            time.monotonic() - last_checkpoint >= CHECKPOINT_EVERY_SECONDS
        )


class Checkpointer:
    """A daemon thread that checkpoints the view when due (and once more at shutdown)."""

    def __init__(
        self,
        view: ItemStatsView,
        save: Callable[[Checkpoint], None],
        clock: Callable[[], datetime],
        *,
        poll_seconds: float = 1.0,
    ) -> None:
        self._view = view
        self._save = save
        self._clock = clock
        self._poll = poll_seconds
        self._stopped = threading.Event()
        self._last = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name="loopwise-checkpoints", daemon=True)

    def start(self) -> Checkpointer:
        self._thread.start()
        return self

    def checkpoint_now(self) -> None:
        if self._view.since_checkpoint == 0 and self._view.position == 0:
            return
        self._save(self._view.capture(self._clock()))
        self._last = time.monotonic()

    def _loop(self) -> None:
        while not self._stopped.wait(self._poll):
            if not self._view.due(self._last):
                continue
            try:
                self.checkpoint_now()
            except Exception as exc:  # the next attempt may succeed (disk freed, ...)
                log.warning("item statistics checkpoint failed: %s", type(exc).__name__)

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        try:
            if self._view.since_checkpoint:
                self.checkpoint_now()
        except Exception as exc:
            log.warning("final item statistics checkpoint failed: %s", type(exc).__name__)
