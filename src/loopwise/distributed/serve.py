"""``loopwise serve --database-url postgresql://... --redis-url redis://... --workers N``.

With ``--workers 1`` (the default) the server runs in the ``loopwise serve`` process as always.
With more, ``loopwise serve`` opens the engine once (migrations under PostgreSQL's advisory lock,
keys, the workspace file reconciled, the initial catalog), closes it, and hands uvicorn an app
factory: uvicorn starts N worker processes on one listening socket, each building its own
engine from :data:`CONFIG_ENV` (:func:`worker_app`), and starts a new one when a worker dies.
Several hosts pointing at the same servers are the same thing, one ``loopwise serve`` each.

Every worker's app also answers ``wait=applied`` on ``/v1/decide``: the decision reflects
every event acknowledged before the request was sent, read from PostgreSQL rather than from this
worker's cache (:meth:`ScaleOut.forget_person`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from loopwise.errors import ValidationFailed

if TYPE_CHECKING:
    from loopwise.engine import Engine

CONFIG_ENV = "LOOPWISE_SERVE_WORKER"  # the worker processes' settings (JSON), set by serve
WAIT_APPLIED = "applied"
_MAX_PEEK_BYTES = 1024 * 1024
PROBLEM_JSON = "application/problem+json"
WORKER_HEALTHCHECK_S = 60


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    data_dir: str
    workspace: str | None
    database_url: str | None
    redis_url: str | None
    event_time_clock: bool
    limits: dict[str, Any]

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> WorkerConfig:
        raw = (environ if environ is not None else os.environ).get(CONFIG_ENV)
        if not raw:
            raise RuntimeError(f"{CONFIG_ENV} is not set: worker processes are started by serve")
        return cls(**json.loads(raw))


def check_options(database_url: str | None, redis_url: str | None, workers: int) -> str | None:
    """What is wrong with this combination of options (None: nothing)."""
    from loopwise.storage import url_scheme

    scheme = url_scheme(database_url)
    if workers < 1:
        return "--workers must be at least 1."
    if workers > 1 and scheme not in ("postgresql", "postgres"):
        return (
            "Several workers need a shared database: give --database-url postgresql://... "
            "(SQLite serves one process)."
        )
    if workers > 1 and not redis_url:
        return (
            "Several workers need --redis-url redis://... to tell each other what changed "
            "(their caches would drift apart otherwise)."
        )
    if redis_url and scheme not in ("postgresql", "postgres"):
        return "--redis-url goes with --database-url postgresql://... (the system of record)."
    if redis_url and not redis_url.startswith(("redis://", "rediss://", "unix://")):
        return "--redis-url must start with redis://, rediss:// or unix://."
    return None


class WorkerApp:
    """The app of one worker: ``wait=applied`` on decide, and the engine closed at shutdown."""

    def __init__(self, app: ASGIApp, engine: Engine, on_close: Callable[[], None]) -> None:
        self.app = app
        self.engine = engine
        self._on_close = on_close
        self._closed = False

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._on_close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":

            async def closing_send(message: Message) -> None:
                if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                    await run_in_threadpool(self.close)
                await send(message)

            await self.app(scope, receive, closing_send)
            return
        if scope["type"] == "http" and scope["path"] == "/v1/decide":
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            if "wait" in query:
                await self._decide_applied(query["wait"], scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _decides_for_anyone(self, scope: Scope) -> bool | None:
        """True for a key that may decide for anyone, False for the browser's write key, None
        for no valid key."""
        from loopwise.api.auth import key_from_headers
        from loopwise.api.keys import KeyKind, has_scope
        from loopwise.api.keys import Scope as KeyScope
        from loopwise.errors import LoopwiseError

        try:
            key = key_from_headers(Headers(scope=scope))
        except LoopwiseError:
            return None
        kind: KeyKind | None = self.engine.keys.authenticate(key) if key else None
        if kind is None:
            return None
        return has_scope(kind, KeyScope.DECIDE)

    async def _decide_applied(
        self, wait: list[str], scope: Scope, receive: Receive, send: Send
    ) -> None:
        if wait != [WAIT_APPLIED]:
            error = ValidationFailed(
                f"wait must be {WAIT_APPLIED!r} (the decision then reflects every event "
                "acknowledged before this request), or left out.",
                field="wait",
            )
            body = orjson.dumps(error.to_problem(scope["path"]))
            await send(
                {
                    "type": "http.response.start",
                    "status": error.status,
                    "headers": [
                        (b"content-type", PROBLEM_JSON.encode()),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if not message.get("more_body") or size > _MAX_PEEK_BYTES:
                break
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
        # only for a caller the route will let decide (it answers everyone else with a 401):
        # a server or admin key for anyone, the browser's write key for its anonymous id
        identifiers = _people(body, everyone=self._decides_for_anyone(scope))
        scale = getattr(self.engine.services, "scale", None)
        if identifiers and scale is not None:
            await run_in_threadpool(scale.forget_person, *identifiers)

        async def replay() -> Message:
            if messages:
                return messages.pop(0)
            return await receive()

        await self.app(scope, replay, send)


def _people(body: bytes, *, everyone: bool | None) -> list[str]:
    """The user and anonymous ids a decide body names (invalid bodies: none; the route says
    what is wrong with them); ``everyone`` False: only the anonymous id, None: nobody."""
    if everyone is None:
        return []
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return []
    user = parsed.get("user") if isinstance(parsed, dict) else None
    if not isinstance(user, dict):
        return []
    names = ("user_id", "userId", "anonymous_id", "anonymousId") if everyone else ()
    found = [user.get(k) for k in (*names, "anonymous_id", "anonymousId")]
    return list(dict.fromkeys(value for value in found if isinstance(value, str) and value))


def build_worker_app(config: WorkerConfig) -> WorkerApp:
    """Open the engine and build the app one process serves."""
    from loopwise.api.app import create_app
    from loopwise.api.server_limits import ConcurrencyLimit, ServerLimits
    from loopwise.clock import EventTimeClock, system_clock
    from loopwise.engine import Engine
    from loopwise.privacy.retention import DailyRetention

    limits = ServerLimits(**config.limits)
    clock = EventTimeClock() if config.event_time_clock else system_clock
    engine, _ = Engine.open(
        Path(config.data_dir),
        Path(config.workspace) if config.workspace else None,
        clock=clock,
        database_url=config.database_url,
        redis_url=config.redis_url,
    )
    # no periodic retraining here: N workers would each train; run `loopwise train` instead
    retention = DailyRetention(engine.run_retention).start()

    def close() -> None:
        retention.stop()
        engine.close()

    app = ConcurrencyLimit(create_app(engine), limits.max_concurrent_requests, limits.retry_after)
    return WorkerApp(app, engine, close)


def worker_app() -> WorkerApp:
    """uvicorn's app factory in each worker process."""
    return build_worker_app(WorkerConfig.from_env())


