"""``/ui``: the program's lift against the global holdout, over time by day of first exposure."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from loopwise.api.app import create_app
from loopwise.api.keys import KeyKind, KeyRing
from loopwise.config import SAMPLE_WORKSPACE, load_workspace_file
from loopwise.engine import Engine
from loopwise.experiments.settings import HOLDOUT_ARM, HOLDOUT_KEY, PERSONALIZED_ARM
from loopwise.storage.memory import MemoryStorage
from loopwise.storage.records import Exposure
from tests.console.conftest import sign_in

ADMIN_KEY = "lw_admin_overview_test"
DAY0 = datetime(2026, 11, 2, 12, tzinfo=UTC)


@pytest.fixture
def held_out() -> Iterator[tuple[Engine, TestClient]]:
    sample = load_workspace_file(SAMPLE_WORKSPACE)
    workspace = sample.model_copy(
        update={"holdout": sample.holdout.model_copy(update={"percent": 10})}
    )
    keys = KeyRing.from_plain({KeyKind.ADMIN: [ADMIN_KEY]})
    engine = Engine(workspace, MemoryStorage(), keys=keys)
    exposures = []
    for day in range(3):  # 10% held out; half the personalized people buy, 30% of the holdout
        for n in range(100):
            arm = HOLDOUT_ARM if n % 10 == 0 else PERSONALIZED_ARM
            bought = n % 40 == 0 if arm == HOLDOUT_ARM else n % 2 == 1
            after = {"Order Completed": (1.0, 40.0)} if bought else {}
            at = DAY0 + timedelta(days=day, minutes=n)
            exposures.append(Exposure(HOLDOUT_KEY, f"d{day}-p{n}", arm, at, after=after))
    engine.storage.write(lambda uow: [uow.exposures.insert(e) for e in exposures])
    with TestClient(create_app(engine), follow_redirects=False) as client:
        yield engine, client
    engine.close()


def test_the_overview_charts_the_holdout_lift_per_day_of_exposure(
    held_out: tuple[Engine, TestClient],
) -> None:
    engine, client = held_out
    person = sign_in(engine, "viewer")
    client.cookies.set("lw_console", person.cookie)
    page = client.get("/ui")
    assert page.status_code == 200
    found = re.search(r"id=\"lift-over-time-chart\"[^>]*data-chart='([^']*)'", page.text)
    assert found, "the lift-over-time chart is missing"
    chart = json.loads(html.unescape(found.group(1)))
    assert chart["data"]["labels"] == ["11-02", "11-03", "11-04"]
    purchase = next(d for d in chart["data"]["datasets"] if d["label"] == "purchase lift, %")
    assert purchase["data"][-1] > 0  # (earlier days: too few people for an estimate yet)
    band = next(d for d in chart["data"]["datasets"] if d["label"] == "purchase 95% interval")
    assert band["fill"] == "-1" and band["data"][-1] > purchase["data"][-1]


def test_results_over_time_over_http_accumulate_to_the_totals(
    held_out: tuple[Engine, TestClient],
) -> None:
    _, client = held_out
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    body = client.get(f"/v1/experiments/{HOLDOUT_KEY}/results/over-time", headers=headers).json()
    assert [row["date"] for row in body["days"]] == ["2026-11-02", "2026-11-03", "2026-11-04"]
    assert [sum(row["users"].values()) for row in body["days"]] == [100, 200, 300]
    totals = client.get(f"/v1/experiments/{HOLDOUT_KEY}/results", headers=headers).json()
    assert {a["key"]: a["users"] for a in totals["arms"]} == body["days"][-1]["users"]
    missing = client.get("/v1/experiments/nope/results/over-time", headers=headers)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
