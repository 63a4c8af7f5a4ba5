"""``/ui/users`` (admins): console users (create with a role, revoke, end their sessions) and
API keys (create one and see it once, revoke)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from loopwise.api.keys import KeyKind, create_key, list_keys, revoke_key
from loopwise.console.people import SignedIn
from loopwise.console.web import ADMIN, ConsoleRoute, console_of, form_of, redirect, render
from loopwise.errors import LoopwiseError, ValidationFailed

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


def _page(
    request: Request,
    *,
    error: LoopwiseError | None = None,
    new_key: str | None = None,
    status_code: int = 200,
) -> Response:
    console = console_of(request)
    people = console.people
    users = [(u, sum(not s.revoked for s in people.sessions_of(u.email))) for u in people.users()]
    keys = list_keys(console.data_dir) if console.data_dir is not None else []
    return render(
        request,
        "users.html",
        status_code=status_code,
        users=users,
        keys=keys,
        error=error,
        new_key=new_key,
        kinds=[k.value for k in KeyKind],
    )


@router.get("/ui/users")
def users(request: Request, person: Annotated[SignedIn, Depends(ADMIN)]) -> Response:
    return _page(request)


@router.post("/ui/users/create")
async def create_user(request: Request, person: Annotated[SignedIn, Depends(ADMIN)]) -> Response:
    form = await form_of(request)
    try:
        console_of(request).people.create(
            form.get("email", ""), form.get("role", ""), form.get("password", "")
        )
    except LoopwiseError as exc:
        return _page(request, error=exc, status_code=exc.status)
    return redirect(request, "/ui/users")


@router.post("/ui/users/revoke")
async def revoke_user(request: Request, person: Annotated[SignedIn, Depends(ADMIN)]) -> Response:
    form = await form_of(request)
    if form.get("email", "").strip().lower() == person.email:
        raise ValidationFailed("You cannot revoke yourself; ask another admin.", field="email")
    console_of(request).people.revoke(form.get("email", ""))
    return redirect(request, "/ui/users")


@router.post("/ui/users/sessions/revoke")
async def revoke_sessions(
    request: Request, person: Annotated[SignedIn, Depends(ADMIN)]
) -> Response:
    form = await form_of(request)
    console_of(request).people.revoke_sessions(form.get("email", ""))
    return redirect(request, "/ui/users")


@router.post("/ui/keys/create")
async def new_key(request: Request, person: Annotated[SignedIn, Depends(ADMIN)]) -> Response:
    form = await form_of(request)
    data_dir = console_of(request).data_dir
    try:
        kind = KeyKind(form.get("kind", ""))
    except ValueError:
        raise ValidationFailed("Choose write, server or admin.", field="kind") from None
    if data_dir is None:
        raise ValidationFailed("This engine has no data directory for keys.", field="kind")
    key, _ = create_key(data_dir, kind)
    return _page(request, new_key=key)


@router.post("/ui/keys/revoke")
async def revoke(request: Request, person: Annotated[SignedIn, Depends(ADMIN)]) -> Response:
    form = await form_of(request)
    data_dir = console_of(request).data_dir
    if data_dir is None:
        raise ValidationFailed("This engine has no data directory for keys.", field="id")
    try:
        revoke_key(data_dir, form.get("id", ""))
    except LoopwiseError as exc:
        return _page(request, error=exc, status_code=exc.status)
    return redirect(request, "/ui/users")
