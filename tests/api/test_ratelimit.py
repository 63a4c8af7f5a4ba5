"""Per-key token buckets: 429 problem+json with Retry-After; 0 means unlimited."""

from __future__ import annotations

from fastapi.testclient import TestClient

from loopwise.api.edge_settings import RateLimit, RateLimitSettings
from loopwise.api.ratelimit import TokenBuckets
from tests.api.conftest import ADMIN, SERVER, WRITE, bearer
from tests.api.fake_engine import FakeEngine


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_a_burst_then_refills_at_the_rate() -> None:
    ticks = Ticks()
    buckets = TokenBuckets(ticks)
    limit = RateLimit(per_second=2, burst=3)
    assert [buckets.take(("k",), limit) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take(("k",), limit) == 0.5  # one token back in half a second
    ticks.now = 0.5
    assert buckets.take(("k",), limit) == 0.0
    assert buckets.take(("other",), limit) == 0.0  # buckets are per key


def test_zero_means_unlimited() -> None:
    buckets = TokenBuckets(Ticks())
    limit = RateLimit(per_second=0, burst=1)
    assert all(buckets.take(("k",), limit) == 0.0 for _ in range(1000))


def test_over_the_limit_is_429_with_retry_after(client: TestClient, engine: FakeEngine) -> None:
    engine.settings_rate_limits = RateLimitSettings(
        server=RateLimit(per_second=0.1, burst=2), admin=RateLimit(per_second=0, burst=1)
    )
    statuses = [client.get("/v1/items", headers=bearer(SERVER)).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    response = client.get("/v1/items", headers=bearer(SERVER))
    assert response.status_code == 429
    assert response.headers["content-type"].startswith("application/problem+json")
    # a token comes back every 10 s; the time the requests took counts (a loaded machine: 9)
    assert response.headers["retry-after"] in {"9", "10"}
    body = response.json()
    assert body["retry_after"] == int(response.headers["retry-after"])
    assert "rate_limits" in body["detail"]
    assert SERVER not in response.text
    # another key has its own bucket; 0 = unlimited
    assert all(client.get("/v1/items", headers=bearer(ADMIN)).status_code == 200 for _ in range(20))
    assert client.get("/healthz").status_code == 200  # health checks are never limited


def test_requests_without_a_valid_key_are_limited_per_address(
    client: TestClient, engine: FakeEngine
) -> None:
    engine.settings_rate_limits = RateLimitSettings(
        unauthenticated=RateLimit(per_second=0.5, burst=2), write=RateLimit(per_second=0, burst=1)
    )
    wrong = [client.get("/v1/items", headers=bearer("guess")).status_code for _ in range(3)]
    assert wrong == [401, 401, 429]
    # the write key (browser traffic) has its own, here unlimited, bucket
    track = {"type": "track", "event": "E", "anonymousId": "a", "messageId": "m"}
    statuses = {
        client.post("/v1/track", json=track, headers=bearer(WRITE)).status_code for _ in range(10)
    }
    assert statuses == {200}


def test_ipv6_clients_are_limited_per_64_prefix() -> None:
    """One IPv6 host usually holds a whole /64: counting each address apart would let it send
    without limit (and churn every other caller's bucket out of the bounded map)."""
    from loopwise.api.ratelimit import _client

    def scope(address: str) -> dict[str, object]:
        return {"type": "http", "client": (address, 5000)}

    assert _client(scope("2001:db8:1:2::1")) == _client(scope("2001:db8:1:2:ffff::9"))
    assert _client(scope("2001:db8:1:2::1")) != _client(scope("2001:db8:1:3::1"))
    assert _client(scope("203.0.113.7")) != _client(scope("203.0.113.8"))
    assert _client(scope("::ffff:203.0.113.7")) == _client(scope("203.0.113.7"))
    assert _client({"type": "http"}) == "unknown"
