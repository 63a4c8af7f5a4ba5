"""``/ui/history``: every workspace revision (who, when, through what, why, what changed) and
restoring any earlier one in one click (as a new revision, refused with the diff when the
workspace moved on since the page was loaded)."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import Response

from loopwise.console.people import SignedIn
from loopwise.console.web import EDITOR, VIEWER, ConsoleRoute, console_of, form_of, redirect, render
from loopwise.errors import LoopwiseError, NotFound
from loopwise.workspace.history import Author

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
PAGE = 30
MAX_REVISION = 2**62


def _history(
    request: Request,
    before: int | None = None,
    error: LoopwiseError | None = None,
    status_code: int = 200,
) -> Response:
    workspace = console_of(request).services.workspace
    changes = workspace.history(PAGE, before)
    return render(
        request,
        "history.html",
        status_code=status_code,
        changes=changes,
        revision=workspace.revision,
        error=error,
        older=changes[-1].revision if len(changes) == PAGE else None,
    )


@router.get("/ui/history")
def history(
    request: Request,
    person: Annotated[SignedIn, Depends(VIEWER)],
    before: Annotated[int | None, Query(ge=1, le=MAX_REVISION)] = None,
) -> Response:
    return _history(request, before)


@router.get("/ui/history/{revision}")
def revision(
    revision: Annotated[int, Path(ge=1, le=MAX_REVISION)],
    request: Request,
    person: Annotated[SignedIn, Depends(VIEWER)],
) -> Response:
    change = console_of(request).services.workspace.history(1, revision + 1)
    if not change or change[0].revision != revision:
        raise NotFound(f"No workspace revision {revision}.", field="revision")
    return render(
        request,
        "revision.html",
        change=change[0],
        document=json.dumps(change[0].document, indent=2),
    )


@router.post("/ui/history/{revision}/restore")
async def restore(
    revision: Annotated[int, Path(ge=1, le=MAX_REVISION)],
    request: Request,
    person: Annotated[SignedIn, Depends(EDITOR)],
) -> Response:
    form = await form_of(request)
    expected = form.get("revision", "")
    try:
        console_of(request).services.workspace.restore(
            revision,
            author=Author(person.email, "console", form.get("comment", "")),
            expected=int(expected) if expected.isdigit() else None,
        )
    except LoopwiseError as exc:
        return _history(request, error=exc, status_code=exc.status)
    return redirect(request, "/ui/history?restored=" + str(revision))
