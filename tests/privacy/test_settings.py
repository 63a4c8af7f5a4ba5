"""``privacy:`` settings: defaults, validation of categories, regions and retention."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from loopwise.privacy.settings import PrivacySettings


def test_defaults_match_the_documented_ones() -> None:
    settings = PrivacySettings()
    assert settings.consent_categories == ["analytics", "personalization", "pricing", "marketing"]
    assert settings.defaults.regions["EU"] == dict.fromkeys(settings.consent_categories, False)
    assert settings.defaults.default["marketing"] is False
    assert (settings.audit_retention_months, settings.retention_days) == (24, 395)


def test_dropping_marketing_trims_the_builtin_defaults() -> None:
    settings = PrivacySettings(consent_categories=["analytics", "personalization", "pricing"])
    assert "marketing" not in settings.defaults.default
    assert "marketing" not in settings.defaults.regions["EU"]


@pytest.mark.parametrize(
    "document",
    [
        {"audit_retention_months": 23},
        {"retention_days": 0},
        {"consent_categories": ["analytics", "personalization"]},
        {"consent_categories": ["analytics", "personalization", "pricing", "Ads"]},
        {"consent_categories": ["analytics", "analytics", "personalization", "pricing"]},
        {"defaults": {"regions": {"us": {}}}},
        {"defaults": {"default": {"unknown": True}}},
        {"unknown_setting": 1},
    ],
)
def test_invalid_settings_are_refused(document: dict) -> None:
    with pytest.raises(ValidationError):
        PrivacySettings.model_validate(document)
