"""Consent state: regional defaults, explicit choices, merges, body and event parsing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loopwise.config import parse_workspace
from loopwise.errors import ConfigError, ValidationFailed
from loopwise.privacy import consent
from loopwise.privacy.consent import EMPTY, ConsentState
from loopwise.privacy.settings import PrivacySettings

T0 = datetime(2026, 11, 1, tzinfo=UTC)
SETTINGS = PrivacySettings()


@pytest.mark.parametrize(
    ("country", "region"),
    [("DE", "EU"), ("fr", "EU"), ("GB", "EU"), ("NO", "EU"), ("CH", "EU"), ("US", "default"),
     (None, "default"), ("", "default")],
)  # fmt: skip
def test_region_of_country(country: str | None, region: str) -> None:
    assert consent.region_of(country, SETTINGS) == region


def test_every_eu_member_state_is_in_the_opt_in_region() -> None:
    # the 27 EU member states (ISO 3166-1); Hungary was missing, so HU visitors were tracked
    # and personalized without consent
    members = "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE"
    assert len(members.split()) == 27
    for country in members.split():
        assert consent.region_of(country, SETTINGS) == "EU", country
        assert consent.effective(EMPTY, country, SETTINGS)["analytics"] is False, country


def test_a_country_entry_wins_over_eu() -> None:
    settings = PrivacySettings.model_validate(
        {"defaults": {"regions": {"EU": {"analytics": False}, "DE": {"analytics": True}}}}
    )
    assert consent.region_of("DE", settings) == "DE"
    assert consent.effective(EMPTY, "DE", settings)["analytics"] is True
    assert consent.effective(EMPTY, "FR", settings)["analytics"] is False


def test_defaults_are_opt_in_in_the_eu_and_opt_out_elsewhere() -> None:
    assert consent.effective(EMPTY, "DE", SETTINGS) == {
        "analytics": False, "personalization": False, "pricing": False, "marketing": False
    }  # fmt: skip
    assert consent.effective(EMPTY, "US", SETTINGS) == {
        "analytics": True, "personalization": True, "pricing": True, "marketing": False
    }  # fmt: skip


def test_explicit_choices_override_the_default_per_category() -> None:
    state = consent.with_choices(EMPTY, {"personalization": True}, T0, "banner", "v1")
    granted = consent.effective(state, "DE", SETTINGS)
    assert granted["personalization"] is True and granted["analytics"] is False
    assert consent.granted(state, "personalization", "DE", SETTINGS)
    assert not consent.granted(state, "analytics", "DE", SETTINGS)


def test_an_older_choice_never_overrides_a_newer_one() -> None:
    state = consent.with_choices(EMPTY, {"analytics": False}, T0, "api", "v1")
    late = consent.with_choices(state, {"analytics": True}, T0 - timedelta(hours=1), "event", "v1")
    assert late is state
    newer = consent.with_choices(state, {"analytics": True}, T0 + timedelta(hours=1), "api", "v2")
    assert newer.explicit() == {"analytics": True} and newer.policy_version == "v2"


def test_the_same_answer_again_changes_nothing() -> None:
    state = consent.with_choices(EMPTY, {"analytics": False}, T0, "api", "v1")
    again = consent.with_choices(state, {"analytics": False}, T0 + timedelta(days=1), "event", "v1")
    assert again is state


def test_merge_keeps_the_newest_choice_per_category() -> None:
    anonymous = consent.with_choices(
        EMPTY, {"analytics": True, "pricing": False}, T0 + timedelta(hours=2), "banner", "v2"
    )
    known = consent.with_choices(EMPTY, {"analytics": False, "marketing": True}, T0, "api", "v1")
    merged = consent.merge([known, anonymous])
    assert merged.explicit() == {"analytics": True, "marketing": True, "pricing": False}
    assert merged.policy_version == "v2"
    assert consent.merge([anonymous, known]) == merged


choices = st.dictionaries(
    st.sampled_from(["analytics", "personalization", "pricing", "marketing"]), st.booleans()
)
hours = st.integers(min_value=0, max_value=1000)


@given(st.lists(st.tuples(choices, hours), max_size=6))
def test_merge_is_order_independent(history: list[tuple[dict[str, bool], int]]) -> None:
    states = [
        consent.with_choices(EMPTY, c, T0 + timedelta(hours=h, minutes=i), "x", "v")
        for i, (c, h) in enumerate(history)
    ]
    assert consent.merge(states).explicit() == consent.merge(states[::-1]).explicit()


def test_state_round_trips_through_its_record() -> None:
    state = consent.with_choices(EMPTY, {"analytics": False, "pricing": True}, T0, "banner", "v1")
    assert ConsentState.from_record(state.to_record()) == state


def test_parse_choices_names_the_unknown_category() -> None:
    with pytest.raises(ValidationFailed) as caught:
        consent.parse_choices({"categories": {"ads": True}}, SETTINGS)
    assert caught.value.field == "categories.ads"
    assert "analytics" in caught.value.detail


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "body"),
        ({}, "categories"),
        ({"categories": {}}, "categories"),
        ({"categories": {"analytics": "yes"}}, "categories.analytics"),
        ({"categories": {"analytics": True}, "source": ""}, "source"),
        ({"categories": {"analytics": True}, "who": "me"}, "who"),
    ],
)
def test_parse_choices_rejects_bad_bodies(body: object, field: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        consent.parse_choices(body, SETTINGS)
    assert caught.value.field == field


def test_parse_choices_defaults_the_source() -> None:
    assert consent.parse_choices({"categories": {"pricing": False}}, SETTINGS) == (
        {"pricing": False},
        "api",
    )


def test_segment_consent_maps_matching_categories_and_ignores_others() -> None:
    context = {
        "consent": {
            "categoryPreferences": {
                "analytics": True, "personalization": False, "Advertising": True, "pricing": "no"
            }
        }
    }  # fmt: skip
    assert consent.from_event_context(context, SETTINGS) == {
        "analytics": True,
        "personalization": False,
    }
    assert consent.from_event_context({"consent": "yes"}, SETTINGS) == {}
    assert consent.from_event_context({}, SETTINGS) == {}


def test_view_says_which_categories_are_explicit() -> None:
    state = consent.with_choices(EMPTY, {"personalization": False}, T0, "banner", "2026-11")
    view = consent.view(state, "US", SETTINGS)
    assert view["categories"]["personalization"] is False
    assert view["explicit"]["personalization"]["source"] == "banner"
    assert view["defaulted"] == ["analytics", "pricing", "marketing"]
    assert view["policy_version"] == "2026-11" and view["updated_at"] == "2026-11-01T00:00:00.000Z"


def test_workspace_privacy_settings_are_validated_with_paths() -> None:
    workspace = parse_workspace(
        {"privacy": {"consent_categories": ["analytics", "personalization", "pricing", "ads"],
                     "policy_version": "2026-11", "retention_days": 30}}
    )  # fmt: skip
    assert workspace.privacy.retention_days == 30
    with pytest.raises(ConfigError) as caught:
        parse_workspace({"privacy": {"audit_retention_months": 12}})
    assert caught.value.field == "privacy.audit_retention_months"
    assert "24" in caught.value.detail
    with pytest.raises(ConfigError) as caught:
        parse_workspace({"privacy": {"consent_categories": ["analytics", "pricing"]}})
    assert caught.value.field == "privacy.consent_categories"
    with pytest.raises(ConfigError) as caught:
        parse_workspace({"privacy": {"defaults": {"regions": {"Europe": {}}}}})
    assert caught.value.field == "privacy.defaults.regions"
    with pytest.raises(ConfigError) as caught:
        parse_workspace({"privacy": {"defaults": {"default": {"ads": True}}}})
    assert "ads" in caught.value.detail
