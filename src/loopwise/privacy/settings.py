"""``privacy:`` in ``loopwise.yaml``: consent categories, regional defaults, retention periods."""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# The categories the engine itself enforces (ingest, decide, rules); a workspace may add more
# (e.g. marketing, read back by your own systems) but cannot remove these.
ENFORCED_CATEGORIES = ("analytics", "personalization", "pricing")
DEFAULT_CATEGORIES = [*ENFORCED_CATEGORIES, "marketing"]
MIN_AUDIT_RETENTION_MONTHS = 24
CATEGORY_PATTERN = r"^[a-z][a-z0-9_]{0,49}$"


def _opt_out() -> dict[str, bool]:
    return {"analytics": True, "personalization": True, "pricing": True, "marketing": False}


def _opt_in_regions() -> dict[str, dict[str, bool]]:
    return {
        "EU": {"analytics": False, "personalization": False, "pricing": False, "marketing": False}
    }


class ConsentDefaults(BaseModel):
    """What a person who made no explicit choice has consented to, per region. ``regions`` keys
    are ISO 3166-1 alpha-2 country codes or ``EU`` (the EU, the EEA, the UK and Switzerland; a
    country's own entry wins over ``EU``). A category missing from a region's entry takes the
    ``default`` entry's value, and a category missing there is not granted (opt-in)."""

    model_config = ConfigDict(extra="forbid")

    default: dict[str, bool] = Field(
        default_factory=_opt_out, description="Every region not listed (opt-out regions)."
    )
    regions: dict[str, dict[str, bool]] = Field(
        default_factory=_opt_in_regions,
        description="Per country code or EU: the defaults there (opt-in where the law requires).",
    )

    @field_validator("regions")
    @classmethod
    def _region_codes(cls, regions: dict[str, dict[str, bool]]) -> dict[str, dict[str, bool]]:
        for code in regions:
            if code != "EU" and not (len(code) == 2 and code.isalpha() and code.isupper()):
                raise ValueError(
                    f'region "{code}" is neither EU nor an upper-case ISO 3166-1 alpha-2 '
                    'country code such as "US"'
                )
        return regions


class PrivacySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    consent_categories: list[str] = Field(
        default_factory=lambda: list(DEFAULT_CATEGORIES),
        description="Consent categories; must include analytics, personalization and pricing.",
    )
    defaults: ConsentDefaults = Field(default_factory=ConsentDefaults)
    policy_version: str = Field(
        "1", min_length=1, max_length=100, description="Recorded with every consent change."
    )
    audit_retention_months: int = Field(
        MIN_AUDIT_RETENTION_MONTHS,
        description="Months the consent audit log is kept (at least 24).",
    )
    retention_days: int = Field(
        395, gt=0, le=36500, description="Behavioural data older than this is purged."
    )

    @field_validator("consent_categories")
    @classmethod
    def _categories(cls, categories: list[str]) -> list[str]:
        import re

        for name in categories:
            if not re.match(CATEGORY_PATTERN, name):
                raise ValueError(
                    f'category "{name}" must be a lower-case slug (a-z, 0-9, _), e.g. marketing'
                )
        if len(set(categories)) != len(categories):
            raise ValueError("a category is listed twice; list each once")
        missing = [c for c in ENFORCED_CATEGORIES if c not in categories]
        if missing:
            raise ValueError(
                f"the engine enforces {', '.join(ENFORCED_CATEGORIES)}; add {', '.join(missing)}"
            )
        return categories

    @field_validator("audit_retention_months")
    @classmethod
    def _audit_minimum(cls, months: int) -> int:
        if months < MIN_AUDIT_RETENTION_MONTHS:
            raise ValueError(
                f"consent records must be kept at least {MIN_AUDIT_RETENTION_MONTHS} months; "
                f"set {MIN_AUDIT_RETENTION_MONTHS} or more"
            )
        return months

    @model_validator(mode="after")
    def _known_categories(self) -> Self:
        known = set(self.consent_categories)
        if "defaults" not in self.model_fields_set:
            # the built-in defaults name the built-in categories: keep only those in use
            self.defaults = ConsentDefaults(
                default={k: v for k, v in self.defaults.default.items() if k in known},
                regions={
                    code: {k: v for k, v in entry.items() if k in known}
                    for code, entry in self.defaults.regions.items()
                },
            )
            return self
        entries = {"default": self.defaults.default} | {
            f"regions.{code}": values for code, values in self.defaults.regions.items()
        }
        for where, values in entries.items():
            unknown = sorted(set(values) - known)
            if unknown:
                raise ValueError(
                    f"defaults.{where} names unknown categories {', '.join(unknown)}; "
                    f"use {', '.join(self.consent_categories)} or add them to consent_categories"
                )
        return self
