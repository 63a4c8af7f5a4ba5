"""``POST /v1/decide`` (what each slot of a page shows, and why) and the decision log lookup."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response

from loopwise.api.auth import require
from loopwise.api.keys import KeyKind, Scope, has_scope
from loopwise.api.metrics import metrics_of
from loopwise.api.port import DecidePort, check_json_headers, engine_of
from loopwise.api.problems import problem_responses
from loopwise.api.public_decide import restrict_to_caller
from loopwise.decide.request import DecideRequest, DecideResponse
from loopwise.decide.why import explain_decision
from loopwise.errors import NotFound
from loopwise.events.normalize import add_location


def _engine(request: Request) -> DecidePort:
    """This module's narrow view of the engine: it may use only what DecidePort declares."""
    return engine_of(request)


router = APIRouter(tags=["decide"])

# The body is read with the rules every JSON route shares (port.read_json: Content-Type,
# Content-Encoding, strict JSON) and then validated, so its schema is declared here; create_app
# adds the models to the OpenAPI components.
OPENAPI_MODELS = (DecideRequest,)
_DECIDE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/DecideRequest"}}},
    }
}

_FORWARDED = ("user-agent", "accept-language")


def engine_headers(headers: Headers, country_header: str | None) -> Headers:
    """Only the headers the engine reads: never the Authorization key or cookies."""
    wanted = {*_FORWARDED, *((country_header.lower(),) if country_header else ())}
    return Headers(raw=[(k, v) for k, v in headers.raw if k.decode("latin-1").lower() in wanted])


@router.post(
    "/v1/decide",
    response_model=DecideResponse,
    summary="Choose the content of a page's slots for one user",
    description=(
        "Scope: public_decide (write key: for the caller's own anonymous id, or a user id proven "
        "by `user.user_token`) or decide (server or admin key: anyone). Returns, per slot, the "
        "variant or items chosen, the propensity of that choice and the reasons. Send "
        "`decision_id` back in impression, click and conversion events so outcomes are "
        "attributed."
    ),
    responses=problem_responses(400, 401, 403, 415),
    openapi_extra=_DECIDE_BODY,
)
async def decide(
    request: Request,
    kind: Annotated[KeyKind, Depends(require(Scope.PUBLIC_DECIDE))],
) -> Response:
    check_json_headers(request.headers)
    body = parse_decide_request(await request.body())
    engine = _engine(request)
    if not has_scope(kind, Scope.DECIDE):  # the browser's key decides for the caller only
        body = restrict_to_caller(body, engine.keys.identity_secret)
        locate = engine.geolocation  # where the browser is, as its events would say
        if locate is not None and request.client is not None:
            add_location(body.context, locate, request.client.host)
    headers = engine_headers(request.headers, engine.settings_country_header)
    decision = await run_in_threadpool(engine.decide, body, headers)
    metrics_of(request).decisions.inc()
    return Response(
        decision.model_dump_json(), media_type="application/json", headers=cache_headers(decision)
    )


def cache_headers(decision: DecideResponse) -> dict[str, str]:
    """The reply names a person and a decision id, so it is never stored as it is; the headers
    say what a CDN or a server-side page cache may reuse (docs/delivery.md): ``X-Loopwise-Cache``
    (hit, miss, partial or live) and, when every slot is prerenderable, the page's content key
    and how long it lasts."""
    headers = {"Cache-Control": "private, no-store"}
    cache = decision.cache
    if cache is None:
        return headers
    statuses = set(cache.slots.values())
    headers["X-Loopwise-Cache"] = statuses.pop() if len(statuses) == 1 else "partial"
    if cache.key is not None:
        headers["X-Loopwise-Cache-Key"] = cache.key
        headers["X-Loopwise-Cache-Max-Age"] = str(cache.max_age)
    return headers


def parse_decide_request(raw: bytes) -> DecideRequest:
    """Decode (strict JSON: no NaN) and validate a body; every problem is reported like a
    request validation error, with the field and a pointer to the schema."""
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        error = {"type": "json_invalid", "loc": ("body",), "msg": "JSON decode error"}
        raise RequestValidationError([{**error, "ctx": {"error": str(exc)}}]) from None
    if not isinstance(document, dict):
        error = {"type": "model_type", "loc": ("body",), "msg": "Send a JSON object"}
        raise RequestValidationError([error], body=document)
    try:
        return DecideRequest.model_validate(document, strict=True)  # JSON: no "4" for 4
    except ValidationError as exc:
        errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        raise RequestValidationError(errors, body=document) from None


@router.get(
    "/v1/decisions/{decision_id}",
    summary="A logged decision and the outcomes attributed to it",
    description="Scope: read_profiles (server or admin key).",
    responses=problem_responses(401, 403, 404),
)
def get_decision(
    decision_id: str,
    request: Request,
    _: Annotated[KeyKind, Depends(require(Scope.READ_PROFILES))],
) -> dict[str, Any]:
    return _logged_decision(request, decision_id)


@router.get(
    "/v1/decisions/{decision_id}/why",
    summary='"Why am I seeing this?": a plain-language explanation of a decision',
    description=(
        "Scope: explain (any key, the browser's write key included). Per slot: whether AI "
        "influenced it, a one-line summary and the reasons in plain words, without internal ids."
    ),
    responses=problem_responses(401, 403, 404),
)
def why(
    decision_id: str,
    request: Request,
    _: Annotated[KeyKind, Depends(require(Scope.EXPLAIN))],
) -> dict[str, Any]:
    return explain_decision(_logged_decision(request, decision_id))


def _logged_decision(request: Request, decision_id: str) -> dict[str, Any]:
    """The stored decision, or a 404 problem naming ``decision_id``."""
    logged = _engine(request).get_decision(decision_id)
    if logged is None:
        raise NotFound(
            f'No decision "{decision_id}". Use the decision_id a /v1/decide reply returned; '
            "decisions are logged a moment after the reply.",
            field="decision_id",
        )
    return logged
