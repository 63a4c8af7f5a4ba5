"""Prometheus metrics for one app, on a private registry (two apps in one process never clash).

Requests are labelled by route *template* (``/v1/profiles/{identifier}``), never the raw path, so
user ids cannot blow up label cardinality; requests matching no route share ``unmatched``. A
request whose client disconnected before any response is counted with status ``499``, apart from
the server's errors. The
middleware is pure ASGI: Starlette's BaseHTTPMiddleware adds a task and a queue per request.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import choose_encoder
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DURATION_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip
UNMATCHED = "unmatched"
#: The status label of a request whose client went away before any response (nginx's 499,
#: "client closed request"): neither the server's fault (5xx) nor a served request.
CLIENT_DISCONNECTED = "499"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Metrics:
    """The counters the API and the ingest/decide paths update."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "loopwise_http_requests",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "loopwise_http_request_duration_seconds",
            "Time to serve a request, by route template.",
            ["route"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.events_accepted = Counter(
            "loopwise_events_accepted", "Events stored (new message ids).", registry=self.registry
        )
        self.events_duplicate = Counter(
            "loopwise_events_duplicate",
            "Events ignored as retries of stored message ids.",
            registry=self.registry,
        )
        self.events_anonymised = Counter(
            "loopwise_events_anonymised",
            "Events of people without analytics consent: counted in item popularity only, "
            "stored nowhere.",
            registry=self.registry,
        )
        self.decisions = Counter(
            "loopwise_decisions", "Decide requests answered.", registry=self.registry
        )
        self.client_metrics = Counter(
            "loopwise_client_metrics",
            "Delivery-metric series third-party SDKs reported (Segment's /v1/m); not stored.",
            registry=self.registry,
        )

    def record_ingest(self, accepted: int, duplicates: int, anonymised: int = 0) -> None:
        self.events_accepted.inc(accepted)
        self.events_duplicate.inc(duplicates)
        self.events_anonymised.inc(anonymised)

    def render(self, accept: str | None) -> tuple[bytes, str]:
        """Exposition in the format the scraper asked for (text by default, or OpenMetrics)."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type

    def observe_request(self, route: str, method: str, status: int | str, seconds: float) -> None:
        self.requests.labels(route=route, method=method, status=str(status)).inc()
        self.duration.labels(route=route).observe(seconds)


def route_template(scope: Scope) -> str:
    """The matched route's path template, after routing filled ``scope["route"]``."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template if isinstance(template, str) and template else UNMATCHED


class MetricsMiddleware:
    """Counts and times every HTTP request by route template, method and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: int | str = 500
        responded = gone = False  # gone: the client left before any response started

        async def watch() -> Message:
            nonlocal gone
            message = await receive()
            if message["type"] == "http.disconnect" and not responded:
                gone = True
            return message

        async def capture(message: Message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                status, responded = int(message["status"]), True
            await send(message)

        try:
            await self.app(scope, watch, capture)
        finally:
            if gone:  # whatever was sent after (an error about the missing body) reached nobody
                status = CLIENT_DISCONNECTED
            self.metrics.observe_request(
                route_template(scope),
                scope["method"] if scope["method"] in METHODS else "other",
                status,
                time.perf_counter() - started,
            )


def metrics_of(request: Request) -> Metrics:
    """The metrics ``create_app`` attached to this request's app."""
    metrics = request.app.state.metrics
    assert isinstance(metrics, Metrics)
    return metrics
