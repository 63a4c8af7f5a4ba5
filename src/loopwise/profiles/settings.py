"""Tunables of the profile reducer, as they appear under ``profiles:`` in ``loopwise.yaml``.

Every field has a default so an empty workspace works; ranges are validated so a typo cannot turn
into a division by zero or an unbounded profile.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from loopwise.errors import ConfigError


class EngagementWeights(BaseModel):
    """Relative weights of the four engagement components (normalised by their sum)."""

    model_config = ConfigDict(extra="forbid")

    recency: float = Field(default=0.35, ge=0, le=1000, description="Weight of how recently seen.")
    frequency: float = Field(
        default=0.25, ge=0, le=1000, description="Weight of the number of sessions."
    )
    depth: float = Field(default=0.2, ge=0, le=1000, description="Weight of views per session.")
    conversion: float = Field(
        default=0.2, ge=0, le=1000, description="Weight of the number of orders."
    )

    @model_validator(mode="after")
    def _some_weight(self) -> EngagementWeights:
        if self.total <= 0:
            raise ValueError("at least one engagement weight must be above 0; set e.g. recency: 1")
        return self

    @property
    def total(self) -> float:
        return self.recency + self.frequency + self.depth + self.conversion


class ProfileSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    session_timeout_minutes: int = Field(
        default=30,
        ge=1,
        le=24 * 60,
        description="Inactivity after which the next event starts a session.",
    )
    affinity_half_life_days: float = Field(
        default=14.0, gt=0, le=3650, description="Days after which an interest counts half as much."
    )
    recently_viewed_limit: int = Field(
        default=20, ge=1, le=1000, description="Items kept, newest first."
    )
    affinity_limit: int = Field(
        default=50, ge=1, le=1000, description="Top items, categories and tags kept (each)."
    )
    purchased_items_limit: int = Field(
        default=100, ge=1, le=10_000, description="Bought items kept."
    )
    cart_abandon_after_minutes: int = Field(
        default=60,
        ge=1,
        le=60 * 24 * 365,
        description="A cart untouched this long counts as abandoned.",
    )
    churn_after_days: int = Field(
        default=90,
        ge=1,
        le=3650,
        description="Customers or returning visitors unseen this long churned.",
    )
    engagement_weights: EngagementWeights = Field(default_factory=EngagementWeights)
    cache_profiles: int = Field(
        default=100_000,
        ge=1,
        le=100_000_000,
        description="Profiles kept in memory (least recently used dropped first; the rest load "
        "from storage when needed). Read when the engine starts.",
    )
    country_header: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="Request header carrying the visitor's country (e.g. CF-IPCountry) when the "
        "context has no location.country.",
    )
    geolocation: bool = Field(
        default=True,
        description="Fill context.location (country, region, city) from the IP address at "
        "ingest, before it is truncated, from offline databases (docs/workspace.md); false: "
        "never look addresses up.",
    )
    truncate_ip: bool = Field(
        default=True,
        description="Store context.ip truncated (IPv4 /24, IPv6 /48) so it no longer identifies "
        "a person; false keeps full addresses (personal data: needs a legal basis).",
    )

    @classmethod
    def parse(
        cls, raw: Mapping[str, Any] | None, *, field_prefix: str = "profiles"
    ) -> ProfileSettings:
        """Validate a ``profiles:`` mapping, raising ``ConfigError`` naming the first bad field."""
        try:
            return cls.model_validate(dict(raw or {}))
        except ValidationError as exc:
            first = exc.errors()[0]
            path = ".".join([field_prefix, *(str(part) for part in first["loc"])])
            raise ConfigError(
                f"{first['msg']}; fix {path} or remove it to use the default",
                field=path,
            ) from exc
