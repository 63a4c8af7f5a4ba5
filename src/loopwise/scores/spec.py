"""The ``scores:`` section of the workspace: which predictive scores to train and serve.

A score is the calibrated probability that something happens within a horizon after a moment
``t``, for the person as they are at ``t``:

- an **event** score (``event: purchase``): at least one such event in ``(t, t + horizon]``; with
  ``category`` only events about items of that category count (``engage.<category>``);
- an **inactivity** score (``inactive: true``): no event at all in ``(t, t + horizon]`` (churn).

``event`` is an event kind (``purchase``, ``add_to_cart``, ``item_view``, ``click``, ``page``,
... as :mod:`loopwise.events.kinds` classifies events) or a track event's own name
(``Newsletter Signup``). Keys name where the score appears: ``convert`` is
``profile.scores.convert``, ``engage.shoes`` is ``profile.scores.engage.shoes``.

Defaults give the two scores every shop wants: ``convert`` (a purchase within 7 days) and
``churn`` (no activity within 30 days); ``engage.<category>`` defaults to item views of that
category within 7 days.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from loopwise.events.kinds import EventKind

SCORE_KEY = re.compile(r"^[a-z][a-z0-9_]{0,49}(\.[A-Za-z0-9][A-Za-z0-9_\-]{0,99})?$")
ENGAGE_PREFIX = "engage."
SCORES_ATTRIBUTE = "scores"  # profile.scores.<key>
#: the event kinds a label may name (track events may also be named by their own name)
LABEL_KINDS: tuple[str, ...] = tuple(
    k.value for k in EventKind if k not in (EventKind.IDENTIFY, EventKind.ALIAS, EventKind.GROUP)
)


class ScoreDefinition(BaseModel):
    """One score: its key, its label and its horizon."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(
        description="Where the score appears: profile.scores.<key> (engage.<category> nests).",
        max_length=150,
    )
    description: str = Field(default="", description="What the score predicts, in words.")
    event: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Label: this event kind or track event name happens within the horizon.",
    )
    inactive: bool = Field(
        default=False, description="Label: no event at all happens within the horizon (churn)."
    )
    category: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Only events about items of this category count (engage.<category>).",
    )
    horizon_days: float = Field(
        default=0.0, ge=0, le=366, description="The window after t the label looks at."
    )

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        key = data.get("key")
        if not isinstance(key, str):
            return data
        if key == "convert" and data.get("event") is None and not data.get("inactive"):
            data["event"] = "purchase"
            data.setdefault("horizon_days", 7.0)
        elif key == "churn" and data.get("event") is None and "inactive" not in data:
            data["inactive"] = True
            data.setdefault("horizon_days", 30.0)
        elif key.startswith(ENGAGE_PREFIX) and not data.get("inactive"):
            data.setdefault("category", key[len(ENGAGE_PREFIX) :])
            if data.get("event") is None:
                data["event"] = "item_view"
            data.setdefault("horizon_days", 7.0)
        return data

    @model_validator(mode="after")
    def _check(self) -> Self:
        if not SCORE_KEY.match(self.key):
            raise ValueError(
                f'score key "{self.key}" must be a lower-case name (convert, churn, ltv_90d) '
                "or a group and a name (engage.shoes)"
            )
        if (self.event is None) == (not self.inactive):
            raise ValueError(
                f'score "{self.key}" needs exactly one label: event: <an event kind or track '
                "event name> (it happens within the horizon) or inactive: true (nothing happens)"
            )
        if self.inactive and self.category is not None:
            raise ValueError(f'score "{self.key}": category applies to event scores only')
        if self.horizon_days <= 0:
            raise ValueError(f'score "{self.key}" needs horizon_days above 0 (e.g. 7)')
        return self

    @property
    def path(self) -> tuple[str, ...]:
        """Where the value sits under ``profile.scores``: ``("engage", "shoes")``."""
        return tuple(self.key.split(".", 1))

    def label_text(self) -> str:
        """``purchase within 7 days``, for reports and reasons."""
        days = f"{self.horizon_days:g} day" + ("" if self.horizon_days == 1 else "s")
        if self.inactive:
            return f"no activity within {days}"
        what = self.event or ""
        if self.category is not None:
            what += f" of {self.category}"
        return f"{what} within {days}"


def default_definitions() -> list[ScoreDefinition]:
    return [ScoreDefinition(key="convert"), ScoreDefinition(key="churn")]


