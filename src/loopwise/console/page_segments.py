"""``/ui/segments``: every segment with its live size and size over time, the condition builder
with "N people match now" and a sample of matching (pseudonymous) profiles while editing, and the
overlap of two segments. Saving goes through the workspace service (the admin API's validation),
recorded in the history; an edit made on an older revision is refused with the diff."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from loopwise.console import builder
from loopwise.console.census import Estimate
from loopwise.console.people import SignedIn
from loopwise.console.web import (
    EDITOR,
    VIEWER,
    ConsoleRoute,
    console_of,
    form_of,
    redirect,
    render,
)
from loopwise.errors import ConfigError, NotFound, ValidationFailed
from loopwise.events.limits import check_unique_keys
from loopwise.segments.builtin import BUILTIN_SEGMENTS
from loopwise.segments.conditions import compile_condition, referenced_roots
from loopwise.segments.registry import SegmentDefinition
from loopwise.workspace.history import Author, StaleRevision

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
CHART_SEGMENTS = 8
COLOURS = ("#0b5cad", "#a4161a", "#1a6b34", "#7a4b00", "#5b2a86", "#00607a", "#8a3b12", "#333")


def size_chart(series: dict[str, list[Any]], keys: list[str], title: str) -> dict[str, Any] | None:
    keys = [k for k in keys if k in series]
    if not keys:
        return None
    days = [day.isoformat()[5:] for day, _ in series[keys[0]]]
    return {
        "type": "line",
        "data": {
            "labels": days,
            "datasets": [
                {
                    "label": key,
                    "data": [size for _, size in series[key]],
                    "borderColor": COLOURS[i % len(COLOURS)],
                    "backgroundColor": COLOURS[i % len(COLOURS)],
                    "pointRadius": 0,
                }
                for i, key in enumerate(keys)
            ],
        },
        "options": {"plugins": {"title": {"display": True, "text": title}}},
    }


def _rows(request: Request) -> list[dict[str, Any]]:
    console = console_of(request)
    compiled = console.services.workspace.compiled
    sizes = console.census.sizes()
    own = {s.key for s in compiled.workspace.segments}
    builtin = {s.key for s in BUILTIN_SEGMENTS}
    out = []
    for definition in compiled.registry.definitions:
        reads_context = "context" in referenced_roots(definition.condition)
        out.append(
            {
                "key": definition.key,
                "name": definition.name,
                "description": definition.description,
                "origin": "yours"
                if definition.key in own
                else ("built-in" if definition.key in builtin else "cluster"),
                "context": reads_context,
                "size": None if sizes is None or reads_context else sizes.get(definition.key, 0),
            }
        )
    return out


@router.get("/ui/segments")
def segments(request: Request, person: Annotated[SignedIn, Depends(VIEWER)]) -> Response:
    console = console_of(request)
    rows = _rows(request)
    census = console.census.last
    by_size = sorted((r for r in rows if r["size"] is not None), key=lambda r: -(r["size"] or 0))
    chart = (
        size_chart(census.series, [r["key"] for r in by_size[:CHART_SEGMENTS]], "Size per day")
        if census is not None
        else None
    )
    return render(
        request,
        "segments.html",
        rows=rows,
        census=census,
        counting=console.census.running,
        chart=chart,
    )


def _draft(form: dict[str, str]) -> tuple[dict[str, Any], list[builder.Row], str]:
    """The condition being edited: the JSON view when chosen, else the builder rows."""
    rows, match = builder.rows_from_form(form), form.get("match", "all")
    if form.get("mode") == "json":
        try:
            condition = json.loads(form.get("condition_json", "") or "{}")
        except json.JSONDecodeError as exc:
            raise ValidationFailed(
                f"The condition is not valid JSON ({exc.msg} at line {exc.lineno}).",
                field="condition_json",
            ) from None
        check_unique_keys(form.get("condition_json", ""), "condition_json")
        if not isinstance(condition, dict):
            raise ValidationFailed("The condition must be a JSON object.", field="condition_json")
        return condition, rows, match
    return builder.build_condition(rows, match), rows, match


def _estimate(request: Request, condition: dict[str, Any]) -> Estimate | None:
    console = console_of(request)
    compiled = console.services.workspace.compiled
    SegmentDefinition(key="draft", name="draft", condition=condition)  # the registry's checks
    matcher = compile_condition(condition, compiled.workspace.saved_groups)
    return console.census.estimate(matcher)


def _pseudonyms(request: Request, estimate: Estimate | None) -> list[dict[str, Any]]:
    if estimate is None:
        return []
    privacy = console_of(request).services.privacy
    return [
        {
            "id": privacy.pseudonymous_id(row.profile_id)[:16],
            "country": row.attributes.get("country"),
            "device": (row.attributes.get("device") or {}).get("type"),
            "sessions": row.attributes.get("sessions"),
            "lifecycle": row.attributes.get("lifecycle"),
            "engagement": row.attributes.get("engagement"),
        }
        for row in estimate.examples
    ]


@router.post("/ui/segments/preview")
async def preview(request: Request, person: Annotated[SignedIn, Depends(VIEWER)]) -> Response:
    """The draft's condition, whether the engine accepts it, and who it matches now."""
    form = await form_of(request)
    error: Exception | None = None
    condition: dict[str, Any] = {}
    estimate = None
    try:
        condition, _, _ = _draft(form)
        estimate = _estimate(request, condition)
    except (ValidationFailed, ValueError) as exc:
        error = exc
    return render(
        request,
        "partials/segment_preview.html",
        condition=json.dumps(condition, indent=2) if condition else "",
        estimate=estimate,
        examples=_pseudonyms(request, estimate),
        problem=getattr(error, "detail", str(error)) if error is not None else None,
        problem_field=getattr(error, "field", None),
    )


