"""``channels:`` in ``loopwise.yaml``: campaign decisions (decide-batch) and search reranking.

```yaml
channels:
  batch:
    consent: marketing          # the consent category a campaign needs (default marketing)
    frequency_cap:
      per_day: 1                # campaign decisions per person per slot in any 24 hours (0: none)
      slots: {newsletter: 2}    # per-slot caps
  rerank:
    weights: {search: 1.0, affinity: 0.5, model: 0.5}
    model: hybrid               # the strategy whose scores blend in (a trained model)
```

Slot keys in ``frequency_cap.slots`` must be slots of the workspace
(:func:`check_channel_references`, run by the workspace's own checks).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from loopwise.errors import ConfigError
from loopwise.privacy.settings import CATEGORY_PATTERN

MAX_CAP_PER_DAY = 1000
RERANK_SIGNALS = ("search", "affinity", "model")


class FrequencyCap(BaseModel):
    """How many campaign decisions one person may get for one slot in any 24 hours."""

    model_config = ConfigDict(extra="forbid")

    per_day: int = Field(
        1,
        ge=0,
        le=MAX_CAP_PER_DAY,
        description="Campaign decisions per person per slot in any 24 hours; 0: no cap.",
    )
    slots: dict[str, int] = Field(
        default_factory=dict, description="Slot key -> its own cap (0: no cap for that slot)."
    )

    @field_validator("slots")
    @classmethod
    def _caps(cls, slots: dict[str, int]) -> dict[str, int]:
        for key, cap in slots.items():
            if isinstance(cap, bool) or not isinstance(cap, int) or not 0 <= cap <= MAX_CAP_PER_DAY:
                raise ValueError(
                    f'the cap of slot "{key}" must be a whole number from 0 to {MAX_CAP_PER_DAY}'
                )
        return slots

    def cap(self, slot: str) -> int:
        """The cap of ``slot`` (0: uncapped)."""
        return self.slots.get(slot, self.per_day)


class BatchSettings(BaseModel):
    """Campaign decisions (``POST /v1/decide/batch``, ``loopwise decide-batch``)."""

    model_config = ConfigDict(extra="forbid")

    consent: str = Field(
        "marketing",
        pattern=CATEGORY_PATTERN,
        description="The consent category a person needs to be decided for in a campaign.",
    )
    frequency_cap: FrequencyCap = Field(default_factory=FrequencyCap)


class RerankWeights(BaseModel):
    """How much each signal counts in the personal order (each normalised to 0-1 first)."""

    model_config = ConfigDict(extra="forbid")

    search: float = Field(1.0, ge=0, description="The caller's search score.")
    affinity: float = Field(
        0.5, ge=0, description="The person's affinity with the item, its categories and tags."
    )
    model: float = Field(0.5, ge=0, description="The trained model's score for the person.")

    @model_validator(mode="after")
    def _usable(self) -> Self:
        values = [self.search, self.affinity, self.model]
        if not all(math.isfinite(v) for v in values):
            raise ValueError("rerank weights must be finite numbers")
        if sum(values) <= 0:
            raise ValueError("at least one rerank weight must be above 0")
        return self


class RerankSettings(BaseModel):
    """Search results in personal order (``POST /v1/rerank``)."""

    model_config = ConfigDict(extra="forbid")

    weights: RerankWeights = Field(default_factory=RerankWeights)
    model: str = Field(
        "hybrid",
        min_length=1,
        max_length=100,
        description="Strategy whose scores blend in: a trained model (hybrid, als, ease, "
        "item_knn, content); until it is trained its weight counts for nothing.",
    )
    max_candidates: int = Field(
        500, ge=1, le=5000, description="The most candidates one request may send."
    )


class ChannelSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    batch: BatchSettings = Field(default_factory=BatchSettings)
    rerank: RerankSettings = Field(default_factory=RerankSettings)


def check_channel_references(
    settings: ChannelSettings,
    slot_keys: Sequence[str],
    categories: Sequence[str],
    models: Sequence[str],
) -> None:
    """The caps name defined slots, the campaign's consent is a workspace category and the
    rerank model is one ``loopwise train`` can train."""
    if settings.rerank.model not in models:
        raise ConfigError(
            f'channels.rerank.model "{settings.rerank.model}" is not a trainable model; choose '
            f"from {', '.join(models)}.",
            field="channels.rerank.model",
        )
    for key in settings.batch.frequency_cap.slots:
        if key not in slot_keys:
            raise ConfigError(
                f'channels.batch.frequency_cap.slots names unknown slot "{key}". Defined slots: '
                f"{', '.join(slot_keys) or 'none'}.",
                field=f"channels.batch.frequency_cap.slots.{key}",
            )
    if settings.batch.consent not in categories:
        raise ConfigError(
            f'channels.batch.consent "{settings.batch.consent}" is not a consent category; use '
            f"one of {', '.join(categories)} or add it to privacy.consent_categories.",
            field="channels.batch.consent",
        )