def worker_protocol() -> type:
    """The HTTP protocol class (header and body deadlines, connection cap) for a worker, from
    the same settings; bound under this module's name so uvicorn can hand it to the workers."""
    from loopwise.api.server_limits import ServerLimits, raise_open_file_limit
    from loopwise.api.server_protocol import protocol_class

    raw = os.environ.get(CONFIG_ENV)
    limits = ServerLimits(**json.loads(raw)["limits"]) if raw else ServerLimits()
    protocol = protocol_class(limits, raise_open_file_limit())
    protocol.__module__ = __name__
    protocol.__qualname__ = protocol.__name__ = "WorkerHttpProtocol"
    return protocol


def run_workers(
    config: WorkerConfig, *, host: str, port: int, workers: int, log_level: str
) -> None:
    """Serve with ``workers`` processes (uvicorn's supervisor restarts one that dies)."""
    import uvicorn

    from loopwise.api.server_limits import ServerLimits

    os.environ[CONFIG_ENV] = config.to_env()
    limits = ServerLimits(**config.limits)
    uvicorn.run(
        f"{__name__}:worker_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=False,  # access logs would carry user ids in paths and client IPs
        http=f"{__name__}:WorkerHttpProtocol",
        timeout_keep_alive=limits.keep_alive_timeout,  # type: ignore[arg-type]
        # a worker opening its engine (imports, caches) can hold the GIL past uvicorn's 5 s
        # health check on a busy machine; it would be killed and started again, forever
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_S,
    )


def __getattr__(name: str) -> Any:
    # built on first use in the process that imports it (a worker), from CONFIG_ENV
    if name == "WorkerHttpProtocol":
        protocol = worker_protocol()
        globals()[name] = protocol
        return protocol
    raise AttributeError(name)
