"""``/v1/profiles/{identifier}``: a user's live profile and segments, by any of their ids; the
person's erasure (``DELETE``, admin key) and export (``GET .../export``, admin key)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from loopwise.api.auth import require
from loopwise.api.keys import KeyKind, Scope
from loopwise.api.port import ProfilesPort, engine_of
from loopwise.api.problems import JSONBytesResponse, problem_responses
from loopwise.errors import NotFound


def _engine(request: Request) -> ProfilesPort:
    """This module's narrow view of the engine: it may use only what ProfilesPort declares."""
    return engine_of(request)


router = APIRouter(tags=["profiles"])


@router.get(
    "/v1/profiles/{identifier}",
    summary="A user's profile, segments and segment history",
    description=(
        "Scope: read_profiles (server or admin key). `identifier` is a userId or anonymousId; "
        "ids merged by identify/alias resolve to the same profile."
    ),
    responses=problem_responses(401, 403, 404),
)
def get_profile(
    identifier: str,
    request: Request,
    _: Annotated[KeyKind, Depends(require(Scope.READ_PROFILES))],
) -> dict[str, Any]:
    view = _engine(request).profile_view(identifier)
    if view is None:
        raise NotFound(
            f'No profile for "{identifier}". Profiles exist once an event with this userId or '
            "anonymousId was accepted.",
            field="identifier",
        )
    return view


@router.delete(
    "/v1/profiles/{identifier}",
    summary="Erase a person across every merged identity",
    description=(
        "Scope: admin (admin key). Removes the profile, identity links, events, decisions and "
        "their outcomes, and segment history of everyone merged with `identifier`, in one "
        "transaction. Returns a receipt: the profile id, the identifiers erased, rows removed "
        "per table and `erased_at`. Trained models forget the person at their next training."
    ),
    responses=problem_responses(401, 403, 404),
)
async def erase_profile(
    identifier: str,
    request: Request,
    _: Annotated[KeyKind, Depends(require(Scope.ADMIN))],
) -> dict[str, Any]:
    return await run_in_threadpool(_engine(request).erase_profile, identifier)


@router.get(
    "/v1/profiles/{identifier}/export",
    summary="Everything held about a person, as one JSON document",
    description=(
        "Scope: admin (admin key). The profile, identifiers, segments and segment history, "
        "events, and decisions with their outcomes, as an attachment (access and portability)."
    ),
    responses=problem_responses(401, 403, 404),
)
async def export_profile(
    identifier: str,
    request: Request,
    _: Annotated[KeyKind, Depends(require(Scope.ADMIN))],
) -> Response:
    document = await run_in_threadpool(_engine(request).export_profile, identifier)
    filename = f"loopwise-export-{document['profile_id']}.json"  # a hash id, not the user id
    return JSONBytesResponse(
        document, headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )
