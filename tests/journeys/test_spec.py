"""The workspace's journeys and webhooks sections: templates and the errors that name the field."""

from __future__ import annotations

from typing import Any

import pytest

from loopwise.errors import ConfigError
from loopwise.journeys.spec import parse_duration
from loopwise.journeys.templates import TEMPLATES
from tests.journeys.conftest import workspace_with


def test_durations() -> None:
    assert parse_duration("90m") == 5400 and parse_duration("2d") == 172800
    assert parse_duration("1w") == 604800 and parse_duration(30) == 30
    for bad in ("soon", "0h", "-1d", "1y"):
        with pytest.raises(ValueError):
            parse_duration(bad)


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_every_template_expands_to_a_valid_journey(name: str) -> None:
    workspace = workspace_with([{"key": "j", "template": name, "endpoint": "crm"}])
    journey = workspace.journeys[0]
    assert journey.template == name and journey.consent == "marketing"
    assert any(step.action == "webhook" for step in journey.steps)


def test_template_fields_can_be_replaced() -> None:
    workspace = workspace_with(
        [{"key": "j", "template": "cart_abandonment", "endpoint": "crm", "wait": "3h",
          "holdout_percent": 10, "quiet_hours": {"start": "21:00", "end": "08:00"}}]
    )  # fmt: skip
    journey = workspace.journeys[0]
    assert journey.steps[0].wait == "3h" and journey.holdout_percent == 10
    assert workspace.experiment("journey-j") is not None


def field_of(journeys: list[dict[str, Any]], **extra: Any) -> str | None:
    with pytest.raises(ConfigError) as caught:
        workspace_with(journeys, **extra)
    return caught.value.field


def test_errors_name_the_field() -> None:
    step = {"id": "s", "action": "webhook", "endpoint": "crm"}
    base = {"key": "j", "trigger": {"event": "Product Added"}, "steps": [step]}
    assert field_of([{**base, "template": "nope"}]) == "journeys[0].template"
    assert field_of([{"key": "j", "template": "welcome"}]) == "journeys[0].endpoint"
    unknown_endpoint = {**base, "steps": [{**step, "endpoint": "nope"}]}
    assert field_of([unknown_endpoint]) == "journeys[0].steps[0].endpoint"
    unknown_slot = {**base, "steps": [{"action": "decide", "slot": "nope"}]}
    assert field_of([unknown_slot]) == "journeys[0].steps[0].slot"
    unknown_segment = {**base, "trigger": {"segment_entered": "nope"}}
    assert field_of([unknown_segment]) == "journeys[0].trigger.segment_entered"
    assert field_of([{**base, "consent": "nope"}]) == "journeys[0].consent"
    found = field_of([{**base, "trigger": {"event": "A", "inactive_for": "3d"}}])
    assert found is not None and found.startswith("journeys[0].trigger")
    found = field_of([{**base, "steps": [{"wait": "soon"}]}])
    assert found is not None and found.startswith("journeys[0].steps[0]")
    found = field_of([{**base, "steps": [{"branch": {"if": {"a": {"$in": 5}}}}]}])
    assert found is not None and found.startswith("journeys[0].steps[0]")
    goto = {**base, "steps": [{"branch": {"if": {}, "then": "missing"}}]}
    assert field_of([goto]) == "journeys[0]"
    assert field_of([base, base]) == "journeys"
    quiet = {**base, "quiet_hours": {"start": "25:00", "end": "08:00"}}
    found = field_of([quiet])
    assert found is not None and found.startswith("journeys[0].quiet_hours")
