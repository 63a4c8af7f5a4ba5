"""What the console reads from the audit trail and the decision log, in the background: the
chain's verification, consent changes per day and category, erasure receipts, and how often each
slot served its fallback in the last day. Pages read the last result."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from loopwise.clock import Clock, parse_timestamp
from loopwise.decide.service import DecideService
from loopwise.privacy.audit import Verification, verify_chain
from loopwise.privacy.service import PrivacyService

CONSENT_DAYS = 30
RECEIPTS_KEPT = 20
FALLBACK_HOURS = 24


@dataclass(slots=True)
class Ledger:
    counted_at: datetime
    verification: Verification
    # (day, category) -> [granted, withdrawn] explicit choices that changed that day
    consent_changes: dict[tuple[date, str], list[int]] = field(default_factory=dict)
    receipts: list[dict[str, Any]] = field(default_factory=list)  # newest first
    # slot -> (decisions, served the fallback) in the last FALLBACK_HOURS
    fallbacks: dict[str, tuple[int, int]] = field(default_factory=dict)

    def consent_share(self, category: str, days: int, until: date) -> tuple[int, int]:
        """(granted, withdrawn) explicit changes of ``category`` over ``days`` days up to
        ``until``."""
        granted = withdrawn = 0
        for offset in range(days):
            got = self.consent_changes.get((until - timedelta(days=offset), category))
            if got is not None:
                granted, withdrawn = granted + got[0], withdrawn + got[1]
        return granted, withdrawn


class LedgerReader:
    def __init__(self, privacy: PrivacyService, decide: DecideService, clock: Clock) -> None:
        self._privacy = privacy
        self._decide = decide
        self._clock = clock
        self.last: Ledger | None = None

    def count_now(self) -> Ledger:
        now = self._clock()
        anchor, records = self._privacy.audit_trail()
        kept: list[dict[str, Any]] = []

        def tapped() -> Any:
            for record in records:
                kept.append(record)
                yield record

        verification = verify_chain(tapped(), anchor)
        changes: dict[tuple[date, str], list[int]] = defaultdict(lambda: [0, 0])
        first_day = now.date() - timedelta(days=CONSENT_DAYS - 1)
        receipts: list[dict[str, Any]] = []
        for record in kept:
            at = parse_timestamp(record.get("at"))
            if record.get("kind") == "erasure":
                receipts.append(record)
                continue
            if at is None or at.date() < first_day or record.get("kind") != "consent":
                continue
            before, after = record.get("before") or {}, record.get("after") or {}
            for category, value in after.items():
                if before.get(category) == value:
                    continue
                changes[(at.date(), str(category))][0 if value else 1] += 1
        fallbacks: Counter[str] = Counter()
        decided: Counter[str] = Counter()
        for decision in self._decide.logged_since(now - timedelta(hours=FALLBACK_HOURS)):
            for slot in decision.get("slots") or []:
                name = str(slot.get("slot"))
                decided[name] += 1
                fallbacks[name] += bool(slot.get("fallback"))
        ledger = Ledger(
            counted_at=now,
            verification=verification,
            consent_changes=dict(changes),
            receipts=receipts[::-1][:RECEIPTS_KEPT],
            fallbacks={slot: (decided[slot], fallbacks[slot]) for slot in decided},
        )
        self.last = ledger
        return ledger
