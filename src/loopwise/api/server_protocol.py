"""uvicorn's HTTP protocol with the per-connection limits of :class:`ServerLimits`.

The headers must be complete ``header_timeout`` seconds after the connection opened or the
request began (else 408 and closed), the body ``body_timeout`` seconds after the headers (else
closed: the app sees a disconnect), headers above ``max_header_bytes`` get 431, and a connection
beyond ``max_connections`` gets 503 with ``Retry-After`` and is closed at once. Kept in its own
module so the CLI can read the defaults without importing uvicorn.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from loopwise.api.server_limits import (
    HeadersTooLarge,
    RequestTimeout,
    ServerBusy,
    ServerLimits,
    raw_problem,
)
from loopwise.errors import LoopwiseError


class _LimitedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol with a read deadline per request and a connection cap.

    Each connection is in one phase: ``headers`` (open, or a request begun, headers not complete:
    the header deadline runs), ``body`` (headers complete, body not: the body deadline runs),
    ``idle`` (between requests: uvicorn's keep-alive timeout applies) or ``refused`` (answered
    by a limit and closing)."""

    limits: ClassVar[ServerLimits]
    connection_limit: ClassVar[int]

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = None
        self._phase = "idle"
        self._header_bytes = 0
        if len(self.connections) > self.connection_limit:
            busy = ServerBusy(
                f"The server holds its maximum of {self.connection_limit} connections; retry in "
                f"{self.limits.retry_after} s."
            )
            self._refuse(busy, {"retry-after": str(self.limits.retry_after)})
            return
        self._begin_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._phase == "refused":
            return
        if self._phase == "idle":  # the first bytes of the next request
            self._begin_headers()
        if self._phase == "headers":
            self._header_bytes += len(data)
        super().data_received(data)
        # what is still unparsed header data (a first chunk may carry the body too)
        if self._phase == "headers" and self._header_bytes > self.limits.max_header_bytes:
            self._refuse_large_headers()

    def on_headers_complete(self) -> None:
        size = len(self.url) + sum(len(name) + len(value) for name, value in self.headers)
        if size > self.limits.max_header_bytes:
            self._refuse_large_headers()
            return
        super().on_headers_complete()
        # a request without a body completes right after this, which disarms the deadline
        self._phase = "body"
        self._arm(self.limits.body_timeout, self._body_timed_out)

    def on_body(self, body: bytes) -> None:
        if self._phase != "refused":
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._phase == "refused":
            return
        super().on_message_complete()
        self._phase = "idle"
        self._disarm()

    def _begin_headers(self) -> None:
        self._phase = "headers"
        self._header_bytes = 0
        self._arm(self.limits.header_timeout, self._headers_timed_out)

    # deadlines

    def _arm(self, seconds: float, handler: Callable[[], None]) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, handler)

    def _disarm(self) -> None:
        deadline = getattr(self, "_deadline", None)
        if deadline is not None:
            deadline.cancel()
            self._deadline = None

    def _headers_timed_out(self) -> None:
        self._deadline = None
        timeout = RequestTimeout(
            f"The request line and headers must arrive within {self.limits.header_timeout:g} s "
            "of the connection or of the previous response; the connection is closed."
        )
        self._refuse(timeout)

    def _body_timed_out(self) -> None:
        # The app is reading this body: closing makes its receive() report a disconnect,
        # which ends the request without a response, as any client that went away.
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()

    def _refuse_large_headers(self) -> None:
        large = HeadersTooLarge(
            f"Request line and headers exceed {self.limits.max_header_bytes:,} bytes; send "
            "less in headers (cookies, query string)."
        )
        self._refuse(large)

    def _refuse(self, error: LoopwiseError, headers: Mapping[str, str] | None = None) -> None:
        self._phase = "refused"  # the parser may still call back for the rest of the chunk
        self._disarm()
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:  # nothing else is being written
            self.transport.write(raw_problem(error, headers))
        self.transport.close()


def protocol_class(limits: ServerLimits, open_files: int) -> type[asyncio.Protocol]:
    """The protocol class to give uvicorn (``http=``), bound to these limits."""
    return type(
        "LoopwiseHttpProtocol",
        (_LimitedHttpTools,),
        {"limits": limits, "connection_limit": limits.connection_cap(open_files)},
    )
