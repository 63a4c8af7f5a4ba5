"""Per-key rate limits: a token bucket per API key (the public write key: per key and client
address, since every browser shares it) and per client address for requests without a valid key.
An IPv6 client address counts as its /64.
Over the limit: 429 problem+json with ``Retry-After`` (whole seconds until a token is back).

The bucket key holds a key *id* (a hash prefix) and the client address only in memory, never in a
log or metric. Buckets are kept in an LRU map of bounded size, so spraying addresses cannot grow
memory without bound (an evicted bucket just starts full again).
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from loopwise.api.auth import key_from_headers
from loopwise.api.edge_settings import RateLimit, RateLimitSettings
from loopwise.api.keys import KeyKind, hash_key
from loopwise.api.problems import ProblemResponse
from loopwise.api.routes_ingest import INGEST_PATHS
from loopwise.errors import LoopwiseError, TooManyRequests

MAX_BUCKETS = 100_000
_EXEMPT = ("/healthz", "/metrics")  # load balancers and scrapers poll these


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class Buckets(Protocol):
    """Where buckets live: this process (``TokenBuckets``) or Redis (loopwise.distributed)."""

    def take(self, key: tuple[str, ...], limit: RateLimit) -> float: ...


class TokenBuckets:
    """Token buckets keyed by caller; ``take`` returns 0 when allowed, else the seconds to wait."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: OrderedDict[tuple[str, ...], _Bucket] = OrderedDict()

    def take(self, key: tuple[str, ...], limit: RateLimit) -> float:
        if limit.per_second <= 0:
            return 0.0
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(float(limit.burst), now)
            self._buckets[key] = bucket
            if len(self._buckets) > MAX_BUCKETS:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(
                float(limit.burst), bucket.tokens + (now - bucket.at) * limit.per_second
            )
            bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / limit.per_second


def _client(scope: Scope) -> str:
    """The caller's address; an IPv6 caller's /64 (one host or LAN usually holds a whole /64)."""
    client = scope.get("client")
    if not client:
        return "unknown"
    address = str(client[0])
    if ":" not in address:
        return address
    try:
        ip = ipaddress.IPv6Address(address)
    except ValueError:
        return address
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.IPv6Network((ip, 64), strict=False))


class RateLimitMiddleware:
    """ASGI middleware; ``settings`` and ``kind_of`` read the live workspace and key ring."""

    def __init__(
        self,
        app: ASGIApp,
        settings: Callable[[], RateLimitSettings],
        kind_of: Callable[[str], KeyKind | None],
        buckets: Buckets | None = None,
    ) -> None:
        self.app = app
        self.settings = settings
        self.kind_of = kind_of
        self.buckets: Buckets = buckets or TokenBuckets()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _EXEMPT or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        limits = self.settings()
        try:
            key = key_from_headers(Headers(scope=scope))
        except LoopwiseError:
            key = None  # the route answers 401; count it against the address
        kind = self.kind_of(key) if key else None
        bucket: tuple[str, ...]
        if kind is None:
            bucket, limit = ("anonymous", _client(scope)), limits.unauthenticated
            if scope["path"] in INGEST_PATHS:
                limit = limits.write  # ingest may carry the write key in its body
                bucket = ("write-body", _client(scope))
        elif kind is KeyKind.WRITE:
            bucket, limit = ("write", hash_key(key or "")[:12], _client(scope)), limits.write
        else:
            bucket, limit = (kind.value, hash_key(key or "")[:12]), getattr(limits, kind.value)
        wait = self.buckets.take(bucket, limit)
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        retry_after = max(1, math.ceil(wait))
        who = "this key" if kind is not None else "this client address"
        error = TooManyRequests(
            f"Too many requests for {who}: the limit is {limit.per_second:g} per second "
            f"(bursts of {limit.burst}). Retry after {retry_after} s, or raise rate_limits in "
            "the workspace.",
            field="Authorization" if kind is not None else None,
            retry_after=retry_after,
        )
        response = ProblemResponse(
            error.to_problem(scope["path"]),
            status_code=429,
            headers={"Retry-After": str(retry_after)},
        )
        await response(scope, receive, send)
