"""The workspace: slots, variants, rules, segments and settings, as code (``loopwise.yaml``).

One schema (:class:`Workspace`) serves the YAML file and the admin API. Errors name the path in the
document (``slots[1].rules[0].then.variant``) and, for files, the line.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from loopwise.api.edge_settings import CorsSettings, RateLimitSettings
from loopwise.bandits.settings import BANDIT
from loopwise.channels.settings import ChannelSettings, check_channel_references
from loopwise.decide.prerender import PrerenderSettings
from loopwise.decide.slots import Slot
from loopwise.errors import ConfigError
from loopwise.events.limits import MAX_JSON_DEPTH, format_loc, too_deep
from loopwise.experiments.settings import ExperimentConfig, HoldoutConfig
from loopwise.journeys.spec import JourneyConfig, ReferenceError_, WebhookSettings, check_references
from loopwise.journeys.templates import expand as expand_journey_template
from loopwise.privacy.settings import PrivacySettings
from loopwise.profiles.settings import ProfileSettings
from loopwise.scores.spec import ScoreSettings, check_score_references
from loopwise.segments.builtin import BUILTIN_SEGMENTS
from loopwise.segments.clusters import is_cluster_key
from loopwise.segments.registry import SegmentDefinition
from loopwise.segments.saved_groups import check_group_references, check_saved_groups
from loopwise.workspace_yaml import Lines, read_yaml

SAMPLE_WORKSPACE = Path(__file__).parent / "sample" / "loopwise.yaml"


class AttributionSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    conversion_window_hours: float = Field(
        24.0,
        gt=0,
        description="A conversion without decision_id goes to the user's last "
        "decision within this many hours.",
    )


class PopularitySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    half_life_days: float = Field(7.0, gt=0, description="Half-life of item popularity.")


#: Event kinds the training job can weigh (values of ``events.kinds.EventKind`` that become
#: interactions, see ``models.interactions.interactions_from_events``).
TRAINABLE_EVENTS: tuple[str, ...] = ("item_view", "click", "add_to_cart", "purchase")
#: ``training.retrain_every_minutes`` upper bound: one year.
MAX_RETRAIN_MINUTES = 525_600.0
#: Models ``loopwise train`` can train and serve as strategies.
TRAINABLE_MODELS: tuple[str, ...] = (
    "hybrid",
    "als",
    "ease",
    "item_knn",
    "transitions",
    "session_knn",
    "content",
)


class TrainingSettings(BaseModel):
    """The training job (``loopwise train``, ``POST /v1/admin/train``) and model serving."""

    model_config = ConfigDict(extra="forbid")

    event_weights: dict[str, float] = Field(
        default_factory=lambda: {
            "item_view": 1.0,
            "click": 2.0,
            "add_to_cart": 3.0,
            "purchase": 5.0,
        },
        description="Weight of one interaction per event kind.",
    )
    half_life_days: float = Field(30.0, gt=0, description="Time decay of interactions.")
    models: list[str] = Field(
        default_factory=lambda: ["hybrid"],
        min_length=1,
        description="Models to train; hybrid implies its components.",
    )
    retrain_every_minutes: float = Field(
        0.0,
        ge=0,
        le=MAX_RETRAIN_MINUTES,  # a longer wait overflows the retraining thread's timer
        description="Periodic retraining inside serve; 0 = off; at most a year (525,600).",
    )
    min_interactions: int = Field(
        50, ge=1, description="Training refuses with fewer interactions than this."
    )
    few_events: int = Field(
        5,
        ge=1,
        description="Users with fewer distinct items than this get content-based + item-kNN "
        "instead of the hybrid (cold start).",
    )
    keep_versions: int = Field(5, ge=1, description="Model versions kept on disk.")
    tune_seconds: float = Field(
        0.0,
        ge=0,
        le=86_400,
        description="Optuna tuning budget of each training (the hybrid's component settings, "
        "on a validation split carved from the training data); 0 = off, `loopwise train "
        "--tune` turns it on for one run.",
    )

    @model_validator(mode="after")
    def _check_names(self) -> TrainingSettings:
        for name, weight in self.event_weights.items():
            if name not in TRAINABLE_EVENTS:
                raise ConfigError(
                    f'Unknown event kind "{name}" in training.event_weights; use some of '
                    f"{', '.join(TRAINABLE_EVENTS)}.",
                    field=f"training.event_weights.{name}",
                )
            if not 0 <= weight < math.inf:
                raise ConfigError(
                    f'Event weight of "{name}" must be a finite number, 0 or more.',
                    field=f"training.event_weights.{name}",
                )
        for i, name in enumerate(self.models):
            if name not in TRAINABLE_MODELS:
                raise ConfigError(
                    f'Unknown model "{name}"; choose from {", ".join(TRAINABLE_MODELS)}.',
                    field=f"training.models[{i}]",
                )
        return self


class Workspace(BaseModel):
    """Everything a team configures. Validated as a whole: nothing applies unless all is valid."""

    model_config = ConfigDict(extra="forbid")

    workspace: str = Field("default", min_length=1, max_length=100)
    items: str | None = Field(
        None,
        description="Catalog file (JSONL or CSV) imported when the catalog is empty; "
        "relative to the workspace file.",
    )
    profiles: ProfileSettings = Field(default_factory=ProfileSettings)
    attribution: AttributionSettings = AttributionSettings()
    popularity: PopularitySettings = PopularitySettings()
    privacy: PrivacySettings = Field(
        default_factory=PrivacySettings,
        description="Consent categories and regional defaults, audit and data retention.",
    )
    cors: CorsSettings = Field(default_factory=CorsSettings)
    rate_limits: RateLimitSettings = Field(default_factory=RateLimitSettings)
    prerender: PrerenderSettings = Field(default_factory=PrerenderSettings)
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    scores: ScoreSettings = Field(
        default_factory=ScoreSettings,
        description="Predictive scores (profile.scores.*): `loopwise train-scores`.",
    )
    builtin_segments: bool = Field(True, description="Include the built-in segments.")
    saved_groups: dict[str, Any] = Field(
        default_factory=dict,
        description="Saved group id -> a list of values ($inGroup) or a typed group "
        "({type: list, attributeKey, values} or {type: condition, condition}) for $savedGroup.",
    )
    segments: list[SegmentDefinition] = Field(default_factory=list)
    slots: list[Slot] = Field(default_factory=list)
    holdout: HoldoutConfig = Field(default_factory=HoldoutConfig)
    experiments: list[ExperimentConfig] = Field(default_factory=list)
    journeys: list[JourneyConfig] = Field(
        default_factory=list, description="Triggered journeys (docs/journeys.md)."
    )
    webhooks: WebhookSettings = Field(
        default_factory=WebhookSettings, description="Where journey and segment webhooks go."
    )
    channels: ChannelSettings = Field(
        default_factory=ChannelSettings,
        description="Campaign decisions (decide-batch: consent, frequency caps) and search "
        "reranking weights (docs/channels.md).",
    )

    @field_validator("journeys", mode="before")
    @classmethod
    def _journey_templates(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        return [expand_journey_template(entry, f"journeys[{i}]") for i, entry in enumerate(value)]

    @field_validator("saved_groups")
    @classmethod
    def _check_saved_groups(cls, groups: dict[str, Any]) -> dict[str, Any]:
        check_saved_groups(groups)
        return groups

    @model_validator(mode="after")
    def _check_references(self) -> Workspace:
        slot_keys = [slot.key for slot in self.slots]
        for i, key in enumerate(slot_keys):
            if key in slot_keys[:i]:
                raise ConfigError(
                    f'Slot key "{key}" is used twice; give each slot a unique key.',
                    field=f"slots[{i}].key",
                )
        builtin_keys = {s.key for s in BUILTIN_SEGMENTS} if self.builtin_segments else set()
        own_keys: list[str] = []
        for i, segment in enumerate(self.segments):
            if is_cluster_key(segment.key):
                raise ConfigError(
                    f'Segment key "{segment.key}" is reserved for clusters published by '
                    "`loopwise cluster`; choose another key.",
                    field=f"segments[{i}].key",
                )
            if segment.key in own_keys or segment.key in builtin_keys:
                raise ConfigError(
                    f'Segment key "{segment.key}" is already defined (built-in or above); '
                    "choose another key.",
                    field=f"segments[{i}].key",
                )
            own_keys.append(segment.key)
        known = builtin_keys | set(own_keys)
        for i, segment in enumerate(self.segments):
            check_group_references(
                self.saved_groups,
                segment.condition,
                f"segments[{i}].condition",
                owner=f'Segment "{segment.key}"',
            )
        for i, slot in enumerate(self.slots):
            for k, seg in enumerate(slot.bandit.segments if slot.bandit else ()):
                if seg not in known and not is_cluster_key(seg):
                    raise ConfigError(
                        f'Slot "{slot.key}" bandit learns per unknown segment "{seg}". Use one '
                        f"of: {', '.join(sorted(known))}.",
                        field=f"slots[{i}].bandit.segments[{k}]",
                    )
            for j, rule in enumerate(slot.rules):
                check_group_references(
                    self.saved_groups,
                    rule.when,
                    f"slots[{i}].rules[{j}].when",
                    owner=f'Rule "{rule.id}"',
                )
                for k, seg in enumerate(rule.segments):
                    # cluster_<n> segments are published at run time (`loopwise cluster`)
                    if seg not in known and not is_cluster_key(seg):
                        raise ConfigError(
                            f'Rule "{rule.id}" refers to unknown segment "{seg}". Define it under '
                            f"segments or use one of: {', '.join(sorted(known))} (or a published "
                            "cluster, cluster_<n>).",
                            field=f"slots[{i}].rules[{j}].segments[{k}]",
                        )
        self._check_experiments()
        try:
            check_references(
                self.journeys,
                self.webhooks,
                known,
                set(slot_keys),
                set(self.privacy.consent_categories),
            )
        except ReferenceError_ as exc:
            raise ConfigError(f"{exc}.", field=exc.field) from None
        except ValueError as exc:
            raise ConfigError(f"{exc}.", field="journeys") from None
        check_channel_references(
            self.channels, slot_keys, self.privacy.consent_categories, TRAINABLE_MODELS
        )
        check_score_references(self.scores, self.segments, self.slots)
        return self

    def _check_experiments(self) -> None:
        """Experiment keys are unique, each names a defined slot, and each arm fits the slot's
        kind (block: a variant of the slot; list: a strategy, checked by the engine's registry)."""
        seen: list[str] = []
        for i, experiment in enumerate(self.experiments):
            if experiment.key in seen:
                raise ConfigError(
                    f'Experiment key "{experiment.key}" is used twice; give each a unique key.',
                    field=f"experiments[{i}].key",
                )
            seen.append(experiment.key)
            slot = self.slot(experiment.slot)
            if slot is None:
                raise ConfigError(
                    f'Experiment "{experiment.key}" is on unknown slot "{experiment.slot}". '
                    f"Defined slots: {', '.join(s.key for s in self.slots) or 'none'}.",
                    field=f"experiments[{i}].slot",
                )
            for j, arm in enumerate(experiment.arms):
                where = f"experiments[{i}].arms[{j}]"
                if slot.kind == "block":
                    if arm.strategy == BANDIT and arm.variant is None:
                        continue  # the slot's bandit (its settings, else the defaults) serves
                    if arm.variant is None:
                        raise ConfigError(
                            f'Slot "{slot.key}" is a block slot: arm "{arm.key}" must give '
                            "variant: <a variant id of the slot> (or strategy: bandit) instead "
                            "of a strategy.",
                            field=f"{where}.variant",
                        )
                    if slot.variant(arm.variant) is None:
                        raise ConfigError(
                            f'Arm "{arm.key}" uses variant "{arm.variant}", which slot '
                            f'"{slot.key}" does not have. Its variants: '
                            f"{', '.join(v.id for v in slot.variants)}.",
                            field=f"{where}.variant",
                        )
                elif arm.strategy is None:
                    raise ConfigError(
                        f'Slot "{slot.key}" is a list slot: arm "{arm.key}" must give '
                        "strategy: <a strategy name> instead of a variant.",
                        field=f"{where}.strategy",
                    )

    def experiment(self, key: str) -> ExperimentConfig | None:
        found = next((e for e in self.experiments if e.key == key), None)
        if found is None and key.startswith("journey-"):
            from loopwise.journeys.compiled import journey_experiments

            found = next((e for e in journey_experiments(self.journeys) if e.key == key), None)
        return found

    def all_segments(self) -> list[SegmentDefinition]:
        builtins = list(BUILTIN_SEGMENTS) if self.builtin_segments else []
        return builtins + list(self.segments)

    def slot(self, key: str) -> Slot | None:
        return next((s for s in self.slots if s.key == key), None)

    def document(self) -> dict[str, Any]:
        """The JSON form, as the admin API returns it."""
        return self.model_dump(mode="json", exclude_none=True)


def format_path(loc: tuple[int | str, ...]) -> str:
    """pydantic ``loc`` -> ``slots[1].rules[0].then``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith(("function-", "function_")):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


def parse_workspace(document: Any, *, source: str = "workspace") -> Workspace:
    """Validate a workspace document (a dict) or raise :class:`ConfigError` naming the path."""
    if not isinstance(document, dict):
        raise ConfigError(
            f"The {source} must be a mapping of settings (workspace, slots, segments, ...), "
            f"got {type(document).__name__}.",
            field="",
        )
    deep = too_deep(document)
    if deep is not None:
        path = format_loc(deep)
        raise ConfigError(
            f"{path} is nested more than {MAX_JSON_DEPTH} levels deep; flatten it (conditions "
            f"and content may nest at most {MAX_JSON_DEPTH} levels of objects and lists).",
            field=path,
            limit=MAX_JSON_DEPTH,
        )
    try:
        return Workspace.model_validate(document)
    except ConfigError:
        raise
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        first = errors[0]
        path = format_path(tuple(first["loc"]))
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError(
            f"{path or source}: {message}",
            field=path,
            errors=[
                {"field": format_path(tuple(e["loc"])), "detail": str(e["msg"])} for e in errors
            ],
        ) from None


def _line_of(lines: Lines, field: str) -> int | None:
    """The line of the deepest node on ``field``'s path that the file has."""
    parts: list[int | str] = []
    for token in field.replace("]", "").replace("[", ".").split("."):
        if token:
            parts.append(int(token) if token.isdigit() else token)
    while parts:
        if tuple(parts) in lines:
            return lines[tuple(parts)]
        parts.pop()
    return lines.get(())


def load_workspace_file(path: Path) -> Workspace:
    """Read and validate ``loopwise.yaml``. Errors say ``file:line: path: what to fix``."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"Cannot read workspace file {path}: {exc.strerror}.", field="") from None
    document, lines = read_yaml(str(path), data)
    try:
        return parse_workspace(document if document is not None else {}, source=str(path))
    except ConfigError as exc:
        line = _line_of(lines, exc.field or "")
        raise ConfigError(
            f"{path}:{line or '?'}: {exc.detail}", field=exc.field, line=line, **exc.extra
        ) from None
