"""The catalog over HTTP: upsert, list, read and delete items.

Upserts validate every item before any is written, so a bad item at ``items[9041]`` leaves the
catalog exactly as it was.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from loopwise.api.auth import require
from loopwise.api.keys import KeyKind, Scope
from loopwise.api.port import ItemsPort, engine_of, read_json
from loopwise.api.problems import problem_responses
from loopwise.catalog.items import Item
from loopwise.catalog.validate import parse_item
from loopwise.errors import LimitExceeded, NotFound, ValidationFailed


def _engine(request: Request) -> ItemsPort:
    """This module's narrow view of the engine: it may use only what ItemsPort declares."""
    return engine_of(request)


MAX_ITEMS_PER_REQUEST = 10_000
MAX_PAGE = 1000
MAX_OFFSET = 1_000_000_000  # bounded: the reply echoes it, and JSON integers stop at 64 bits

router = APIRouter(tags=["items"])

_ITEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id"],
    "properties": {
        "id": {"type": "string"},
        "type": {"type": "string", "default": "product"},
        "title": {"type": "string"},
        "text": {"type": "string"},
        "url": {"type": "string"},
        "image": {"type": "string"},
        "categories": {"type": "array", "items": {"type": "string"}},
        "tags": {"type": "array", "items": {"type": "string"}},
        "attributes": {"type": "object", "description": "price, margin, in_stock, ..."},
    },
}


def items_from_body(body: Any) -> list[Any]:
    """``{"items": [...]}`` or a bare list, 1 to 10,000 entries."""
    raw = body.get("items") if isinstance(body, dict) else body
    if not isinstance(raw, list):
        raise ValidationFailed('Send {"items": [...]} or a JSON list of items.', field="items")
    if not raw:
        raise ValidationFailed("Send at least one item.", field="items")
    if len(raw) > MAX_ITEMS_PER_REQUEST:
        raise LimitExceeded(
            f"At most {MAX_ITEMS_PER_REQUEST} items per request (this one has {len(raw)}); "
            "split them, or use `loopwise import items` for large catalogs.",
            field="items",
            limit=MAX_ITEMS_PER_REQUEST,
        )
    return raw


def validate_items(raw: list[Any], engine: ItemsPort) -> list[Item]:
    """Every item parsed, or the error of the first bad one; repeated ids are refused."""
    now = engine.clock()
    items: list[Item] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(raw):
        item = parse_item(entry, field_prefix=f"items[{index}].", now=now)
        if item.id in seen:
            raise ValidationFailed(
                f'Item id "{item.id}" is also at items[{seen[item.id]}]; send each id once.',
                field=f"items[{index}].id",
            )
        seen[item.id] = index
        items.append(item)
    return items


def _put(engine: ItemsPort, body: Any) -> int:
    return engine.put_items(validate_items(items_from_body(body), engine))


@router.put(
    "/v1/items",
    summary="Create or replace catalog items",
    description=(
        f'Scope: admin. Body: `{{"items": [...]}}` or a bare list, 1 to '
        f"{MAX_ITEMS_PER_REQUEST} items. All are validated first; one bad item rejects the "
        "request and nothing is written."
    ),
    responses=problem_responses(400, 401, 403, 415),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            {
                                "type": "object",
                                "required": ["items"],
                                "properties": {"items": {"type": "array", "items": _ITEM_SCHEMA}},
                            },
                            {"type": "array", "items": _ITEM_SCHEMA},
                        ]
                    }
                }
            },
        }
    },
)
async def put_items(
    request: Request, _: Annotated[KeyKind, Depends(require(Scope.ADMIN))]
) -> dict[str, int]:
    body = await read_json(request)
    upserted = await run_in_threadpool(_put, _engine(request), body)
    return {"upserted": upserted}


@router.get(
    "/v1/items",
    summary="List catalog items, ordered by id",
    description="Scope: decide (server or admin key).",
    responses=problem_responses(400, 401, 403),
)
def list_items(
    request: Request,
    _: Annotated[KeyKind, Depends(require(Scope.DECIDE))],
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip.")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page size.")] = 100,
) -> dict[str, Any]:
    page, total = _engine(request).list_items(offset, limit)
    return {
        "items": [item.to_record() for item in page],
        "total": total,
        "offset": offset,
        "limit": limit,
    }


@router.get(
    "/v1/items/{item_id}",
    summary="One catalog item",
    description="Scope: decide (server or admin key).",
    responses=problem_responses(401, 403, 404),
)
def get_item(
    item_id: str, request: Request, _: Annotated[KeyKind, Depends(require(Scope.DECIDE))]
) -> dict[str, Any]:
    item = _engine(request).get_item(item_id)
    if item is None:
        raise _no_item(item_id)
    return item.to_record()


@router.delete(
    "/v1/items/{item_id}",
    status_code=204,
    response_class=Response,
    summary="Delete one catalog item",
    description="Scope: admin.",
    responses=problem_responses(401, 403, 404),
)
def delete_item(
    item_id: str, request: Request, _: Annotated[KeyKind, Depends(require(Scope.ADMIN))]
) -> Response:
    if _engine(request).delete_items([item_id]) == 0:
        raise _no_item(item_id)
    return Response(status_code=204)


def ids_from_body(body: Any) -> list[str]:
    ids = body.get("ids") if isinstance(body, dict) else None
    if not isinstance(ids, list) or not ids:
        raise ValidationFailed('Send {"ids": ["id-1", ...]} with at least one id.', field="ids")
    if len(ids) > MAX_ITEMS_PER_REQUEST:
        raise LimitExceeded(
            f"At most {MAX_ITEMS_PER_REQUEST} ids per request (this one has {len(ids)}).",
            field="ids",
            limit=MAX_ITEMS_PER_REQUEST,
        )
    for index, value in enumerate(ids):
        if not isinstance(value, str) or not value:
            raise ValidationFailed("Each id must be a non-empty string.", field=f"ids[{index}]")
    return list(dict.fromkeys(ids))


@router.delete(
    "/v1/items",
    summary="Delete several catalog items",
    description='Scope: admin. Body: `{"ids": [...]}`. Unknown ids are skipped.',
    responses=problem_responses(400, 401, 403, 415),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["ids"],
                        "properties": {"ids": {"type": "array", "items": {"type": "string"}}},
                    }
                }
            },
        }
    },
)
async def delete_items(
    request: Request, _: Annotated[KeyKind, Depends(require(Scope.ADMIN))]
) -> dict[str, int]:
    ids = ids_from_body(await read_json(request))
    deleted = await run_in_threadpool(_engine(request).delete_items, ids)
    return {"deleted": deleted}


def _no_item(item_id: str) -> NotFound:
    return NotFound(
        f'No item "{item_id}" in the catalog. Add it with PUT /v1/items.', field="item_id"
    )
