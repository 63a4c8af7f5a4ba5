"""Workspace settings of the HTTP edge: CORS origins and rate limits (``cors:`` and
``rate_limits:`` in ``loopwise.yaml``). Pure pydantic models; :mod:`loopwise.config` embeds them
and the middlewares in :mod:`loopwise.api.cors` and :mod:`loopwise.api.ratelimit` read the live
workspace's values on every request, so an admin-API change applies at once."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator


class CorsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    allowed_origins: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="Origins (scheme://host[:port]) whose pages may call the browser routes "
        '(ingest, "Why am I seeing this?") with the write key; "*" allows any origin. Empty: '
        "same-origin only.",
    )
    max_age_seconds: int = Field(
        default=600, ge=0, le=86_400, description="How long browsers may cache a preflight."
    )

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        out = []
        for origin in origins:
            origin = origin.strip().rstrip("/")
            if origin == "*":
                out.append(origin)
                continue
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
                raise ValueError(
                    f"{origin!r} is not an origin; write scheme://host[:port], e.g. "
                    "https://shop.example (no path), or * for any origin"
                )
            out.append(origin.lower())
        return out


class RateLimit(BaseModel):
    """A token bucket: ``per_second`` tokens refill each second up to ``burst``; a request takes
    one. ``per_second: 0`` means unlimited."""

    model_config = ConfigDict(extra="forbid")

    per_second: float = Field(ge=0, le=1_000_000, description="Sustained requests per second.")
    burst: int = Field(ge=1, le=10_000_000, description="Requests allowed at once.")


class RateLimitSettings(BaseModel):
    """Limits per API key (the public write key: per key and client address) and, for requests
    without a valid key, per client address. Defaults leave room for load tests on one machine."""

    model_config = ConfigDict(extra="forbid")

    write: RateLimit = RateLimit(per_second=1000, burst=5000)
    server: RateLimit = RateLimit(per_second=5000, burst=20_000)
    admin: RateLimit = RateLimit(per_second=500, burst=5000)
    unauthenticated: RateLimit = RateLimit(per_second=200, burst=2000)