class ScoreSettings(BaseModel):
    """``scores:`` — the scores, how training samples moments and how models are fitted."""

    model_config = ConfigDict(extra="forbid")

    definitions: list[ScoreDefinition] = Field(
        default_factory=default_definitions,
        description="The scores (default: convert and churn).",
    )
    max_examples: int = Field(
        default=60_000,
        ge=100,
        le=5_000_000,
        description="Training moments sampled from the log at most (spread over people).",
    )
    max_per_person: int = Field(
        default=20, ge=1, le=1000, description="About this many moments per person."
    )
    calibration_share: float = Field(
        default=0.2, gt=0, lt=0.5, description="Later time slice the probabilities are fit on."
    )
    test_share: float = Field(
        default=0.2, gt=0, lt=0.5, description="Latest time slice the report measures on."
    )
    calibration: Literal["auto", "isotonic", "platt"] = Field(
        default="auto",
        description="isotonic, platt (logistic), or auto: isotonic from 1,000 calibration "
        "moments with 50 positives and 50 negatives, else platt.",
    )
    trees: int = Field(default=80, ge=1, le=2000, description="Boosting rounds.")
    learning_rate: float = Field(default=0.08, gt=0, le=1)
    max_depth: int = Field(default=4, ge=1, le=8, description="Depth of each tree.")
    num_leaves: int = Field(default=16, ge=2, le=256)
    min_child_samples: int = Field(default=40, ge=1)
    min_examples: int = Field(
        default=200, ge=10, description="Training refuses a score with fewer moments than this."
    )
    explain_top: int = Field(
        default=3, ge=1, le=10, description="Features named when a score explains a decision."
    )
    keep_versions: int = Field(default=5, ge=1, description="Score model versions kept on disk.")
    seed: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        seen: dict[str, int] = {}
        for i, definition in enumerate(self.definitions):
            first = seen.get(definition.key)
            if first is not None:
                raise ValueError(
                    f'score key "{definition.key}" is defined twice (definitions[{first}] '
                    f"and definitions[{i}]); give each score one key"
                )
            seen[definition.key] = i
        keys = set(seen)
        for key in keys:
            group = key.split(".", 1)[0]
            if "." in key and group in keys:
                raise ValueError(
                    f'score "{group}" and "{key}" collide: profile.scores.{group} cannot be both '
                    "a value and a group"
                )
        return self

    def get(self, key: str) -> ScoreDefinition | None:
        return next((d for d in self.definitions if d.key == key), None)


def nest(values: Mapping[str, float]) -> dict[str, Any]:
    """``{"convert": .3, "engage.shoes": .1}`` -> ``{"convert": .3, "engage": {"shoes": .1}}``:
    the shape conditions read (``profile.scores.engage.shoes``)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        group, _, name = key.partition(".")
        if name:
            out.setdefault(group, {})[name] = value
        else:
            out[key] = value
    return out


def referenced_scores(condition: Any) -> Iterator[str]:
    """Score keys a condition reads (``profile.scores.convert`` -> ``convert``;
    ``profile.scores.engage.shoes`` -> ``engage.shoes``), anywhere inside it."""
    prefix = f"profile.{SCORES_ATTRIBUTE}."
    if isinstance(condition, Mapping):
        for key, value in condition.items():
            if isinstance(key, str) and key.startswith(prefix):
                yield key[len(prefix) :]
            yield from referenced_scores(value)
    elif isinstance(condition, list):
        for value in condition:
            yield from referenced_scores(value)


def check_score_references(settings: ScoreSettings, segments: Any, slots: Any) -> None:
    """Every ``profile.scores.<key>`` a segment or rule reads names a defined score (a typo
    would silently match nobody)."""
    from loopwise.errors import ConfigError

    keys = {d.key for d in settings.definitions}
    groups = {k.split(".", 1)[0] for k in keys if "." in k}
    uses: list[tuple[str, str, Any]] = [
        (f"segments[{i}].condition", f'Segment "{s.key}"', s.condition)
        for i, s in enumerate(segments)
    ]
    for i, slot in enumerate(slots):
        uses += [
            (f"slots[{i}].rules[{j}].when", f'Rule "{r.id}"', r.when)
            for j, r in enumerate(slot.rules)
        ]
    for where, owner, condition in uses:
        for key in referenced_scores(condition):
            if key in keys or key in groups:
                continue
            known = ", ".join(sorted(keys)) or "none"
            raise ConfigError(
                f"{owner} reads profile.{SCORES_ATTRIBUTE}.{key}, which is not a defined score. "
                f"Defined scores: {known}; add it under scores.definitions or fix the name.",
                field=f"{where}.profile.{SCORES_ATTRIBUTE}.{key}",
            )
