"""The retention job: purge behavioural data older than ``privacy.retention_days``.

Purged: events (by event time), decisions with their outcomes, segment history, and profiles
last seen before the cutoff (with their identity links). Kept: consent states and the consent
audit log; audit records are dropped only once older than ``audit_retention_months`` (at least
24), keeping the chain verifiable (see :mod:`loopwise.privacy.audit`).
``loopwise retention run`` runs it once; ``loopwise serve`` runs it daily on a daemon thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from loopwise.clock import isoformat
from loopwise.privacy.audit import ANCHOR_META_KEY
from loopwise.privacy.erasure import ERASED_TABLES, add_counts, delete_profile_data
from loopwise.privacy.settings import PrivacySettings
from loopwise.storage.stores import UnitOfWork

log = logging.getLogger(__name__)

DAY_SECONDS = 24 * 3600.0
FIRST_RUN_DELAY_SECONDS = 60.0  # let the server start before the first purge


def months_before(at: datetime, months: int) -> datetime:
    """The same day and time ``months`` calendar months earlier (day clamped to 28, so the
    result is never later than the true date: records are kept at least that long)."""
    index = at.year * 12 + (at.month - 1) - months
    return at.replace(year=index // 12, month=index % 12 + 1, day=min(at.day, 28))


@dataclass(frozen=True, slots=True)
class Cutoffs:
    behaviour: datetime  # behavioural data before this goes
    audit: datetime  # audit records before this may go

    @classmethod
    def at(cls, now: datetime, settings: PrivacySettings) -> Cutoffs:
        return cls(
            behaviour=now - timedelta(days=settings.retention_days),
            audit=months_before(now, settings.audit_retention_months),
        )


class DryRun(Exception):
    """Raised inside the purge job to roll it back after counting (``--dry-run``)."""

    def __init__(self, counts: dict[str, int]) -> None:
        super().__init__("dry run")
        self.counts = counts


def purge(uow: UnitOfWork, cutoffs: Cutoffs, *, dry_run: bool) -> tuple[dict[str, int], list[str]]:
    """The write job's body: whole profiles last seen before the cutoff (with every row under
    them), then older events, decisions with their outcomes, segment history, exposures and item
    observations. Consent is kept; audit records only within ``audit_retention_months``. A dry
    run counts with the very same statements, then rolls back. Returns counts per table and the
    removed profile ids."""
    cutoff = cutoffs.behaviour
    stale = uow.profiles.last_seen_before(cutoff)
    counts = dict.fromkeys(ERASED_TABLES, 0)
    for pid in stale:
        add_counts(counts, delete_profile_data(uow, pid))
    decisions, outcomes = uow.decisions.purge_before(cutoff)
    counts["decisions"] += decisions
    counts["outcomes"] += outcomes
    counts["events"] += uow.events.purge_before(cutoff)
    counts["segment_history"] += uow.segment_history.purge_before(cutoff)
    counts["exposures"] += uow.exposures.purge_before(cutoff)
    counts["item_observations"] = uow.item_stats.purge_before(cutoff)
    removed, first_kept = uow.audit.purge_before(cutoffs.audit)
    if removed and first_kept is not None:
        uow.config.put_meta(ANCHOR_META_KEY, str(first_kept["prev_hash"]))
    counts["audit"] = removed
    if dry_run:
        raise DryRun(counts)
    return counts, stale


def report(cutoffs: Cutoffs, counts: dict[str, int], *, dry_run: bool) -> dict[str, Any]:
    return {
        "dry_run": dry_run,
        "cutoff": isoformat(cutoffs.behaviour),
        "audit_cutoff": isoformat(cutoffs.audit),
        "removed": dict(sorted(counts.items())),
        "kept": ["consent", "audit (within audit_retention_months)"],
    }


class DailyRetention:
    """Runs ``job`` once a day on a daemon thread until :meth:`stop`."""

    def __init__(
        self,
        job: Callable[[], dict[str, Any]],
        *,
        interval_seconds: float = DAY_SECONDS,
        first_delay_seconds: float = FIRST_RUN_DELAY_SECONDS,
    ) -> None:
        self._job = job
        self._interval = interval_seconds
        self._first_delay = first_delay_seconds
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="loopwise-retention", daemon=True)
        self.runs = 0

    def start(self) -> DailyRetention:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        delay = self._first_delay
        while not self._stopped.wait(delay):
            delay = self._interval
            try:
                result = self._job()
            except Exception as exc:  # a failed run must not stop the next ones
                log.warning("retention run failed: %s", type(exc).__name__)
                continue
            self.runs += 1
            log.info("retention run removed %s", result.get("removed"))
