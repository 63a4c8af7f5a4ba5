from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from loopwise.decide.slots import ItemFilters, Slot


def error_of(data: dict[str, Any]) -> dict[str, Any]:
    with pytest.raises(ValidationError) as info:
        Slot.model_validate(data)
    errors = info.value.errors()
    assert len(errors) == 1, errors
    return dict(errors[0])


HERO = {
    "key": "hero",
    "kind": "block",
    "variants": [
        {"id": "generic", "content": {"headline": "Welcome"}},
        {"id": "running", "content": {"headline": "Run further"}, "weight": 2},
    ],
}


def test_block_slot_defaults_to_first_variant() -> None:
    slot = Slot.model_validate(HERO)
    assert slot.default_variant_model().id == "generic"
    assert slot.model_copy(update={"default_variant": "running"}).default_variant_model().id == (
        "running"
    )
    assert slot.variant("running") is not None
    assert slot.variant("nope") is None


def test_list_slot_defaults() -> None:
    slot = Slot(key="recs", kind="list")
    assert (slot.n, slot.default_strategy, slot.exploration, slot.time_budget_ms) == (
        4,
        "popular",
        0.0,
        50,
    )
    assert slot.filters == ItemFilters()


def test_block_slot_needs_a_variant() -> None:
    error = error_of({"key": "hero", "kind": "block"})
    assert error["loc"] == ("variants",)


def test_rule_with_unknown_variant_names_the_path() -> None:
    error = error_of(
        {
            **HERO,
            "rules": [
                {"id": "ok", "then": {"variant": "running"}},
                {"id": "bad", "then": {"variant": "trail"}},
            ],
        }
    )
    assert error["loc"] == ("rules", 1, "then", "variant")
    assert "trail" in error["msg"] and "generic, running" in error["msg"]


def test_unknown_default_variant() -> None:
    assert error_of({**HERO, "default_variant": "x"})["loc"] == ("default_variant",)


def test_block_rules_cannot_shape_lists() -> None:
    error = error_of({**HERO, "rules": [{"id": "r", "then": {"pin": ["a"]}}]})
    assert error["loc"] == ("rules", 0, "then", "pin")


def test_list_rules_cannot_pick_variants() -> None:
    error = error_of(
        {"key": "recs", "kind": "list", "rules": [{"id": "r", "then": {"variant": "a"}}]}
    )
    assert error["loc"] == ("rules", 0, "then", "variant")


def test_list_slot_rejects_variants() -> None:
    assert error_of({"key": "recs", "kind": "list", "variants": [{"id": "a"}]})["loc"] == (
        "variants",
    )


def test_duplicates_are_rejected() -> None:
    dup_variants = {**HERO, "variants": [{"id": "a"}, {"id": "b"}, {"id": "a"}]}
    assert error_of(dup_variants)["loc"] == ("variants", 2, "id")
    dup_rules = {
        "key": "recs",
        "kind": "list",
        "rules": [{"id": "r", "then": {"pin": ["a"]}}, {"id": "r", "then": {"bury": ["b"]}}],
    }
    assert error_of(dup_rules)["loc"] == ("rules", 1, "id")


@pytest.mark.parametrize(
    ("field", "value"),
    [("n", 0), ("n", 101), ("exploration", 1.5), ("time_budget_ms", 0), ("key", "Has Space")],
)
def test_bounds(field: str, value: Any) -> None:
    assert error_of({"key": "recs", "kind": "list", field: value})["loc"] == (field,)


def test_extra_fields_are_rejected_with_their_path() -> None:
    error = error_of({**HERO, "variants": [{"id": "a", "contnet": {}}]})
    assert error["loc"] == ("variants", 0, "contnet")


def test_nested_errors_keep_full_path_in_a_document() -> None:
    from pydantic import BaseModel

    class Workspace(BaseModel):
        slots: list[Slot]

    with pytest.raises(ValidationError) as info:
        Workspace.model_validate(
            {
                "slots": [
                    HERO,
                    {**HERO, "key": "b", "rules": [{"id": "x", "then": {"variant": "z"}}]},
                ]
            }
        )
    assert info.value.errors()[0]["loc"] == ("slots", 1, "rules", 0, "then", "variant")
