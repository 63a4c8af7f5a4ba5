"""``channels:`` in the workspace: defaults, and errors that name the field."""

from __future__ import annotations

from typing import Any

import pytest

from loopwise.channels.settings import ChannelSettings, FrequencyCap
from loopwise.config import parse_workspace
from loopwise.errors import ConfigError
from tests.channels.conftest import channel_document


def test_defaults() -> None:
    settings = ChannelSettings()
    assert settings.batch.consent == "marketing"
    assert settings.batch.frequency_cap.cap("anything") == 1
    assert (settings.rerank.weights.search, settings.rerank.weights.affinity) == (1.0, 0.5)
    assert settings.rerank.model == "hybrid"
    assert FrequencyCap(per_day=2, slots={"a": 0}).cap("a") == 0


@pytest.mark.parametrize(
    ("channels", "field"),
    [
        (
            {"batch": {"frequency_cap": {"slots": {"no-such-slot": 2}}}},
            "channels.batch.frequency_cap.slots.no-such-slot",
        ),
        ({"batch": {"frequency_cap": {"per_day": -1}}}, "channels.batch.frequency_cap.per_day"),
        (
            {"batch": {"frequency_cap": {"slots": {"newsletter": 5000}}}},
            "channels.batch.frequency_cap.slots",
        ),
        ({"batch": {"consent": "newsletters"}}, "channels.batch.consent"),
        ({"batch": {"consent": "Not A Slug"}}, "channels.batch.consent"),
        (
            {"rerank": {"weights": {"search": 0, "affinity": 0, "model": 0}}},
            "channels.rerank.weights",
        ),
        ({"rerank": {"weights": {"search": -1}}}, "channels.rerank.weights.search"),
        ({"rerank": {"weights": {"popularity": 1}}}, "channels.rerank.weights.popularity"),
        ({"rerank": {"model": "popular"}}, "channels.rerank.model"),
        ({"rerank": {"max_candidates": 0}}, "channels.rerank.max_candidates"),
        ({"email": {}}, "channels.email"),
    ],
)
def test_bad_settings_name_the_field(channels: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_workspace(channel_document(**channels))
    assert error.value.field == field


def test_a_workspace_category_may_be_the_campaign_consent() -> None:
    document = channel_document(batch={"consent": "newsletters"})
    document["privacy"] = {
        "consent_categories": ["analytics", "personalization", "pricing", "newsletters"]
    }
    assert parse_workspace(document).channels.batch.consent == "newsletters"


def test_the_section_round_trips_through_the_document() -> None:
    workspace = parse_workspace(channel_document(rerank={"weights": {"model": 2.0}}))
    again = parse_workspace(workspace.document())
    assert again.channels == workspace.channels
    assert again.channels.rerank.weights.model == 2.0
