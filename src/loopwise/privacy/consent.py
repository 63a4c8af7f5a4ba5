"""Consent state of one person, and what it grants. Pure: no storage, no clock.

A person's effective consent for a category is their latest explicit choice for it, else the
default of their region (``privacy.defaults`` in the workspace). Explicit choices carry the time
they were made: when two states meet (a profile merge, a late event) the most recent choice per
category wins, so ``merge`` is commutative and replaying choices in any order gives one state.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from loopwise.clock import isoformat, parse_timestamp
from loopwise.errors import ValidationFailed
from loopwise.privacy.settings import PrivacySettings

# Where opt-in consent is the law: the EU 27, the rest of the EEA (IS, LI, NO), the UK (GDPR as
# retained, PECR) and Switzerland (nFADP). ``GB`` and ``UK`` both name the United Kingdom.
EU_MEMBERS = frozenset(
    [
        "AT",
        "BE",
        "BG",
        "HR",
        "CY",
        "CZ",
        "DK",
        "EE",
        "FI",
        "FR",
        "DE",
        "GR",
        "HU",
        "IE",
        "IT",
        "LV",
        "LT",
        "LU",
        "MT",
        "NL",
        "PL",
        "PT",
        "RO",
        "SK",
        "SI",
        "ES",
        "SE",
    ]
)
EU_REGION_COUNTRIES = EU_MEMBERS | {"EL", "IS", "LI", "NO", "GB", "UK", "CH"}

MAX_SOURCE_LENGTH = 100


@dataclass(frozen=True, slots=True)
class Choice:
    """One explicit choice: granted or refused, when, and through what (banner, api, event)."""

    granted: bool
    at: datetime
    source: str

    def to_record(self) -> dict[str, Any]:
        return {"granted": self.granted, "at": isoformat(self.at), "source": self.source}


@dataclass(frozen=True, slots=True)
class ConsentState:
    """A person's explicit choices (categories without one follow the regional default)."""

    choices: Mapping[str, Choice] = field(default_factory=dict)
    policy_version: str | None = None

    @property
    def updated_at(self) -> datetime | None:
        return max((c.at for c in self.choices.values()), default=None)

    def explicit(self) -> dict[str, bool]:
        return {name: choice.granted for name, choice in sorted(self.choices.items())}

    def to_record(self) -> dict[str, Any]:
        return {
            "choices": {name: c.to_record() for name, c in sorted(self.choices.items())},
            "policy_version": self.policy_version,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ConsentState:
        choices: dict[str, Choice] = {}
        for name, value in (record.get("choices") or {}).items():
            at = parse_timestamp(value.get("at"))
            if at is not None:
                choices[name] = Choice(bool(value.get("granted")), at, str(value.get("source")))
        return cls(choices, record.get("policy_version"))


EMPTY = ConsentState()


def region_of(country: str | None, settings: PrivacySettings) -> str:
    """The ``privacy.defaults`` entry that applies: the country's own, else ``EU`` for the EU,
    EEA, UK and Switzerland, else ``default`` (also for an unknown country)."""
    regions = settings.defaults.regions
    code = country.strip().upper() if country else ""
    if code in regions:
        return code
    if code in EU_REGION_COUNTRIES and "EU" in regions:
        return "EU"
    return "default"


def regional_defaults(country: str | None, settings: PrivacySettings) -> dict[str, bool]:
    region = region_of(country, settings)
    base = settings.defaults.default
    entry = settings.defaults.regions.get(region, {}) if region != "default" else {}
    return {
        name: bool(entry.get(name, base.get(name, False))) for name in settings.consent_categories
    }


def effective(
    state: ConsentState, country: str | None, settings: PrivacySettings
) -> dict[str, bool]:
    """Per configured category: the explicit choice if any, else the regional default."""
    granted = regional_defaults(country, settings)
    for name, choice in state.choices.items():
        if name in granted:
            granted[name] = choice.granted
    return granted


def granted(
    state: ConsentState, category: str, country: str | None, settings: PrivacySettings
) -> bool:
    """Whether ``category`` is granted: the explicit choice, else the regional default."""
    choice = state.choices.get(category)
    if choice is not None:
        return choice.granted
    return regional_defaults(country, settings).get(category, False)


def needs_country(state: ConsentState, category: str, settings: PrivacySettings) -> bool:
    """False when the answer for ``category`` does not depend on the region."""
    if category in state.choices:
        return False
    values = {settings.defaults.default.get(category, False)}
    for entry in settings.defaults.regions.values():
        values.add(entry.get(category, settings.defaults.default.get(category, False)))
    return len(values) > 1


def with_choices(
    state: ConsentState,
    choices: Mapping[str, bool],
    at: datetime,
    source: str,
    policy_version: str,
) -> ConsentState:
    """``state`` with ``choices`` made at ``at``; a choice older than the one held is ignored
    (a late or retried event never overrides a newer decision of the person)."""
    updated = dict(state.choices)
    changed = False
    for name, granted in choices.items():
        held = updated.get(name)
        # the same answer again keeps its first time; a different, newer one replaces it
        if held is None or (held.at <= at and held.granted != bool(granted)):
            updated[name] = Choice(bool(granted), at, source)
            changed = True
    if not changed:
        return state
    return ConsentState(updated, policy_version)


def merge(states: Iterable[ConsentState]) -> ConsentState:
    """One person's state from several (merged profiles): the newest choice per category wins;
    the policy version is that of the state with the newest choice."""
    choices: dict[str, Choice] = {}
    newest: tuple[datetime, str | None] | None = None
    for state in states:
        for name, choice in state.choices.items():
            held = choices.get(name)
            if held is None or held.at < choice.at:
                choices[name] = choice
        at = state.updated_at
        if at is not None and (newest is None or newest[0] < at):
            newest = (at, state.policy_version)
    return ConsentState(choices, newest[1] if newest else None)


def parse_choices(body: Any, settings: PrivacySettings) -> tuple[dict[str, bool], str]:
    """Validate a ``PUT /v1/consent/{user_id}`` body ``{"categories": {name: bool}, "source"}``.
    Raises ValidationFailed naming the offending field."""
    if not isinstance(body, dict):
        raise ValidationFailed(
            'The body must be an object such as {"categories": {"personalization": false}}.',
            field="body",
        )
    unknown_fields = sorted(set(body) - {"categories", "source"})
    if unknown_fields:
        raise ValidationFailed(
            f"Unknown field {unknown_fields[0]!r}; send only categories and source.",
            field=unknown_fields[0],
        )
    categories = body.get("categories")
    if not isinstance(categories, dict) or not categories:
        raise ValidationFailed(
            "categories must be a non-empty object of category -> true/false, e.g. "
            '{"personalization": false}.',
            field="categories",
        )
    known = settings.consent_categories
    for name, value in categories.items():
        if name not in known:
            raise ValidationFailed(
                f"Unknown consent category {name!r}. Known categories: {', '.join(known)}.",
                field=f"categories.{name}",
                known_categories=list(known),
            )
        if not isinstance(value, bool):
            raise ValidationFailed(
                f"categories.{name} must be true or false, got {type(value).__name__}.",
                field=f"categories.{name}",
            )
    source = body.get("source", "api")
    if not isinstance(source, str) or not source.strip() or len(source) > MAX_SOURCE_LENGTH:
        raise ValidationFailed(
            f"source must be a non-empty string of at most {MAX_SOURCE_LENGTH} characters "
            '(where the choice was made, e.g. "banner").',
            field="source",
        )
    return dict(categories), source.strip()


def from_event_context(context: Mapping[str, Any], settings: PrivacySettings) -> dict[str, bool]:
    """Choices carried by a Segment event: ``context.consent.categoryPreferences``
    ({category: bool}). Segment category names equal to ours are taken; others and non-boolean
    values are ignored."""
    consent = context.get("consent")
    if not isinstance(consent, Mapping):
        return {}
    preferences = consent.get("categoryPreferences")
    if not isinstance(preferences, Mapping):
        return {}
    known = set(settings.consent_categories)
    return {
        name: value
        for name, value in preferences.items()
        if name in known and isinstance(value, bool)
    }


def view(state: ConsentState, country: str | None, settings: PrivacySettings) -> dict[str, Any]:
    """The ``GET /v1/consent/{user_id}`` body."""
    granted = effective(state, country, settings)
    explicit = {
        name: choice.to_record()
        for name, choice in sorted(state.choices.items())
        if name in granted
    }
    updated = state.updated_at
    return {
        "categories": granted,
        "explicit": explicit,
        "defaulted": [name for name in granted if name not in explicit],
        "region": region_of(country, settings),
        "policy_version": state.policy_version or settings.policy_version,
        "updated_at": isoformat(updated) if updated is not None else None,
    }
