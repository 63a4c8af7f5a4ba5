"""Limits that keep idle, slow or too many connections from exhausting ``loopwise serve``.

uvicorn closes a kept-alive connection after ``timeout_keep_alive``, but a connection that never
finishes its request line and headers, or that trickles its body, is held forever, and its
``limit_concurrency`` counts open connections (so idle ones make it refuse everyone) and answers
in plain text. So:

* :class:`ServerLimits` holds the values (``loopwise serve`` options or ``LOOPWISE_*`` variables);
* :func:`loopwise.api.server_protocol.protocol_class` enforces the per-connection limits (header
  and body deadlines, header size, connection cap) inside uvicorn's HTTP protocol;
* :class:`ConcurrencyLimit` answers 503 problem+json with ``Retry-After`` while
  ``max_concurrent_requests`` requests are in flight (``/healthz`` is always answered);
* :func:`raise_open_file_limit` lifts the soft ``RLIMIT_NOFILE`` to the hard one.
"""

from __future__ import annotations

import resource
from collections.abc import Mapping
from dataclasses import dataclass

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from loopwise.errors import LoopwiseError

#: Descriptors kept for the database, model files and logs when sizing ``max_connections``.
RESERVED_FILES = 256
#: The soft file limit is raised to the hard one, but no further than this.
MAX_OPEN_FILES = 1 << 20
EXEMPT_PATHS = frozenset({"/healthz"})


class ServerBusy(LoopwiseError):
    status = 503
    slug = "server-busy"
    title = "Server busy"


class RequestTimeout(LoopwiseError):
    status = 408
    slug = "request-timeout"
    title = "Request timeout"


class HeadersTooLarge(LoopwiseError):
    status = 431
    slug = "headers-too-large"
    title = "Request headers too large"


@dataclass(frozen=True)
class ServerLimits:
    """What ``loopwise serve`` allows a client; see README "Server limits"."""

    keep_alive_timeout: float = 5.0
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_concurrent_requests: int = 100
    max_connections: int = 0  # 0: the open-file limit less RESERVED_FILES
    max_header_bytes: int = 64 * 1024
    retry_after: int = 1

    def check(self) -> None:
        """Raise ValueError naming the first value out of range."""
        for name in ("keep_alive_timeout", "header_timeout", "body_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be more than 0 seconds.")
        for name in ("max_concurrent_requests", "max_header_bytes", "retry_after"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be 1 or more.")
        if self.max_connections < 0:
            raise ValueError("max_connections must be 0 (from the open-file limit) or more.")

    def connection_cap(self, open_files: int) -> int:
        """Connections accepted at once: the option, else what the file limit leaves."""
        return self.max_connections or max(open_files - RESERVED_FILES, 1)


def raise_open_file_limit() -> int:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard limit (capped at ``MAX_OPEN_FILES``) so
    connections do not run out of descriptors first; returns the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = MAX_OPEN_FILES if hard == resource.RLIM_INFINITY else min(hard, MAX_OPEN_FILES)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass  # a sandbox may refuse; the limit in force is what max_connections follows
    return int(soft)


def raw_problem(error: LoopwiseError, headers: Mapping[str, str] | None = None) -> bytes:
    """A complete HTTP/1.1 problem+json response that closes the connection, for the protocol
    to write before any request reached the app."""
    body = orjson.dumps(error.to_problem())
    lines = [
        f"HTTP/1.1 {error.status} {error.title}",
        "content-type: application/problem+json",
        f"content-length: {len(body)}",
        "connection: close",
        *(f"{name}: {value}" for name, value in (headers or {}).items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class ConcurrencyLimit:
    """ASGI middleware: at most ``limit`` requests in the app at once; the next get 503
    problem+json with ``Retry-After`` instead of queueing until everything times out."""

    def __init__(self, app: ASGIApp, limit: int, retry_after: int = 1) -> None:
        self.app = app
        self.limit = limit
        self.retry_after = retry_after
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            await self._busy(scope, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _busy(self, scope: Scope, send: Send) -> None:
        error = ServerBusy(
            f"{self.limit} requests are in progress, the most this server takes at once; retry "
            f"in {self.retry_after} s."
        )
        body = orjson.dumps(error.to_problem(scope.get("path")))
        headers = [
            (b"content-type", b"application/problem+json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(self.retry_after).encode()),
        ]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})
