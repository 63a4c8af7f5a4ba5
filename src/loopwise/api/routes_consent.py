"""Consent per person (server key): read the effective categories, set choices, read the audit
history of every change. Ids are resolved through the identity graph, so consent given while
anonymous follows the person once identified."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from loopwise.api.auth import require
from loopwise.api.keys import Scope
from loopwise.api.port import ConsentPort, engine_of, read_json
from loopwise.api.problems import problem_responses
from loopwise.events.limits import MAX_ID_CHARS


def _engine(request: Request) -> ConsentPort:
    """This module's narrow view of the engine: it may use only what ConsentPort declares."""
    return engine_of(request)


router = APIRouter(
    tags=["consent"],
    dependencies=[Depends(require(Scope.CONSENT))],
    responses=problem_responses(401, 403),
)

UserId = Annotated[
    str,
    Path(min_length=1, max_length=MAX_ID_CHARS, description="A userId or anonymousId."),
]

_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["categories"],
                    "additionalProperties": False,
                    "properties": {
                        "categories": {
                            "type": "object",
                            "additionalProperties": {"type": "boolean"},
                            "minProperties": 1,
                        },
                        "source": {"type": "string", "minLength": 1, "maxLength": 100},
                    },
                },
                "example": {"categories": {"personalization": False}, "source": "banner"},
            }
        },
    }
}


@router.get(
    "/v1/consent/{user_id}",
    summary="A person's effective consent per category",
    description=(
        "Per category: the person's explicit choice, else the default of their region (from "
        "`country`, else their profile's country). `explicit` lists the choices with time and "
        "source, `defaulted` the categories that follow the regional default."
    ),
    responses=problem_responses(400),
)
def get_consent(
    user_id: UserId,
    request: Request,
    country: Annotated[
        str | None,
        Query(
            min_length=2, max_length=2, pattern=r"^[A-Za-z]{2}$", description="ISO country code."
        ),
    ] = None,
) -> dict[str, Any]:
    return _engine(request).get_consent(user_id, country.upper() if country else None)


@router.put(
    "/v1/consent/{user_id}",
    summary="Set a person's consent choices",
    description=(
        'Body: `{"categories": {"personalization": false}, "source": "banner"}`. Categories not '
        "named keep their current state. The change is durable and applies to the very next "
        "request; it is appended to the tamper-evident audit trail."
    ),
    responses=problem_responses(400, 415),
    openapi_extra=_BODY,
)
async def put_consent(user_id: UserId, request: Request) -> dict[str, Any]:
    body = await read_json(request)
    return await run_in_threadpool(_engine(request).put_consent, user_id, body)


@router.get(
    "/v1/consent/{user_id}/history",
    summary="The audit records of a person's consent changes",
    description="Oldest first; each record carries the hash of the one before it.",
)
def consent_history(user_id: UserId, request: Request) -> dict[str, Any]:
    return {"user_id": user_id, "records": _engine(request).consent_history(user_id)}
