"""``/ui/privacy``: consent rates per category and region (effective consent: explicit choices,
else the regional default), now and per day since the console started counting, the explicit
choices' changes over time, the audit chain's verification, erasure
receipts, and the retention settings."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from loopwise.console.consent_history import region_chart
from loopwise.console.ledger import CONSENT_DAYS
from loopwise.console.page_segments import COLOURS
from loopwise.console.people import SignedIn
from loopwise.console.web import VIEWER, ConsoleRoute, console_of, render

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


def changes_chart(ledger: Any, categories: list[str]) -> dict[str, Any] | None:
    if ledger is None or not ledger.consent_changes:
        return None
    today = ledger.counted_at.date()
    days = [today - timedelta(days=CONSENT_DAYS - 1 - i) for i in range(CONSENT_DAYS)]
    datasets = []
    for i, category in enumerate(categories):
        shares = []
        for day in days:
            granted, withdrawn = ledger.consent_changes.get((day, category), [0, 0])
            shares.append(
                round(100 * granted / (granted + withdrawn), 1) if granted + withdrawn else None
            )
        datasets.append(
            {
                "label": category,
                "data": shares,
                "borderColor": COLOURS[i % len(COLOURS)],
                "backgroundColor": COLOURS[i % len(COLOURS)],
                "spanGaps": True,
            }
        )
    return {
        "type": "line",
        "data": {"labels": [d.isoformat()[5:] for d in days], "datasets": datasets},
        "options": {
            "plugins": {
                "title": {
                    "display": True,
                    "text": "Share of consent choices that granted, per day, %",
                }
            },
            "scales": {"y": {"min": 0, "max": 100}},
        },
    }


@router.get("/ui/privacy")
def privacy(request: Request, person: Annotated[SignedIn, Depends(VIEWER)]) -> Response:
    console = console_of(request)
    settings = console.services.workspace.workspace.privacy
    census, ledger = console.census.last, console.ledger.last
    categories = list(settings.consent_categories)
    rates = []
    if census is not None:
        for region, total in sorted(census.regions.items(), key=lambda r: -r[1]):
            rates.append(
                {
                    "region": region,
                    "profiles": total,
                    "shares": [
                        census.consented.get((region, c), 0) / total if total else None
                        for c in categories
                    ],
                }
            )
    return render(
        request,
        "privacy.html",
        settings=settings,
        categories=categories,
        rates=rates,
        census=census,
        ledger=ledger,
        chart=changes_chart(ledger, categories),
        region_charts=_region_charts(console.consent_history.read(), categories),
    )


def _region_charts(history: dict[str, Any], categories: list[str]) -> list[tuple[str, Any]]:
    charts = [(c, region_chart(history, c)) for c in categories]
    return [(c, chart) for c, chart in charts if chart is not None]
