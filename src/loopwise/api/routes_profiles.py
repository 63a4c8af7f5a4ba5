"""``GET /v1/profiles/{identifier}``: a user's live profile and segments, by any of their ids."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from starlette.requests import Request

from loopwise.api.auth import require
from loopwise.api.keys import KeyKind, Scope
from loopwise.api.port import engine_of
from loopwise.api.problems import problem_responses
from loopwise.errors import NotFound

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
    view = engine_of(request).profile_view(identifier)
    if view is None:
        raise NotFound(
            f'No profile for "{identifier}". Profiles exist once an event with this userId or '
            "anonymousId was accepted.",
            field="identifier",
        )
    return view
