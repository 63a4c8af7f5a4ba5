"""The workspace's ``journeys:`` and ``webhooks:`` sections: the authoring shape, validated on load.

A journey is a key, a trigger (a segment entered, an event, or inactivity for a duration), an
entry condition, a flat list of steps (wait a duration, wait until an event, branch on a
condition, or an action), exit conditions, re-entry rules, frequency caps, quiet hours in the
person's time zone, the consent category it needs (default ``marketing``) and a holdout share.
:mod:`loopwise.journeys.compiled` turns one into what the state machine runs.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from loopwise.errors import ConditionError
from loopwise.segments.conditions import compile_condition

KEY_PATTERN = r"^[a-z0-9][a-z0-9_\-]*$"
END = "end"  # a goto target: leave the journey
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
WEBHOOK_EVENTS = (
    "segment.entered",
    "segment.exited",
    "journey.entered",
    "journey.exited",
    "journey.step",
)


def parse_duration(value: str | float | int, what: str = "duration") -> float:
    """``"90m"``, ``"1h"``, ``"2d"``, ``"1w"`` (or a number of seconds) -> seconds."""
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a duration like 30m, 1h, 2d or 1w")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if match is None:
            raise ValueError(f"{what} {value!r} is not a duration; write e.g. 30m, 1h, 2d or 1w")
        seconds = float(match[1]) * _UNIT_SECONDS[match[2]]
    if seconds <= 0:
        raise ValueError(f"{what} must be more than zero")
    return seconds


def _check_condition(value: dict[str, Any]) -> dict[str, Any]:
    try:
        compile_condition(value)
    except ConditionError as exc:
        where = f" at {exc.field}" if exc.field else ""
        raise ValueError(f"condition{where}: {exc.detail}") from None
    return value


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Trigger(Strict):
    """Exactly one of: ``segment_entered`` (a segment key), ``event`` (a track event name),
    ``inactive_for`` (a duration without any event)."""

    segment_entered: str | None = None
    event: str | None = Field(default=None, min_length=1)
    inactive_for: str | None = None

    @model_validator(mode="after")
    def _one(self) -> Trigger:
        given = [v for v in (self.segment_entered, self.event, self.inactive_for) if v is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of segment_entered (a segment key), event (a track event "
                'name, e.g. "Product Added") or inactive_for (a duration, e.g. 30d)'
            )
        if self.inactive_for is not None:
            parse_duration(self.inactive_for, "inactive_for")
        return self


class WaitUntil(Strict):
    event: str = Field(min_length=1, description="Track event that ends the wait.")
    at_most: str = Field(description="Longest wait, e.g. 3d.")
    timeout_goto: str | None = Field(
        default=None, description="Step id (or end) after a timeout; default: the next step."
    )

    @field_validator("at_most")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value, "at_most")
        return value


class Branch(Strict):
    # "if" is a keyword: the YAML key is "if", the attribute "when"
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    when: dict[str, Any] = Field(alias="if", description="Condition over profile.* / segments.")
    then: str | None = Field(default=None, description="Step id (or end); default: next step.")
    otherwise: str | None = Field(
        default=None, alias="else", description="Step id (or end); default: next step."
    )

    @field_validator("when")
    @classmethod
    def _compiles(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _check_condition(value)


ActionKind = Literal["webhook", "set_trait", "enter_segment", "leave_segment", "decide"]


class Step(Strict):
    """One step: exactly one of ``wait``, ``wait_until``, ``branch``, ``action``."""

    id: str | None = Field(default=None, pattern=KEY_PATTERN, max_length=100)
    wait: str | None = Field(
        default=None,
        description='A duration, e.g. 1h, or "repurchase": the typical repurchase interval of '
        "the items the person bought.",
    )
    wait_until: WaitUntil | None = None
    branch: Branch | None = None
    action: ActionKind | None = None
    endpoint: str | None = Field(default=None, description="webhook: a webhooks.endpoints key.")
    slot: str | None = Field(
        default=None, description="webhook (content) or decide: the slot to decide."
    )
    traits: dict[str, Any] = Field(default_factory=dict, description="set_trait: traits to set.")
    segment: str | None = Field(default=None, description="enter/leave_segment: a list key.")

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        kinds = [k for k in ("wait", "wait_until", "branch", "action") if getattr(self, k)]
        if len(kinds) != 1:
            raise ValueError("a step has exactly one of wait, wait_until, branch or action")
        if self.wait is not None and self.wait != "repurchase":
            parse_duration(self.wait, "wait")
        if self.action == "webhook" and not self.endpoint:
            raise ValueError("a webhook action needs endpoint: the key of a webhooks endpoint")
        if self.action == "decide" and not self.slot:
            raise ValueError("a decide action needs slot: the slot to decide for later pickup")
        if self.action == "set_trait" and not self.traits:
            raise ValueError('a set_trait action needs traits, e.g. {"vip": true}')
        lists = self.action in ("enter_segment", "leave_segment")
        if lists and (not self.segment or not re.match(KEY_PATTERN, self.segment)):
            raise ValueError(f"{self.action} needs segment: a list segment key (a-z, 0-9, _, -)")
        return self


class Exit(Strict):
    """Leave the journey on ``event`` or when ``condition`` holds (checked at every step)."""

    event: str | None = Field(default=None, min_length=1)
    condition: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one(self) -> Exit:
        if (self.event is None) == (self.condition is None):
            raise ValueError("an exit has exactly one of event or condition")
        if self.condition is not None:
            _check_condition(self.condition)
        return self


class Reentry(Strict):
    allowed: bool = Field(default=False, description="May a person go through it again?")
    after: str | None = Field(
        default=None, description="Only this long after they last left (e.g. 7d)."
    )

    @field_validator("after")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value, "after")
        return value


class Caps(Strict):
    """Frequency caps on sends (webhook actions): this journey's, and all journeys' together."""

    per_journey: int | None = Field(default=None, ge=0, description="Sends of this journey.")
    per_journey_within: str = Field(default="7d", description="... within this window.")
    all_journeys_per_day: int | None = Field(default=None, ge=0)
    all_journeys_per_week: int | None = Field(default=None, ge=0)

    @field_validator("per_journey_within")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value, "per_journey_within")
        return value


class QuietHours(Strict):
    """No send between ``start`` and ``end`` in the person's time zone (``profile.timezone``,
    else ``timezone``); a send due then waits until ``end``."""

    start: str = Field(description='"HH:MM", e.g. "21:00".')
    end: str = Field(description='"HH:MM", e.g. "08:00".')
    timezone: str = Field(default="UTC", description="When the person's zone is unknown.")

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, value: str) -> str:
        if not _CLOCK.match(value):
            raise ValueError(f'{value!r} is not a time of day; write "HH:MM", e.g. "21:00"')
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(value)
        except (KeyError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name, e.g. Europe/Berlin"
            ) from None
        return value


class JourneyConfig(Strict):
    key: str = Field(pattern=KEY_PATTERN, max_length=100)
    name: str = ""
    description: str = ""
    status: Literal["running", "paused"] = "running"
    template: str | None = Field(default=None, description="Built from this template.")
    trigger: Trigger
    entry: dict[str, Any] = Field(
        default_factory=dict, description="Condition a person must meet to enter."
    )
    steps: list[Step] = Field(min_length=1)
    exit: list[Exit] = Field(default_factory=list)
    reentry: Reentry = Field(default_factory=Reentry)
    caps: Caps = Field(default_factory=Caps)
    quiet_hours: QuietHours | None = None
    consent: str = Field(default="marketing", min_length=1)
    holdout_percent: float = Field(default=0.0, ge=0, le=50)
    conversion_event: str = Field(
        default="Order Completed", min_length=1, description="What counts as converted."
    )

    @field_validator("entry")
    @classmethod
    def _entry(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _check_condition(value)

    @model_validator(mode="after")
    def _steps(self) -> JourneyConfig:
        ids = self.step_ids
        if len(set(ids)) != len(ids):
            raise ValueError(f"step ids must be unique within the journey: {ids}")
        if END in ids:
            raise ValueError(f'"{END}" is reserved (a goto to leave the journey)')
        targets = []
        for step in self.steps:
            if step.branch is not None:
                targets += [step.branch.then, step.branch.otherwise]
            if step.wait_until is not None:
                targets.append(step.wait_until.timeout_goto)
        for target in targets:
            if target is not None and target != END and target not in ids:
                raise ValueError(f"goto {target!r} names no step; use one of {ids} or {END!r}")
        return self

    @property
    def step_ids(self) -> list[str]:
        return [step.id or f"step_{i + 1}" for i, step in enumerate(self.steps)]

    @property
    def experiment_key(self) -> str:
        return f"journey-{self.key}"


class Endpoint(Strict):
    """Where webhooks go. The signing secret is read from the environment variable
    ``secret_env`` at send time (never stored in the workspace)."""

    key: str = Field(pattern=KEY_PATTERN, max_length=100)
    url: str = Field(pattern=r"^https?://", description="http(s) URL that receives POSTs.")
    secret_env: str = Field(
        pattern=r"^[A-Z_][A-Z0-9_]*$", description="Environment variable holding the secret."
    )
    identify_by: Literal["pseudonymous", "user_id"] = "pseudonymous"
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    max_attempts: int = Field(default=8, ge=1, le=50)
    backoff_seconds: float = Field(default=30.0, gt=0, description="First retry after this.")
    max_backoff_seconds: float = Field(default=6 * 3600.0, gt=0)
    subscribe: list[Literal[WEBHOOK_EVENTS]] = Field(  # type: ignore[valid-type]
        default_factory=list,
        description="Events sent without a journey step: segment and journey entries/exits.",
    )
    segments: list[str] = Field(
        default_factory=list, description="segment.* events only for these (default: all)."
    )
    consent: str = Field(default="marketing", min_length=1)


class WebhookSettings(Strict):
    endpoints: list[Endpoint] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> WebhookSettings:
        keys = [e.key for e in self.endpoints]
        if len(set(keys)) != len(keys):
            raise ValueError(f"endpoint keys must be unique: {keys}")
        return self

    def endpoint(self, key: str) -> Endpoint | None:
        return next((e for e in self.endpoints if e.key == key), None)


def check_references(
    journeys: list[JourneyConfig],
    webhooks: WebhookSettings,
    segments: set[str],
    slots: set[str],
    categories: set[str],
) -> None:
    """What a journey names must exist: endpoints, slots, trigger segments, consent category."""
    keys = [j.key for j in journeys]
    if len(set(keys)) != len(keys):
        raise ValueError(f"journey keys must be unique: {keys}")
    for i, journey in enumerate(journeys):
        where = f"journeys[{i}]"
        seg = journey.trigger.segment_entered
        if seg is not None and seg not in segments:
            raise _ref(f"{where}.trigger.segment_entered", f"unknown segment {seg!r}")
        if journey.consent not in categories:
            raise _ref(
                f"{where}.consent",
                f"unknown consent category {journey.consent!r}; known: {sorted(categories)}",
            )
        for j, step in enumerate(journey.steps):
            if step.endpoint is not None and webhooks.endpoint(step.endpoint) is None:
                known = [e.key for e in webhooks.endpoints]
                raise _ref(
                    f"{where}.steps[{j}].endpoint",
                    f"unknown webhook endpoint {step.endpoint!r}; define it under "
                    f"webhooks.endpoints (known: {known})",
                )
            if step.slot is not None and step.slot not in slots:
                raise _ref(f"{where}.steps[{j}].slot", f"unknown slot {step.slot!r}")
    for i, endpoint in enumerate(webhooks.endpoints):
        if endpoint.consent not in categories:
            raise _ref(
                f"webhooks.endpoints[{i}].consent",
                f"unknown consent category {endpoint.consent!r}",
            )


class ReferenceError_(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _ref(field: str, message: str) -> ReferenceError_:
    return ReferenceError_(field, message)
