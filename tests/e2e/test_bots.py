"""Headless browsers and known bots feed neither popularity nor experiments, end to end: a real
``loopwise serve``, events and decides over HTTP with a headless Chrome's user agent (and a
crawler's), and the same with a person's browser as the control that shows the test can fail."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml

from loopwise.config import SAMPLE_WORKSPACE
from tests.e2e.conftest import SERVER_KEY, WRITE_KEY, Server

HEADLESS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/120.0.6099.28 Safari/537.36"
)
CRAWLER = "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"
PERSON = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 "
    "Safari/537.36"
)
VIEWS = 60


def workspace(directory: Path) -> Path:
    """A popular list (uncached, so every decide ranks afresh) and an experiment on a block."""
    document = {
        "items": str(SAMPLE_WORKSPACE.parent / "items.jsonl"),
        "prerender": {"enabled": False},
        "slots": [
            {"key": "top", "kind": "list", "n": 3, "default_strategy": "popular"},
            {"key": "hero", "kind": "block", "default_variant": "a",
             "variants": [{"id": "a", "content": {}}, {"id": "b", "content": {}}]},
        ],
        "experiments": [{"key": "hero-test", "slot": "hero", "arms": [
            {"key": "a", "variant": "a"}, {"key": "b", "variant": "b"}]}],
    }  # fmt: skip
    path = directory / "loopwise.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def views_of(item: str, user_agent: str) -> dict[str, Any]:
    return {
        "batch": [
            {"type": "track", "event": "Product Viewed", "anonymousId": f"v-{uuid.uuid4()}",
             "properties": {"product_id": item}, "context": {"userAgent": user_agent}}
            for _ in range(VIEWS)
        ]
    }  # fmt: skip


def decide(http: httpx.Client, user_agent: str, visitor: str | None = None) -> dict[str, Any]:
    body = {
        "user": {"anonymous_id": visitor or f"d-{uuid.uuid4()}"},
        "context": {"userAgent": user_agent, "page": {"url": "https://shop.test/"}},
        "slots": [{"slot": "top"}, {"slot": "hero"}],
    }
    response = http.post("/v1/decide", json=body, headers={"User-Agent": user_agent})
    assert response.status_code == 200, response.text
    return dict(response.json())


def top_items(answer: dict[str, Any]) -> list[str]:
    return [item["id"] for item in answer["slots"][0]["items"]]


def arm_reasons(answer: dict[str, Any]) -> list[str]:
    return [r["ref"] for r in answer["slots"][1]["reasons"] if r["kind"] == "experiment"]


def exposed_users(http: httpx.Client) -> int:
    results = http.get("/v1/experiments/hero-test/results").json()
    return sum(arm["users"] for arm in results["arms"])


def test_bots_feed_neither_popularity_nor_experiments(
    live_server: Callable[..., Server], tmp_path: Path
) -> None:
    server = live_server(workspace=workspace(tmp_path))
    with server.client(SERVER_KEY) as http, server.client(WRITE_KEY) as browser:
        before = top_items(decide(http, PERSON, "regular"))
        exposed = exposed_users(http)  # that person is in the experiment
        catalog = http.get("/v1/items", params={"limit": 50}).json()["items"]
        target = next(item["id"] for item in catalog[10:] if item["id"] not in before)
        for agent in (HEADLESS, CRAWLER):
            sent = browser.post("/v1/batch", json=views_of(target, agent), headers={
                "User-Agent": agent})  # fmt: skip
            assert sent.status_code == 200, sent.text
        assert target not in top_items(decide(http, PERSON, "regular"))  # bots did not count
        for agent in (HEADLESS, CRAWLER):
            answer = decide(http, agent)
            assert arm_reasons(answer) == []  # no arm, so no exposure
        assert exposed_users(http) == exposed
        # the control: the same views and decides from a person's browser do count
        assert browser.post("/v1/batch", json=views_of(target, PERSON)).status_code == 200
        assert top_items(decide(http, PERSON, "regular"))[0] == target
        answer = decide(http, PERSON)
        assert len(arm_reasons(answer)) == 1
        assert exposed_users(http) == exposed + 1
