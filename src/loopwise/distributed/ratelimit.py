"""Rate-limit token buckets in Redis, shared by every worker: with ``--workers N`` the limit is the
configured one, not N times it.

One hash per bucket (``tokens``, ``at``), refilled and taken in one Lua script, so two workers
never both spend the last token; the clock is Redis's own (``TIME``), so workers' clocks need not
agree. A bucket idle long enough to be full again expires. When Redis cannot be reached the
worker falls back to its own per-process buckets (a logged warning; retried after a pause):
a request is never failed because Redis is down.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable

import redis

from loopwise.api.edge_settings import RateLimit
from loopwise.api.ratelimit import TokenBuckets

log = logging.getLogger("loopwise.distributed")

RETRY_AFTER_FAILURE_S = 5.0
# Tight timeouts for this client only: a local Redis answers the script in well under 1 ms, so
# 50 ms without a connection or an answer means it is unreachable (the margin is for a loaded
# host, where a tighter bound would fall back by mistake and split the limit across workers).
CONNECT_TIMEOUT_S = 0.05
READ_TIMEOUT_S = 0.05

# KEYS[1] bucket; ARGV: per_second, burst. Returns the microseconds to wait (0: taken).
_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil then
  tokens = burst
else
  tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
end
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.ceil((1 - tokens) / rate * 1000000)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 1)
return wait
"""


class RedisTokenBuckets:
    """``TokenBuckets`` kept in Redis (same ``take``); per-process while Redis is down."""

    def __init__(
        self, url: str, namespace: str, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.prefix = f"loopwise:{namespace}:rl:"
        # a request waits at most these for a Redis that is going away, then falls back
        self._redis = redis.Redis.from_url(
            url,
            socket_timeout=READ_TIMEOUT_S,
            socket_connect_timeout=CONNECT_TIMEOUT_S,
            retry_on_timeout=False,
        )
        self._take = self._redis.register_script(_TAKE)
        self._local = TokenBuckets(clock)
        self._clock = clock
        self._down_until = 0.0
        self.fallbacks = 0  # requests counted per process because Redis was unreachable

    def _key(self, key: tuple[str, ...]) -> str:
        # the bucket key holds a client address: only a hash of it goes to Redis
        return self.prefix + hashlib.sha256("\x00".join(key).encode()).hexdigest()[:24]

    def take(self, key: tuple[str, ...], limit: RateLimit) -> float:
        if limit.per_second <= 0:
            return 0.0
        now = self._clock()
        if now >= self._down_until:
            try:
                wait_us = self._take(
                    keys=[self._key(key)], args=[repr(float(limit.per_second)), limit.burst]
                )
                return int(wait_us) / 1_000_000
            except redis.RedisError as exc:
                self._down_until = now + RETRY_AFTER_FAILURE_S
                log.warning(
                    "rate limits: Redis is unreachable (%s); counting per worker until it is "
                    "back (each worker allows the full limit meanwhile)",
                    type(exc).__name__,
                )
        self.fallbacks += 1
        return self._local.take(key, limit)

    def close(self) -> None:
        self._redis.close()