def _editor(
    request: Request,
    *,
    key: str = "",
    name: str = "",
    description: str = "",
    condition: dict[str, Any] | None = None,
    rows: list[builder.Row] | None = None,
    match: str = "all",
    mode: str | None = None,
    revision: int | None = None,
    error: Exception | None = None,
    status_code: int = 200,
    existing: bool = False,
) -> Response:
    console = console_of(request)
    condition = condition or {}
    if rows is None:
        parsed = builder.rows_from_condition(condition) if condition else ([], "all")
        rows, match = parsed if parsed is not None else ([], "all")
        if mode is None:
            mode = "json" if parsed is None else "builder"
    estimate = None
    if condition and error is None:
        try:
            estimate = _estimate(request, condition)
        except (ValidationFailed, ValueError):
            estimate = None
    census = console.census.last
    return render(
        request,
        "segment_edit.html",
        status_code=status_code,
        key=key,
        name=name,
        description=description,
        rows=rows or [builder.Row("event_count")],
        match=match,
        mode=mode or "builder",
        condition_json=json.dumps(condition, indent=2) if condition else "{}",
        kinds=builder.KINDS,
        op_labels=builder.OP_LABELS,
        revision=revision if revision is not None else console.services.workspace.revision,
        error=error,
        estimate=estimate,
        examples=_pseudonyms(request, estimate),
        existing=existing,
        size=(console.census.sizes() or {}).get(key) if existing else None,
        chart=size_chart(census.series, [key], "Size per day") if census and existing else None,
    )


@router.get("/ui/segments/new")
def new_segment(request: Request, person: Annotated[SignedIn, Depends(EDITOR)]) -> Response:
    return _editor(request)


@router.get("/ui/segments/overlap")
def overlap(
    request: Request, person: Annotated[SignedIn, Depends(VIEWER)], a: str = "", b: str = ""
) -> Response:
    console = console_of(request)
    sizes = console.census.sizes() or {}
    both = console.census.overlap(a, b) if a and b else None
    return render(
        request,
        "partials/overlap.html",
        a=a,
        b=b,
        size_a=sizes.get(a),
        size_b=sizes.get(b),
        both=both,
    )


@router.get("/ui/segments/{key}")
def segment(key: str, request: Request, person: Annotated[SignedIn, Depends(VIEWER)]) -> Response:
    compiled = console_of(request).services.workspace.compiled
    definition = compiled.registry.get(key)
    if definition is None:
        raise NotFound(f'No segment "{key}".', field="key")
    own = any(s.key == key for s in compiled.workspace.segments)
    return _editor(
        request,
        key=key,
        name=definition.name,
        description=definition.description,
        condition=definition.condition,
        existing=own,
    )


@router.post("/ui/segments/save")
async def save(request: Request, person: Annotated[SignedIn, Depends(EDITOR)]) -> Response:
    form = await form_of(request)
    key, name = form.get("key", "").strip(), form.get("name", "").strip()
    revision = _int(form.get("revision"))
    rows, match = builder.rows_from_form(form), form.get("match", "all")
    condition: dict[str, Any] = {}
    try:
        condition, rows, match = _draft(form)
        document = {
            "name": name or key,
            "description": form.get("description", "").strip(),
            "condition": condition,
        }
        author = Author(person.email, "console", form.get("comment", ""))
        console_of(request).services.workspace.apply_entry(
            "segments", key, document, author=author, expected=revision
        )
    except (ConfigError, ValidationFailed, StaleRevision, NotFound) as exc:
        return _editor(
            request,
            key=key,
            name=name,
            description=form.get("description", ""),
            condition=condition,
            rows=rows,
            match=match,
            mode=form.get("mode", "builder"),
            revision=revision,
            error=exc,
            status_code=exc.status,
            existing=form.get("existing") == "1",
        )
    return redirect(request, f"/ui/segments/{key}?saved=1")


@router.post("/ui/segments/{key}/delete")
async def delete(
    key: str, request: Request, person: Annotated[SignedIn, Depends(EDITOR)]
) -> Response:
    form = await form_of(request)
    author = Author(person.email, "console", form.get("comment", "") or f"deleted {key}")
    console_of(request).services.workspace.apply_entry(
        "segments", key, None, author=author, expected=_int(form.get("revision"))
    )
    return redirect(request, "/ui/segments")


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and len(value) <= 12 else None
