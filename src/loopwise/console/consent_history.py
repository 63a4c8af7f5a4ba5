"""Consent rates per region and category over time, for the privacy page.

Each census pass counts effective consent now (explicit choices, else the regional default); the
audit trail records only the choices, not the regional defaults nor where a person was. So the
console keeps what each day's last count found — profiles per region and how many of them
consent to each category — in the config store (one small JSON document, the last
``KEPT_DAYS`` days), and charts those. History starts when the console first counts.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Any

import orjson

from loopwise.console.census import Count
from loopwise.console.page_segments import COLOURS
from loopwise.storage.stores import Storage, UnitOfWork

META_KEY = "console.consent_by_day"
KEPT_DAYS = 90

log = logging.getLogger(__name__)

# day (ISO) -> region -> {"profiles": n, "<category>": consenting}
DayRates = dict[str, dict[str, dict[str, int]]]


def rates_of(count: Count) -> dict[str, dict[str, int]]:
    """One census pass as ``region -> {"profiles": n, category: consenting}``."""
    out: dict[str, dict[str, int]] = {
        region: {"profiles": total} for region, total in count.regions.items()
    }
    for (region, category), consenting in count.consented.items():
        out.setdefault(region, {"profiles": 0})[category] = consenting
    return out


def merged(kept: DayRates, day: date, rates: dict[str, dict[str, int]]) -> DayRates:
    """``kept`` with ``day`` set to ``rates`` and days older than ``KEPT_DAYS`` dropped."""
    first = (day - timedelta(days=KEPT_DAYS - 1)).isoformat()
    out = {d: r for d, r in kept.items() if d >= first}
    out[day.isoformat()] = rates
    return dict(sorted(out.items()))


def _parsed(raw: str | None) -> DayRates:
    if not raw:
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        log.warning("the stored consent history is damaged; starting it again")
        return {}
    return value if isinstance(value, dict) else {}


class ConsentHistory:
    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    def read(self) -> DayRates:
        return _parsed(self._storage.config.meta(META_KEY))

    def record(self, count: Count) -> None:
        """Keep ``count`` as its day's rates (the day's latest count wins)."""
        rates = rates_of(count)

        def job(uow: UnitOfWork) -> None:
            kept = _parsed(uow.config.meta(META_KEY))
            value = merged(kept, count.counted_at.date(), rates)
            uow.config.put_meta(META_KEY, orjson.dumps(value).decode())

        self._storage.write(job)


def region_chart(history: DayRates, category: str, *, regions: int = 6) -> dict[str, Any] | None:
    """A Chart.js line per region (the largest ``regions``): the share of its profiles whose
    effective consent grants ``category``, per day, %."""
    if not history:
        return None
    days = sorted(history)
    size: dict[str, int] = {}
    for day in days:  # the regions with the most profiles on any day
        for region, row in history[day].items():
            size[region] = max(size.get(region, 0), row.get("profiles", 0))
    largest = sorted((r for r in size if size[r]), key=lambda r: -size[r])[:regions]
    if not largest:
        return None
    datasets = []
    for i, region in enumerate(largest):
        shares: list[float | None] = []
        for day in days:
            row = history[day].get(region) or {}
            total = row.get("profiles", 0)
            shares.append(round(100 * row.get(category, 0) / total, 1) if total else None)
        colour = COLOURS[i % len(COLOURS)]
        datasets.append(
            {
                "label": region,
                "data": shares,
                "borderColor": colour,
                "backgroundColor": colour,
                "spanGaps": True,
            }
        )
    return {
        "type": "line",
        "data": {"labels": [d[5:] for d in days], "datasets": datasets},
        "options": {
            "plugins": {
                "title": {
                    "display": True,
                    "text": f"Profiles whose consent grants {category}, per region and day, %",
                }
            },
            "scales": {"y": {"min": 0, "max": 100}},
        },
    }
