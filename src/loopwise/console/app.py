"""The console's pieces around one engine, and its routes under ``/ui`` in the API's app.

:class:`Console` holds the engine's services plus what only the console needs: people and
sessions, the segment census and the traffic pulse. :func:`mount_console` includes every page's
router into the HTTP app (same process and port as the API) and starts the background readers on
the first console request.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, FastAPI, Request
from starlette.responses import Response

from loopwise.clock import system_clock
from loopwise.console import (
    page_experiments,
    page_history,
    page_models,
    page_overview,
    page_people,
    page_privacy,
    page_segments,
    page_slots,
    page_users,
)
from loopwise.console.assets import static_response
from loopwise.console.background import Background
from loopwise.console.census import SegmentCensus
from loopwise.console.consent_history import ConsentHistory
from loopwise.console.ledger import LedgerReader
from loopwise.console.people import People, SignedIn, SignInRefused, SlowDown
from loopwise.console.pulse import Pulse
from loopwise.console.web import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    VIEWER,
    ConsoleRoute,
    form_of,
    redirect,
    render,
    signed_in,
)
from loopwise.errors import Forbidden

if TYPE_CHECKING:
    from loopwise.api.metrics import Metrics
    from loopwise.engine import Engine


class Console:
    def __init__(self, engine: Engine, metrics: Metrics | None = None) -> None:
        self.engine = engine
        self.services = services = engine.services
        # sessions expire by the wall clock, even when the engine follows simulated time
        self.people = People(services.storage, system_clock)
        self.census = SegmentCensus(
            services.profiles,
            lambda: services.workspace.compiled,
            services.privacy,
            lambda: services.workspace.workspace.privacy,
            services.clock,
        )
        self.ledger = LedgerReader(services.privacy, services.decide, services.clock)
        self.consent_history = ConsentHistory(services.storage)
        self.background = Background(
            [self.census.count_now, self._record_consent, self.ledger.count_now]
        )
        self.census.on_definitions_changed = self.background.wake
        # told after commit: segment entries and exits, and workspace changes
        services.projector.listeners.append(self.census.on_effects)
        services.workspace.listeners.append(self.census.definitions_changed)
        self.pulse = Pulse(metrics) if metrics is not None else None
        self.data_dir: Path | None = services.models.data_dir
        self._started = False

    def _record_consent(self) -> None:
        if self.census.last is not None:
            self.consent_history.record(self.census.last)

    def start(self) -> None:
        """Start the background readers (once): the census, the ledger and the pulse."""
        if self._started:
            return
        self._started = True
        self.background.start()
        if self.pulse is not None:
            self.pulse.start()

    def stop(self) -> None:
        self.background.stop()
        if self.pulse is not None:
            self.pulse.stop()


router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


def _secure(request: Request) -> bool:
    """Cookies are Secure behind TLS (directly, or at a proxy that says so)."""
    proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or proto == "https"


def _next(value: str) -> str:
    """Only console paths on this site (no open redirect)."""
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not parts.path.startswith("/ui") or "//" in value:
        return "/ui"
    return parts.path


@router.get("/ui/login")
def login_page(request: Request, next: str = "/ui") -> Response:
    if signed_in(request) is not None:
        return redirect(request, _next(next))
    return _login_form(request, _next(next))


def _login_form(
    request: Request, next_path: str, message: str = "", email: str = "", status_code: int = 200
) -> Response:
    token = secrets.token_urlsafe(24)
    console: Console = request.app.state.console
    response = render(
        request,
        "login.html",
        status_code=status_code,
        login_csrf=token,
        next=next_path,
        message=message,
        email=email,
        no_users=console.people.count() == 0,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=3600,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/ui/login",
    )
    return response


@router.post("/ui/login")
async def login(request: Request) -> Response:
    form = await form_of(request)
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    sent = form.get("login_csrf", "")
    if not cookie or not secrets.compare_digest(cookie.encode(), sent.encode()):
        raise Forbidden(
            "The sign-in form is out of date (its security token is missing); reload it.",
            field="login_csrf",
        )
    console: Console = request.app.state.console
    email, next_path = form.get("email", ""), _next(form.get("next", "/ui"))
    client = request.client.host if request.client is not None else "unknown"
    try:
        token, session = console.people.sign_in(email, form.get("password", ""), client)
    except SlowDown as exc:
        response = _login_form(request, next_path, exc.detail, email, status_code=429)
        response.headers["Retry-After"] = str(exc.extra.get("retry_after", 1))
        return response
    except SignInRefused as exc:
        return _login_form(request, next_path, exc.detail, email, status_code=401)
    response = redirect(request, next_path)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int((session.expires_at - system_clock()).total_seconds()),
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/ui",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/ui/login")
    return response


@router.post("/ui/logout")
async def logout(request: Request, person: Annotated[SignedIn, Depends(VIEWER)]) -> Response:
    console: Console = request.app.state.console
    console.people.sign_out(person)
    response = redirect(request, "/ui/login")
    response.delete_cookie(SESSION_COOKIE, path="/ui")
    return response


@router.get("/ui/static/{name:path}")
def static(name: str, request: Request) -> Response:
    return static_response(name, request)


PAGES = (
    router,
    page_overview.router,
    page_segments.router,
    page_slots.router,
    page_experiments.router,
    page_models.router,
    page_people.router,
    page_privacy.router,
    page_history.router,
    page_users.router,
)


def mount_console(app: FastAPI, engine: Engine, metrics: Metrics | None) -> Console:
    """Serve the console at /ui in ``app`` (the engine's HTTP app)."""
    console = Console(engine, metrics)
    app.state.console = console
    app.router.on_shutdown.append(console.stop)  # the background readers end with the server
    for page in PAGES:
        app.include_router(page)
    return console
