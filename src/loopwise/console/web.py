"""What every console route shares: who is signed in, their role, CSRF, forms, rendering.

Every route states the least role it needs through one of the dependencies ``VIEWER``, ``EDITOR``,
``ADMIN`` (or none, for the sign-in page). A stranger is sent to ``/ui/login``; a signed-in person
without the role gets a 403 page. Every POST carries the session's CSRF token (a hidden ``csrf``
field, or the ``X-CSRF-Token`` header htmx sends), compared in constant time; without it the
request is refused before the route runs. Errors become HTML (a whole page, or a fragment for
htmx requests) through :class:`ConsoleRoute`, never the API's problem+json.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote

from fastapi import Request
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse, RedirectResponse, Response

from loopwise.console.people import People, Role, SignedIn
from loopwise.errors import Forbidden, LoopwiseError, ValidationFailed

if TYPE_CHECKING:
    from loopwise.console.app import Console

PACKAGE = Path(__file__).parent
TEMPLATES = PACKAGE / "templates"
STATIC = PACKAGE / "static"
SESSION_COOKIE = "lw_console"
LOGIN_CSRF_COOKIE = "lw_console_login"
CSRF_HEADER = "x-csrf-token"
MAX_FORM_BYTES = 256 * 1024
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class NotSignedIn(Exception):
    """The request has no live session: answered with a redirect to the sign-in page."""


class RoleForbidden(Forbidden):
    title = "Not allowed for your role"


class CsrfRefused(Forbidden):
    slug = "csrf-refused"
    title = "Security token missing or wrong"


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


# -- sessions and roles ----------------------------------------------------------------------------
def signed_in(request: Request) -> SignedIn | None:
    if hasattr(request.state, "signed_in"):
        cached: SignedIn | None = request.state.signed_in
        return cached
    console = console_of(request)
    console.start()  # the background readers start with the first console request
    people: People = console.people
    found = people.session(request.cookies.get(SESSION_COOKIE))
    request.state.signed_in = found
    return found


async def form_of(request: Request) -> dict[str, str]:
    """The url-encoded form of a POST (last value wins), read once."""
    cached: dict[str, str] | None = getattr(request.state, "form", None)
    if cached is not None:
        return cached
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise ValidationFailed("The form is too large.", field="body")
    pairs = parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    request.state.pairs = pairs
    form = dict(pairs)
    request.state.form = form
    return form


async def form_list(request: Request, name: str) -> list[str]:
    """Every value of a repeated field, in order."""
    await form_of(request)
    return [value for key, value in request.state.pairs if key == name]


def _check_csrf(request: Request, person: SignedIn, form: dict[str, str]) -> None:
    sent = request.headers.get(CSRF_HEADER) or form.get("csrf") or ""
    if not hmac.compare_digest(sent.encode(), person.csrf.encode()):
        raise CsrfRefused(
            "This request did not carry the page's security token (CSRF), so it was refused. "
            "Reload the page and try again.",
            field="csrf",
        )


def require(role: Role) -> Callable[[Request], Coroutine[Any, Any, SignedIn]]:
    """A dependency: the signed-in person with at least ``role``; CSRF checked on writes."""

    async def dependency(request: Request) -> SignedIn:
        person = signed_in(request)
        if person is None:
            raise NotSignedIn()
        if request.method not in ("GET", "HEAD"):
            _check_csrf(request, person, await form_of(request))
        if not person.role.allows(role):
            raise RoleForbidden(
                f"This needs the {role.value} role; you are signed in as {person.role.value}. "
                "Ask an admin to change your role.",
                field="role",
                needed=role.value,
            )
        return person

    dependency.__name__ = f"require_{role.value}"
    dependency.role = role  # type: ignore[attr-defined]  # read by the route-access test
    return dependency


VIEWER = require(Role.VIEWER)
EDITOR = require(Role.EDITOR)
ADMIN = require(Role.ADMIN)


# -- rendering -----------------------------------------------------------------------------------
@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["asset"] = asset_url
    env.filters["number"] = _number
    env.filters["percent"] = _percent
    env.filters["signed_percent"] = _signed_percent
    return env


def _number(value: Any, digits: int = 0) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and digits:
        return f"{value:,.{digits}f}"
    return f"{round(float(value)):,}"


def _percent(value: Any, digits: int = 1) -> str:
    return "—" if value is None else f"{float(value) * 100:.{digits}f}%"


def _signed_percent(value: Any, digits: int = 1) -> str:
    return "—" if value is None else f"{float(value) * 100:+.{digits}f}%"


@cache
def asset_version(name: str) -> str:
    return hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:12]


def asset_url(name: str) -> str:
    return f"/ui/static/{name}?v={asset_version(name)}"


@dataclass(frozen=True, slots=True)
class NavItem:
    path: str
    label: str


NAV = (
    NavItem("/ui", "Overview"),
    NavItem("/ui/segments", "Segments"),
    NavItem("/ui/slots", "Content & slots"),
    NavItem("/ui/experiments", "Experiments"),
    NavItem("/ui/models", "Models"),
    NavItem("/ui/people", "People"),
    NavItem("/ui/privacy", "Privacy"),
    NavItem("/ui/history", "History"),
)


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    person = signed_in(request)
    page = (
        environment()
        .get_template(template)
        .render(
            request=request,
            person=person,
            csrf=person.csrf if person is not None else "",
            nav=NAV,
            admin_nav=person is not None and person.role.allows(Role.ADMIN),
            path=request.url.path,
            **context,
        )
    )
    return HTMLResponse(page, status_code=status_code, headers=SECURITY_HEADERS)


def redirect(request: Request, path: str) -> Response:
    """After a successful POST: a 303 to a page, or for htmx an ``HX-Redirect`` it follows."""
    if is_htmx(request):
        return Response(status_code=200, headers={"HX-Redirect": path})
    return RedirectResponse(path, status_code=303)


def error_response(request: Request, error: LoopwiseError) -> Response:
    context = {"error": error, "status": error.status}
    if is_htmx(request):
        return render(request, "partials/error.html", status_code=error.status, **context)
    return render(request, "error.html", status_code=error.status, **context)


class ConsoleRoute(APIRoute):
    """Console errors as HTML: a stranger is sent to sign in, a known error is a page."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except NotSignedIn:
                target = "/ui/login"
                if request.method == "GET" and request.url.path != "/ui":
                    target += "?next=" + quote(request.url.path, safe="/")
                if is_htmx(request):
                    return Response(status_code=401, headers={"HX-Redirect": target})
                return RedirectResponse(target, status_code=303)
            except LoopwiseError as error:
                return error_response(request, error)

        return route


Handler = Callable[..., Awaitable[Response]]
