"""The condition builder: rows to conditions the engine compiles, and back."""

from __future__ import annotations

import pytest

from loopwise.console.builder import Row, build_condition, rows_from_condition, rows_from_form
from loopwise.errors import ValidationFailed
from loopwise.segments.conditions import compile_condition

PRICING_CALIFORNIA = [
    Row("page_visits", "gte", "2", "/pricing", "7d"),
    Row("region", "in", "California, CA"),
]


def test_the_pricing_page_and_california_segment() -> None:
    condition = build_condition(PRICING_CALIFORNIA, "all")
    assert condition == {
        "$and": [
            {"profile.page_paths_7d./pricing": {"$gte": 2}},
            {"profile.region": {"$in": ["California", "CA"]}},
        ]
    }
    matches = compile_condition(condition)
    twice = {"profile": {"page_paths_7d": {"/pricing": 2}, "region": "CA"}}
    once = {"profile": {"page_paths_7d": {"/pricing": 1}, "region": "CA"}}
    assert matches(twice) and not matches(once)


@pytest.mark.parametrize(
    "row",
    [
        Row("event_count", "gt", "3", "Pricing Viewed", "30d"),
        Row("page_visits", "gte", "1", "Pricing", "30d"),
        Row("country", "in", "US"),
        Row("device", "in", "mobile, tablet"),
        Row("traffic_source", "in", "paid"),
        Row("lifecycle", "in", "customer"),
        Row("engagement", "gte", "70"),
        Row("score", "gte", "0.75", "convert"),
        Row("affinity", "gt", "1.5", "running"),
        Row("purchases", "gte", "2"),
        Row("cart", "not_empty"),
        Row("cart", "abandoned"),
        Row("cart", "value_above", "100"),
        Row("trait", "eq", "pro", "plan"),
        Row("trait", "exists", "", "company"),
    ],
)
def test_every_kind_compiles_and_reads_back_as_the_same_row(row: Row) -> None:
    condition = build_condition([row], "all")
    compile_condition(condition)
    back = rows_from_condition(condition)
    assert back is not None
    assert build_condition(back[0], back[1]) == condition


def test_a_score_row_is_the_seeds_high_value_condition() -> None:
    condition = build_condition([Row("score", "gte", "0.75", "convert")], "all")
    assert condition == {"profile.scores.convert": {"$gte": 0.75}}
    matches = compile_condition(condition)
    assert matches({"profile": {"scores": {"convert": 0.8}}})
    assert not matches({"profile": {"scores": {"convert": 0.5}}})


def test_bad_rows_name_the_row_and_field() -> None:
    with pytest.raises(ValidationFailed) as raised:
        build_condition([Row("country", "in", "US"), Row("engagement", "gte", "lots")], "all")
    assert raised.value.field == "rows[1].value"
    with pytest.raises(ValidationFailed):
        build_condition([Row("device", "in", "fridge")], "all")
    with pytest.raises(ValidationFailed):
        build_condition([], "all")


def test_form_fields_become_rows_and_json_only_conditions_stay_json() -> None:
    form = {
        "r0_kind": "country",
        "r0_value": "US",
        "r1_kind": "",
        "r2_kind": "sessions",
        "r2_op": "gte",
        "r2_value": "3",
    }
    assert rows_from_form(form) == [Row("country", "gte", "US"), Row("sessions", "gte", "3")]
    assert rows_from_condition({"profile.x": {"$regex": "^a"}}) is None
    assert rows_from_condition({"$nor": [{"profile.known": True}]}) is None
