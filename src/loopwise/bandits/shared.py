"""Bandit state shared by the workers of ``loopwise serve --redis-url``.

The learners' statistics are additive (Beta counts; linear Thompson's ``A`` and ``b``), so each
worker sends the ops it applies (:class:`~loopwise.bandits.service.BanditService`) over the
change bus — batched with the bus's other notes, so within a fraction of a second — and applies
the others'. Redis is a cache: a message can be lost (a restart, a dropped subscriber), so every
:data:`RESYNC_S` seconds each worker also re-derives its state from the decision log in
PostgreSQL, the system of record, and drift heals by itself.
"""

from __future__ import annotations

import logging
import os
import threading

from loopwise.bandits.service import BanditService
from loopwise.distributed.bus import ChangeBus

log = logging.getLogger(__name__)

RESYNC_S = 30.0  # LOOPWISE_BANDIT_RESYNC_S overrides it


class SharedBandits:
    def __init__(self, service: BanditService, bus: ChangeBus, resync_s: float | None = None):
        self.service = service
        self.bus = bus
        self.resync_s = resync_s or float(os.environ.get("LOOPWISE_BANDIT_RESYNC_S", RESYNC_S))
        self.resyncs = 0
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="loopwise-bandits", daemon=True)

    def start(self) -> SharedBandits:
        self.service.publish = self.bus.note_bandit
        self.bus.bandit_apply = self.service.apply_remote
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self.service.publish = None
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stopped.wait(self.resync_s):
            try:
                self.service.resync()
                self.resyncs += 1
            except Exception as exc:  # PostgreSQL away: the next round tries again
                log.warning("re-deriving the bandit state failed: %s", type(exc).__name__)
