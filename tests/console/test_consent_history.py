"""Consent per region over time: each day's last census is kept (90 days) and charted."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from loopwise.console.census import Count
from loopwise.console.consent_history import KEPT_DAYS, META_KEY, ConsentHistory, region_chart
from loopwise.engine import Engine
from loopwise.storage.memory import MemoryStorage
from tests.console.conftest import sign_in

T0 = datetime(2026, 11, 1, 9, tzinfo=UTC)


def count(at: datetime, eu_marketing: int, us_marketing: int) -> Count:
    return Count(
        counted_at=at,
        profiles=300,
        seconds=0.1,
        sizes={},
        pairs={},
        sample=[],
        regions={"EU": 100, "default": 200},
        consented={("EU", "marketing"): eu_marketing, ("default", "marketing"): us_marketing},
    )


def test_each_days_last_count_is_kept_and_old_days_dropped() -> None:
    storage = MemoryStorage()
    history = ConsentHistory(storage)
    history.record(count(T0, 10, 150))
    history.record(count(T0 + timedelta(hours=5), 20, 150))  # later the same day: replaces
    history.record(count(T0 + timedelta(days=1), 30, 140))
    kept = history.read()
    assert list(kept) == ["2026-11-01", "2026-11-02"]
    assert kept["2026-11-01"]["EU"] == {"profiles": 100, "marketing": 20}
    history.record(count(T0 + timedelta(days=KEPT_DAYS), 40, 100))
    assert "2026-11-01" not in history.read() and "2026-11-02" in history.read()
    storage.close()


def test_a_damaged_stored_history_starts_again() -> None:
    storage = MemoryStorage()
    storage.write(lambda uow: uow.config.put_meta(META_KEY, "{not json"))
    history = ConsentHistory(storage)
    assert history.read() == {}
    history.record(count(T0, 10, 150))
    assert list(history.read()) == ["2026-11-01"]
    storage.close()


def test_the_chart_has_a_line_per_region_with_the_share_per_day() -> None:
    storage = MemoryStorage()
    history = ConsentHistory(storage)
    history.record(count(T0, 10, 150))
    history.record(count(T0 + timedelta(days=1), 30, 100))
    chart = region_chart(history.read(), "marketing")
    assert chart is not None
    lines = {d["label"]: d["data"] for d in chart["data"]["datasets"]}
    assert lines == {"default": [75.0, 50.0], "EU": [10.0, 30.0]}
    assert region_chart({}, "marketing") is None
    storage.close()


def test_the_privacy_page_draws_a_region_chart_per_category(
    console_client: TestClient, console_engine: Engine
) -> None:
    ConsentHistory(console_engine.storage).record(count(T0, 10, 150))
    person = sign_in(console_engine, "viewer")
    console_client.cookies.clear()
    console_client.cookies.set("lw_console", person.cookie)
    page = console_client.get("/ui/privacy")
    assert page.status_code == 200
    found = re.search(r"id=\"consent-region-chart-marketing\"[^>]*data-chart='([^']*)'", page.text)
    assert found, "no per-region chart for marketing"
    chart = json.loads(html.unescape(found.group(1)))
    assert {d["label"] for d in chart["data"]["datasets"]} == {"EU", "default"}
