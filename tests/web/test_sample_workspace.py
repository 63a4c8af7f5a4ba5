"""The bundled sample workspace is consistent: its catalog, slots, rules and segments agree."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from loopwise.catalog.validate import parse_item
from loopwise.sample import ITEMS_FILE, WORKSPACE_FILE
from loopwise.sample.generate_catalog import generate_items, write_items

REQUIRED_KEYS = {
    "id", "type", "title", "text", "url", "image", "categories", "tags",
    "price", "margin", "in_stock", "brand", "created_at",
}  # fmt: skip
CATEGORIES = {"running", "hiking", "cycling", "yoga", "swimming", "outdoor-living"}


def builtin_segment_names() -> set[str]:
    """Built-in segment keys as documented in docs/internals.md (the contract, not the code)."""
    doc = (Path(__file__).parents[2] / "docs" / "internals.md").read_text()
    section = doc.split("builtin.BUILTIN_SEGMENTS", 1)[1].split("### ", 1)[0]
    return set(re.findall(r"`([a-z][a-z0-9_]*)`", section))


@pytest.fixture(scope="module")
def workspace() -> dict[str, Any]:
    document = yaml.safe_load(WORKSPACE_FILE.read_text())
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def items() -> list[dict[str, Any]]:
    lines = ITEMS_FILE.read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def slots_of(workspace: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [slot for slot in workspace["slots"] if slot["kind"] == kind]


def test_workspace_names_its_items_file(workspace: dict[str, Any]) -> None:
    assert workspace["workspace"] == "demo-store"
    assert (WORKSPACE_FILE.parent / workspace["items"]).resolve() == ITEMS_FILE.resolve()
    assert workspace["profiles"]["session_timeout_minutes"] == 30
    assert workspace["attribution"]["conversion_window_hours"] == 24


def test_items_have_required_keys_and_unique_ids(items: list[dict[str, Any]]) -> None:
    assert 180 <= len(items) <= 220
    for item in items:
        assert set(item) == REQUIRED_KEYS, item["id"]
        assert item["url"] == f"/sample/items/{item['id']}"
        assert 1 <= len(item["categories"]) <= 2 and set(item["categories"]) <= CATEGORIES
        assert 2 <= len(item["tags"]) <= 4
        assert 0.1 <= item["margin"] <= 0.5 and item["price"] > 0
    duplicates = [i for i, n in Counter(item["id"] for item in items).items() if n > 1]
    assert duplicates == []
    assert {item["categories"][0] for item in items} == CATEGORIES


def test_items_parse_as_catalog_items(items: list[dict[str, Any]]) -> None:
    end = datetime(2026, 11, 1, tzinfo=UTC)
    in_stock = 0
    for index, raw in enumerate(items):
        item = parse_item(raw, field_prefix=f"items[{index}]", now=end)
        assert item.price == raw["price"] and item.attributes["brand"] == raw["brand"]
        assert item.created_at is not None
        assert end - timedelta(days=365) <= item.created_at <= end
        in_stock += item.in_stock
    assert 0.9 <= in_stock / len(items) < 1.0


def test_committed_catalog_is_the_generators_output(tmp_path: Path) -> None:
    out = tmp_path / "items.jsonl"
    write_items(out, generate_items())
    assert out.read_text() == ITEMS_FILE.read_text()


def test_fallback_items_exist(workspace: dict[str, Any], items: list[dict[str, Any]]) -> None:
    ids = {item["id"] for item in items}
    fallbacks = [i for slot in slots_of(workspace, "list") for i in slot.get("fallback_items", [])]
    assert fallbacks, "the sample should show fallback items"
    assert [i for i in fallbacks if i not in ids] == []


def test_rule_variants_exist(workspace: dict[str, Any]) -> None:
    for slot in slots_of(workspace, "block"):
        variants = [variant["id"] for variant in slot["variants"]]
        assert len(variants) == len(set(variants)), slot["key"]
        assert slot["default_variant"] in variants
        for rule in slot.get("rules", []):
            assert rule["then"]["variant"] in variants, (slot["key"], rule["id"])


def test_rule_segments_are_defined(workspace: dict[str, Any]) -> None:
    own = {segment["key"] for segment in workspace["segments"]}
    known = own | builtin_segment_names()
    assert {"cart_abandoner", "first_time_visitor", "returning_visitor"} <= known
    referenced = {
        (slot["key"], name)
        for slot in workspace["slots"]
        for rule in slot.get("rules", [])
        for name in rule.get("segments", [])
    }
    assert referenced, "the sample should target segments"
    assert [ref for ref in referenced if ref[1] not in known] == []


def test_expected_slots_and_segments(workspace: dict[str, Any]) -> None:
    slots = {slot["key"]: slot for slot in workspace["slots"]}
    assert set(slots) == {"hero", "recommended", "trending", "recently-viewed", "related", "cta"}
    assert slots["recommended"]["default_strategy"] == "category_affinity"
    assert slots["related"]["default_strategy"] == "together"
    rules = {rule["id"]: rule for rule in slots["hero"]["rules"]}
    assert rules["cart-reminder"]["priority"] > rules["runners"]["priority"]
    assert rules["uk-shipping"]["when"] == {"context.country": "GB"}
    segments = {segment["key"]: segment for segment in workspace["segments"]}
    assert segments["big_spenders"]["condition"] == {"profile.revenue": {"$gte": 300}}
    assert segments["uk_visitors"]["condition"] == {"context.country": "GB"}
    for segment in workspace["segments"]:
        assert re.fullmatch(r"[a-z0-9_]+", segment["key"]) and segment["name"]
        assert isinstance(segment["condition"], dict) and segment["condition"]
