"""The workspace over HTTP (admin key): the same schema as ``loopwise.yaml``, applied at once.

Every change is a revision in the workspace history; ``GET /v1/admin/workspace`` carries it as
the ``ETag`` and every write takes ``If-Match`` (a 412 problem listing what changed when the
workspace moved on), so no edit is silently overwritten.

An invalid change is a 400 naming the field, and nothing of it is applied. ``POST
/v1/admin/cluster`` fits K-Means on the profiles and publishes the clusters as segments
``cluster_<n>`` the same way: stored, and applied to the next decision. Engine calls that write
storage run in the thread pool so the event loop keeps serving ingest and decide meanwhile.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any, Protocol, cast

from fastapi import APIRouter, Depends, Path, Query
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from loopwise.api.auth import require
from loopwise.api.keys import Scope
from loopwise.api.port import WorkspacePort, engine_of, read_json
from loopwise.api.problems import JSONBytesResponse, problem_responses
from loopwise.errors import NotFound, ValidationFailed
from loopwise.segments.clusters import DEFAULT_K_RANGE, MAX_K
from loopwise.workspace.history import ADMIN_API, Applied, Author, etag, parse_if_match


def _engine(request: Request) -> WorkspacePort:
    """This module's narrow view of the engine: it may use only what WorkspacePort declares."""
    return engine_of(request)


router = APIRouter(
    tags=["admin"],
    dependencies=[Depends(require(Scope.ADMIN))],
    responses=problem_responses(401, 403),  # every admin route checks the key
)

Key = Annotated[
    str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_\-]+$", description="Entry key.")
]

_OBJECT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}
_WRITE_ERRORS = problem_responses(400, 401, 403, 412, 415)
_DELETE_ERRORS = problem_responses(401, 403, 404, 412)
COMMENT_HEADER = "x-change-comment"
MAX_REVISION = 2**62  # revisions are SQLite integers
_CONCURRENCY = (
    "Send the workspace `ETag` as `If-Match` to have the change refused (412, with the changes "
    "made since) when the workspace changed after you read it; the reply's `ETag` is the new "
    "revision. `X-Change-Comment` is kept in the history."
)


async def read_object(request: Request) -> dict[str, Any]:
    document = await read_json(request)
    if not isinstance(document, dict):
        raise ValidationFailed("Send a JSON object.", field="body")
    return document


def _author(request: Request) -> Author:
    """The admin key, with the optional ``X-Change-Comment`` header as the history's comment."""
    return ADMIN_API.with_comment(request.headers.get(COMMENT_HEADER, ""))


def _expected(request: Request) -> int | None:
    return parse_if_match(request.headers.get("if-match"))


def _tagged(body: Any, revision: int, status_code: int = 200) -> Response:
    response = JSONBytesResponse(body, status_code=status_code)
    response.headers["ETag"] = etag(revision)
    return response


async def _change(
    request: Request, section: str | None, key: str | None, document: dict[str, Any] | None
) -> Applied:
    engine = _engine(request)
    return await run_in_threadpool(
        partial(
            engine.change_workspace,
            section,
            key,
            document,
            author=_author(request),
            expected=_expected(request),
        )
    )


def _entry(applied: Applied, section: str, key: str) -> dict[str, Any]:
    return next((e for e in applied.document.get(section, []) if e.get("key") == key), {})


@router.get(
    "/v1/admin/workspace",
    summary="The current workspace document",
    description="The `ETag` header is the live revision: send it back as `If-Match` with a "
    "change to be told (412) when someone else changed the workspace meanwhile.",
)
def get_workspace(request: Request) -> Response:
    revision, document = _engine(request).workspace_snapshot()
    return _tagged(document, revision)


@router.put(
    "/v1/admin/workspace",
    summary="Replace the whole workspace",
    description="Validated like loopwise.yaml; applied and persisted only when all of it is valid. "
    + _CONCURRENCY,
    responses=_WRITE_ERRORS,
    openapi_extra=_OBJECT_BODY,
)
async def put_workspace(request: Request) -> Response:
    document = await read_object(request)
    applied = await _change(request, None, None, document)
    return _tagged(applied.document, applied.revision)


def _entry_routes(section: str, noun: str) -> None:
    """PUT and DELETE ``/v1/admin/<section>/{key}`` for one kind of workspace entry."""

    async def put_entry(key: Key, request: Request) -> Response:
        document = await read_object(request)
        applied = await _change(request, section, key, document)
        return _tagged(_entry(applied, section, key), applied.revision)

    async def delete_entry(key: Key, request: Request) -> Response:
        applied = await _change(request, section, key, None)
        response = Response(status_code=204)
        response.headers["ETag"] = etag(applied.revision)
        return response

    router.add_api_route(
        f"/v1/admin/{section}/{{key}}",
        put_entry,
        methods=["PUT"],
        summary=f"Create or replace one {noun}",
        description=_CONCURRENCY,
        responses=_WRITE_ERRORS,
        openapi_extra=_OBJECT_BODY,
        name=f"put_{noun}",
    )
    router.add_api_route(
        f"/v1/admin/{section}/{{key}}",
        delete_entry,
        methods=["DELETE"],
        status_code=204,
        response_class=Response,
        summary=f"Delete one {noun}",
        description=_CONCURRENCY,
        responses=_DELETE_ERRORS,
        name=f"delete_{noun}",
    )


for _section, _noun in (("slots", "slot"), ("segments", "segment"), ("experiments", "experiment")):
    _entry_routes(_section, _noun)


