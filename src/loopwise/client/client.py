"""``Client`` and ``AsyncClient``: Loopwise from a site's server, on httpx.

Every call has a short timeout and a few retries with exponential backoff (network errors, 429
and 5xx only; a 4xx is the caller's mistake and is raised as :class:`LoopwiseClientError`). A
circuit breaker skips calls while Loopwise is unreachable: ``decide`` and ``why`` then return
None, which the rendering helpers turn into the page's default content, and ``track`` drops the
event (logged as a count, never with its content). Use the server key: it may decide for any
user (no user token needed) and it must stay on the server.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from loopwise.client.breaker import CircuitBreaker

log = logging.getLogger("loopwise.client")
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class LoopwiseClientError(Exception):
    """Loopwise refused the request (4xx): its problem document says why."""

    def __init__(self, status: int, problem: Mapping[str, Any]) -> None:
        super().__init__(f"{status}: {problem.get('detail') or problem}")
        self.status = status
        self.problem = dict(problem)


@dataclass
class Settings:
    host: str
    key: str
    timeout: float = 0.3  # seconds per attempt: a page cannot wait longer for personalization
    retries: int = 1
    backoff: float = 0.05  # first retry after this, doubling
    breaker: CircuitBreaker = field(default_factory=CircuitBreaker)

    def url(self, path: str) -> str:
        return self.host.rstrip("/") + path


def decide_body(
    slots: Sequence[str | Mapping[str, Any]],
    *,
    user_id: str | None,
    anonymous_id: str | None,
    context: Mapping[str, Any] | None,
) -> dict[str, Any]:
    user = {k: v for k, v in (("user_id", user_id), ("anonymous_id", anonymous_id)) if v}
    wanted = [{"slot": s} if isinstance(s, str) else dict(s) for s in slots]
    return {"user": user, "context": dict(context or {}), "slots": wanted}


def track_body(
    event: str,
    *,
    user_id: str | None,
    anonymous_id: str | None,
    properties: Mapping[str, Any] | None,
    context: Mapping[str, Any] | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"event": event, "properties": dict(properties or {})}
    if user_id:
        body["userId"] = user_id
    if anonymous_id:
        body["anonymousId"] = anonymous_id
    if context:
        body["context"] = dict(context)
    return body


def _outcome(response: httpx.Response) -> Any:
    """The JSON of a 2xx; raises LoopwiseClientError on a 4xx (not retried)."""
    if response.status_code >= 400:
        try:
            problem = response.json()
        except ValueError:
            problem = {"detail": response.text[:200]}
        raise LoopwiseClientError(response.status_code, problem)
    return response.json()


class Client:
    """Synchronous client (Django, Flask). Thread-safe; keep one per process."""

    def __init__(self, host: str, key: str, **options: Any) -> None:
        self.settings = Settings(host, key, **options)
        self._http = httpx.Client(timeout=self.settings.timeout, auth=(key, ""), trust_env=False)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        settings = self.settings
        if not settings.breaker.allow():
            return None
        delay = settings.backoff
        for attempt in range(settings.retries + 1):
            try:
                response = self._http.request(method, settings.url(path), json=body)
            except httpx.HTTPError:
                response = None
            if response is not None and response.status_code not in RETRY_STATUSES:
                settings.breaker.succeeded()
                return _outcome(response)
            if attempt < settings.retries:
                time.sleep(delay)
                delay *= 2
        settings.breaker.failed()
        log.warning("loopwise unreachable: %s %s (showing defaults)", method, path)
        return None

    def decide(
        self,
        slots: Sequence[str | Mapping[str, Any]],
        *,
        user_id: str | None = None,
        anonymous_id: str | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """The decision for the page's slots, or None (show the defaults)."""
        body = decide_body(slots, user_id=user_id, anonymous_id=anonymous_id, context=context)
        result: dict[str, Any] | None = self._call("POST", "/v1/decide", body)
        return result

    def track(
        self,
        event: str,
        *,
        user_id: str | None = None,
        anonymous_id: str | None = None,
        properties: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> bool:
        """Send one event; True once it is stored."""
        body = track_body(
            event, user_id=user_id, anonymous_id=anonymous_id, properties=properties,
            context=context,
        )  # fmt: skip
        return self._call("POST", "/v1/track", body) is not None

    def why(self, decision_id: str) -> dict[str, Any] | None:
        result: dict[str, Any] | None = self._call("GET", f"/v1/decisions/{decision_id}/why")
        return result


class AsyncClient:
    """The same client for async frameworks (FastAPI, Starlette); ``await client.aclose()``."""

    def __init__(self, host: str, key: str, **options: Any) -> None:
        self.settings = Settings(host, key, **options)
        self._http = httpx.AsyncClient(
            timeout=self.settings.timeout, auth=(key, ""), trust_env=False
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        settings = self.settings
        if not settings.breaker.allow():
            return None
        delay = settings.backoff
        for attempt in range(settings.retries + 1):
            try:
                response = await self._http.request(method, settings.url(path), json=body)
            except httpx.HTTPError:
                response = None
            if response is not None and response.status_code not in RETRY_STATUSES:
                settings.breaker.succeeded()
                return _outcome(response)
            if attempt < settings.retries:
                await asyncio.sleep(delay)
                delay *= 2
        settings.breaker.failed()
        log.warning("loopwise unreachable: %s %s (showing defaults)", method, path)
        return None

    async def decide(
        self,
        slots: Sequence[str | Mapping[str, Any]],
        *,
        user_id: str | None = None,
        anonymous_id: str | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        body = decide_body(slots, user_id=user_id, anonymous_id=anonymous_id, context=context)
        result: dict[str, Any] | None = await self._call("POST", "/v1/decide", body)
        return result

    async def track(
        self,
        event: str,
        *,
        user_id: str | None = None,
        anonymous_id: str | None = None,
        properties: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> bool:
        body = track_body(
            event, user_id=user_id, anonymous_id=anonymous_id, properties=properties,
            context=context,
        )  # fmt: skip
        return await self._call("POST", "/v1/track", body) is not None

    async def why(self, decision_id: str) -> dict[str, Any] | None:
        result: dict[str, Any] | None = await self._call("GET", f"/v1/decisions/{decision_id}/why")
        return result
