"""The public body and reply of ``POST /v1/decide`` (snake_case JSON, in the OpenAPI schema).

A request names the user and the slots of one page; the reply carries, per slot, the content or
items chosen, the propensity of that choice (for offline evaluation) and human-readable reasons
(the disclosure of why, and whether AI, shaped what the user sees).
"""

from __future__ import annotations

from typing import Any, Literal, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from loopwise.decide.filters import ItemFilters
from loopwise.events.limits import MAX_ID_CHARS
from loopwise.validation import invalid_at

MAX_SLOTS_PER_REQUEST = 20

ReasonKind = Literal[
    "segment",
    "rule",
    "strategy",
    "fallback",
    "cold_start",
    "filter",
    "exploration",
    "variant",
    "consent",
    "experiment",
    "holdout",
    "model",
]


class DecideUser(BaseModel):
    """Who the page is for: a known user id, an anonymous id, or both (then they are linked)."""

    model_config = ConfigDict(extra="forbid")

    user_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_ID_CHARS,
        description="Your id for a known user.",
    )
    anonymous_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_ID_CHARS,
        description="The device/browser id (loopwise.js).",
    )
    user_token: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="With the public write key: HMAC-SHA256(identity secret, user_id) from the "
        "site's server, proving user_id (docs/delivery.md). Without a valid one a write-key "
        "decide is made for the anonymous id alone. Server keys need none.",
    )

    @model_validator(mode="after")
    def _some_id(self) -> Self:
        if self.user_id is None and self.anonymous_id is None:
            raise ValueError("give user_id or anonymous_id (or both) so Loopwise knows who this is")
        return self


class SlotRequest(BaseModel):
    """One slot to fill, optionally overriding its size and filters for this page."""

    model_config = ConfigDict(extra="forbid")

    slot: str = Field(min_length=1, max_length=100, description="Slot key from the workspace.")
    n: int | None = Field(
        default=None, ge=1, le=100, description="List slots: items wanted (default: the slot's n)."
    )
    filters: ItemFilters | None = Field(
        default=None, description="List slots: filters overriding the slot's, field by field."
    )


class DecideRequest(BaseModel):
    """Body of POST /v1/decide."""

    model_config = ConfigDict(extra="forbid")

    user: DecideUser = Field(description="Who the page is for.")
    context: dict[str, Any] = Field(
        default_factory=dict,
        description="Segment-style context of the page view (page, userAgent, campaign, ...).",
    )
    slots: list[SlotRequest] = Field(
        min_length=1,
        max_length=MAX_SLOTS_PER_REQUEST,
        description=f"The slots to fill, 1 to {MAX_SLOTS_PER_REQUEST}, each at most once.",
    )

    # Set by the HTTP edge for the public write key (loopwise.api.public_decide): decide for the
    # caller alone, never with a profile that belongs to another user. Not part of the body.
    _caller_only: bool = PrivateAttr(default=False)

    @property
    def caller_only(self) -> bool:
        # read from the private storage itself: ``self._caller_only`` goes through pydantic's
        # ``__getattr__``, which asks the private attribute for a descriptor and catches the
        # AttributeError it raises (microseconds, on every decide)
        private = self.__pydantic_private__
        return bool(private.get("_caller_only", False)) if private else False

    def for_caller_only(self) -> DecideRequest:
        """A copy marked to be decided for the caller alone."""
        copy = self.model_copy()
        copy._caller_only = True
        return copy

    @field_validator("slots")
    @classmethod
    def _unique_slots(cls, slots: list[SlotRequest]) -> list[SlotRequest]:
        first: dict[str, int] = {}
        for index, request in enumerate(slots):
            if request.slot in first:
                raise invalid_at(
                    "DecideRequest",
                    (index, "slot"),
                    f"slot {request.slot!r} is already requested at slots[{first[request.slot]}]; "
                    "ask for each slot once",
                    request.slot,
                )
            first[request.slot] = index
        return slots


class DecidedItem(BaseModel):
    """A catalog item chosen for a list slot."""

    id: str
    title: str = ""
    url: str | None = None
    image: str | None = None
    score: float = Field(description="The strategy's score (comparable within one slot only).")
    propensity: float = Field(
        description="Probability the policy would show this item here (for offline evaluation)."
    )
    attributes: dict[str, Any] | None = Field(
        default=None, description="The item's public attributes (price, ...)."
    )


class Reason(BaseModel):
    """One human-readable reason behind a decision."""

    kind: ReasonKind
    text: str
    ref: str | None = Field(
        default=None, description="Id of what the reason refers to (rule, segment...)."
    )


class DecidedVariant(BaseModel):
    """The content variant chosen for a block slot."""

    id: str
    content: dict[str, Any]


class SlotDecision(BaseModel):
    """What one slot shows and why."""

    slot: str
    kind: Literal["block", "list"]
    variant: DecidedVariant | None = None
    items: list[DecidedItem] = Field(default_factory=list)
    rule: str | None = Field(default=None, description="Id of the rule that matched, if any.")
    strategy: str | None = Field(
        default=None, description="Strategy asked for the items (list slots)."
    )
    fallback: bool = Field(
        default=False,
        description="True when the strategy failed or fell short and fallbacks filled in.",
    )
    propensity: float = Field(
        default=1.0,
        description="Probability of this outcome: the lowest propensity among the items.",
    )
    ai_influenced: bool = Field(
        default=False,
        description="True when a trained model or the person's own data chose the items.",
    )
    reasons: list[Reason] = Field(default_factory=list)
    bandit: dict[str, Any] | None = Field(
        default=None,
        exclude=True,
        description="A bandit's trace (its distribution, bucket, features): logged with the "
        "decision for learning and off-policy evaluation, not sent to clients.",
    )


Built = TypeVar("Built", bound=BaseModel)


def built(model: type[Built], values: dict[str, Any]) -> Built:
    """The model of ``values`` the decider made itself, every field given and already of its
    type, without running validation (which would only copy them: several microseconds per
    item, a real share of a campaign's per-person cost). The object is the one validation
    makes: equal, same fields set, same JSON."""
    instance = model.__new__(model)
    object.__setattr__(instance, "__dict__", values)
    object.__setattr__(instance, "__pydantic_fields_set__", set(values))
    object.__setattr__(instance, "__pydantic_extra__", None)
    object.__setattr__(instance, "__pydantic_private__", None)
    return instance


CacheStatus = Literal["hit", "miss", "live"]


class CacheInfo(BaseModel):
    """How a decide reply used the pre-render cache."""

    slots: dict[str, CacheStatus] = Field(
        description="Per slot: hit (served from the cache), miss (decided and cached) or live "
        "(depends on the person: never cached)."
    )
    key: str | None = Field(
        default=None,
        description="When every slot is prerenderable: one key for the page's content, the same "
        "for every request that would get the same content (a CDN or server-side cache key).",
    )
    max_age: int = Field(description="Seconds a prerendered slot decision is reused.")


class DecideResponse(BaseModel):
    """Reply of POST /v1/decide."""

    decision_id: str = Field(description="Send it back with impression/click/conversion events.")
    profile_id: str
    segments: list[str] = Field(description="Keys of the segments the user is in.")
    slots: list[SlotDecision]
    ai_influenced: bool = Field(
        default=False,
        description="True when any slot was chosen by a trained model or the person's own data.",
    )
    cache: CacheInfo | None = Field(
        default=None, description="Which slots came from the pre-render cache (docs/delivery.md)."
    )