@router.get(
    "/v1/admin/workspace/history",
    summary="The workspace's revisions, newest first",
    description="Who changed it, when, through what (admin, console, file, clusters, restore, "
    "push), the comment and what changed. `before` pages back.",
)
def workspace_history(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=500, description="Revisions per page.")] = 50,
    before: Annotated[
        int | None, Query(ge=1, le=MAX_REVISION, description="Revisions below this one.")
    ] = None,
) -> dict[str, Any]:
    return {"revisions": _engine(request).workspace_history(limit, before)}


@router.get(
    "/v1/admin/workspace/history/{revision}",
    summary="One revision with its whole document",
    responses=problem_responses(404),
)
def workspace_revision(
    request: Request,
    revision: Annotated[int, Path(ge=1, le=MAX_REVISION, description="Revision number.")],
) -> dict[str, Any]:
    found = _engine(request).workspace_revision(revision)
    if found is None:
        raise NotFound(f"No workspace revision {revision}.", field="revision")
    return found


class RestoreRequest(BaseModel):
    """Body of ``POST /v1/admin/workspace/restore``."""

    model_config = ConfigDict(extra="forbid")

    revision: int = Field(
        ge=1, le=MAX_REVISION, description="The revision whose document becomes live again."
    )
    comment: str = Field("", max_length=500, description="Why (kept in the history).")


@router.post(
    "/v1/admin/workspace/restore",
    summary="Make an earlier revision live again (as a new revision)",
    description=_CONCURRENCY,
    responses=problem_responses(400, 404, 412, 415),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": RestoreRequest.model_json_schema()}},
        }
    },
)
async def restore_workspace(request: Request) -> Response:
    document = await read_object(request)
    try:
        body = RestoreRequest.model_validate(document, strict=True)
    except ValidationError as exc:
        errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        raise RequestValidationError(errors, body=document) from None
    engine = _engine(request)
    author = ADMIN_API.with_comment(body.comment)
    applied = await run_in_threadpool(
        partial(engine.restore_workspace, body.revision, author=author, expected=_expected(request))
    )
    return _tagged(applied.document, applied.revision)


@router.post(
    "/v1/admin/replay",
    summary="Rebuild every profile from the event log",
    description="Reports how many stored profiles differed from the rebuilt ones.",
    responses=problem_responses(401, 403),
)
async def replay(request: Request) -> dict[str, Any]:
    return await run_in_threadpool(_engine(request).replay)


class ClusterRequest(BaseModel):
    """Body of ``POST /v1/admin/cluster`` (every field optional; an empty body is fine)."""

    model_config = ConfigDict(extra="forbid")

    k_min: int = Field(DEFAULT_K_RANGE[0], ge=2, le=MAX_K, description="Fewest clusters to try.")
    k_max: int = Field(DEFAULT_K_RANGE[1], ge=2, le=MAX_K, description="Most clusters to try.")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="Random seed (K-Means starts, samples).")


@router.post(
    "/v1/admin/cluster",
    summary="Fit K-Means on the profiles and publish the clusters as segments",
    description=(
        "Picks k in [k_min, k_max] by silhouette, names each cluster by its distinctive "
        "features and publishes it as segment cluster_<n>; the next decision uses them. 409 when "
        "there are too few (or too alike) profiles."
    ),
    responses=problem_responses(400, 401, 403, 409, 415),
    openapi_extra={
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": ClusterRequest.model_json_schema()}},
        }
    },
)
async def cluster(request: Request) -> dict[str, Any]:
    raw = await request.body()
    document = await read_object(request) if raw.strip() else {}
    try:
        body = ClusterRequest.model_validate(document, strict=True)
    except ValidationError as exc:
        errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        raise RequestValidationError(errors, body=document) from None
    return await run_in_threadpool(_engine(request).cluster, body.k_min, body.k_max, body.seed)


@router.get(
    "/v1/admin/clusters",
    summary="The published clusters",
    description="k, silhouettes, and per cluster its key, name, size and distinctive features; "
    "`published: false` before the first clustering.",
)
def get_clusters(request: Request) -> dict[str, Any]:
    return _engine(request).clusters()


# -- off-policy evaluation and bandits -------------------------------------------------------------
class OpePort(Protocol):
    def run_ope(self, document: dict[str, Any]) -> dict[str, Any]:
        """Estimate a candidate policy from the decision log (``loopwise.ope.service``)."""
        ...

    def bandit_state(self) -> list[dict[str, Any]]: ...


def _ope_engine(request: Request) -> OpePort:
    return cast(OpePort, request.app.state.engine)


@router.post(
    "/v1/admin/ope",
    summary="Off-policy evaluation of a candidate policy for a block slot",
    description=(
        "IPS, self-normalised IPS and doubly robust estimates (with 95% bootstrap intervals) of "
        "the click (or conversion) rate a candidate policy would have got, from the slot's "
        "logged decisions and outcomes. `policy` is `uniform`, `logged`, `bandit`, "
        "`variant:<id>` or a document `{variants: {id: p}, segments: {key: {id: p}}}`. A "
        "candidate that shows variants the logging policy never showed (zero support), or a "
        "period with no decisions, is a 422. docs/ope.md"
    ),
    responses=problem_responses(400, 401, 403, 404, 415, 422),
    openapi_extra=_OBJECT_BODY,
)
async def ope(request: Request) -> dict[str, Any]:
    document = await read_object(request)
    return await run_in_threadpool(_ope_engine(request).run_ope, document)


@router.get(
    "/v1/admin/bandits",
    summary="What each bandit has learned",
    description="Per bandit slot and bucket: each variant's decisions, successes and rate.",
)
def bandits(request: Request) -> dict[str, Any]:
    return {"bandits": _ope_engine(request).bandit_state()}
