"""Typed errors raised where problems arise; the HTTP edge maps them to RFC 9457 problem+json once.

Every error names what went wrong, the offending field (a dotted/indexed path such as
``batch[3].userId``) when there is one, and what the caller should do.
"""

from __future__ import annotations

from typing import Any, ClassVar

PROBLEM_BASE = "https://loopwise.dev/problems/"


class LoopwiseError(Exception):
    """Base class. Subclasses fix ``status`` and the stable problem ``type`` slug."""

    status: ClassVar[int] = 400
    slug: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.extra = extra

    @property
    def type(self) -> str:
        return PROBLEM_BASE + self.slug

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        if self.field is not None:
            body["field"] = self.field
        body.update(self.extra)
        return body


class ValidationFailed(LoopwiseError):
    """Input does not match the schema. ``errors`` may list several problems."""

    status = 400
    slug = "validation-failed"
    title = "Invalid request"


class LimitExceeded(LoopwiseError):
    """A size or count limit was exceeded (event 32 KB, request 500 KB, batch 2,500 events)."""

    status = 400
    slug = "limit-exceeded"
    title = "Limit exceeded"


class PayloadTooLarge(LimitExceeded):
    status = 413
    slug = "payload-too-large"
    title = "Payload too large"


class Unauthorized(LoopwiseError):
    status = 401
    slug = "unauthorized"
    title = "Missing or invalid API key"


class Forbidden(LoopwiseError):
    status = 403
    slug = "forbidden"
    title = "API key lacks the required scope"


class OriginNotAllowed(Forbidden):
    """A browser origin not in the workspace's ``cors.allowed_origins``."""

    slug = "origin-not-allowed"
    title = "Origin not allowed"


class NotFound(LoopwiseError):
    status = 404
    slug = "not-found"
    title = "Not found"


class Conflict(LoopwiseError):
    status = 409
    slug = "conflict"
    title = "Conflict"


class UnsupportedMediaType(LoopwiseError):
    status = 415
    slug = "unsupported-media-type"
    title = "Unsupported media type"


class ConfigError(ValidationFailed):
    """The workspace (loopwise.yaml or admin API body) is invalid. ``field`` is the path in the
    document; ``line`` (when known) is the 1-based line in the YAML file."""

    slug = "invalid-workspace"
    title = "Invalid workspace configuration"


class ConditionError(ConfigError):
    """A targeting condition is malformed; ``field`` is the path inside the condition."""

    slug = "invalid-condition"
    title = "Invalid condition"


class StorageUnavailable(LoopwiseError):
    status = 503
    slug = "storage-unavailable"
    title = "Storage unavailable"


class TooManyRequests(LoopwiseError):
    """Over a rate limit; ``retry_after`` (seconds) is also sent as the Retry-After header."""

    status = 429
    slug = "rate-limited"
    title = "Too many requests"
