"""``/ui/slots``: each slot's variants as content blocks with a rendered preview, its rules in
priority order (reorder, active windows, the pricing flag), its defaults, and "preview as" — the
page's decision for a chosen profile or context, before and after an unsaved change.

Every change is a workspace edit through the workspace service (the admin API's validation),
made on the revision the page was loaded at: a concurrent change is refused with its diff."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from loopwise.console.people import SignedIn
from loopwise.console.preview import Audience, compile_draft, preview_page
from loopwise.console.web import (
    EDITOR,
    VIEWER,
    ConsoleRoute,
    console_of,
    error_response,
    form_list,
    form_of,
    is_htmx,
    redirect,
    render,
)
from loopwise.errors import LoopwiseError, NotFound, ValidationFailed
from loopwise.events.limits import check_unique_keys
from loopwise.workspace.history import Author

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
BLOCK_FIELDS = ("headline", "body", "cta", "cta_url", "image", "image_alt")
SlotEdit = Callable[[dict[str, Any]], dict[str, Any]]


def _int(value: str | None) -> int | None:
    digits = value.lstrip("-") if value else ""
    return int(value) if value and digits.isdigit() and len(digits) <= 12 else None


def _slot(document: dict[str, Any], key: str) -> dict[str, Any]:
    found = next((s for s in document.get("slots", []) if s.get("key") == key), None)
    if found is None:
        raise NotFound(f'No slot "{key}".', field="key")
    return found


def _page(
    request: Request,
    key: str,
    *,
    error: LoopwiseError | None = None,
    status_code: int = 200,
    revision: int | None = None,
    draft: str | None = None,
) -> Response:
    console = console_of(request)
    live_revision, document = console.services.workspace.snapshot()
    slot = _slot(document, key)
    compiled = console.services.workspace.compiled
    ledger = console.ledger.last
    rules = sorted(
        enumerate(slot.get("rules", [])), key=lambda pair: (-pair[1].get("priority", 0), pair[0])
    )
    return render(
        request,
        "slot.html",
        status_code=status_code,
        slot=slot,
        rules=[rule for _, rule in rules],
        revision=revision if revision is not None else live_revision,
        error=error,
        slot_json=draft if draft is not None else json.dumps(slot, indent=2),
        segments=sorted(compiled.segment_names.items()),
        strategies=sorted(compiled.strategies.names()),
        fallbacks=ledger.fallbacks.get(key) if ledger is not None else None,
        all_slots=[s["key"] for s in document.get("slots", [])],
    )


@router.get("/ui/slots")
def slots(request: Request, person: Annotated[SignedIn, Depends(VIEWER)]) -> Response:
    console = console_of(request)
    revision, document = console.services.workspace.snapshot()
    ledger = console.ledger.last
    return render(
        request,
        "slots.html",
        slots=document.get("slots", []),
        fallbacks=ledger.fallbacks if ledger is not None else {},
        revision=revision,
        strategies=sorted(console.services.workspace.compiled.strategies.names()),
    )


@router.get("/ui/slots/{key}")
def slot(key: str, request: Request, person: Annotated[SignedIn, Depends(VIEWER)]) -> Response:
    return _page(request, key)


async def _apply(
    request: Request, person: SignedIn, key: str, edit: SlotEdit, comment: str
) -> Response:
    """Apply ``edit`` to the slot on the revision the form was loaded at."""
    form = await form_of(request)
    revision = _int(form.get("revision"))
    author = Author(person.email, "console", form.get("comment", "") or comment)

    def whole(document: dict[str, Any]) -> dict[str, Any]:
        slots = [edit(dict(s)) if s.get("key") == key else s for s in document.get("slots", [])]
        if not any(s.get("key") == key for s in document.get("slots", [])):
            raise NotFound(f'No slot "{key}".', field="key")
        return {**document, "slots": slots}

    try:
        console_of(request).services.workspace.apply(whole, author=author, expected=revision)
    except LoopwiseError as exc:
        if is_htmx(request):
            return error_response(request, exc)
        return _page(request, key, error=exc, status_code=exc.status, revision=revision)
    return redirect(request, f"/ui/slots/{key}?saved=1")


def _block(form: dict[str, str]) -> dict[str, Any]:
    return {name: form[name].strip() for name in BLOCK_FIELDS if form.get(name, "").strip()}


@router.post("/ui/slots/new")
async def new_slot(request: Request, person: Annotated[SignedIn, Depends(EDITOR)]) -> Response:
    form = await form_of(request)
    key, kind = form.get("key", "").strip(), form.get("kind", "block")
    document: dict[str, Any] = {"kind": kind, "description": form.get("description", "")}
    if kind == "block":
        document["variants"] = [
            {"id": form.get("variant_id", "").strip() or "default", "content": _block(form)}
        ]
    else:
        document["default_strategy"] = form.get("default_strategy", "popular")
    author = Author(person.email, "console", form.get("comment", "") or f"new slot {key}")
    console = console_of(request)
    try:
        console.services.workspace.apply_entry(
            "slots", key, document, author=author, expected=_int(form.get("revision"))
        )
    except LoopwiseError as exc:
        revision, current = console.services.workspace.snapshot()
        return render(
            request,
            "slots.html",
            status_code=exc.status,
            error=exc,
            slots=current["slots"],
            fallbacks={},
            revision=revision,
            strategies=sorted(console.services.workspace.compiled.strategies.names()),
        )
    return redirect(request, f"/ui/slots/{key}")


@router.post("/ui/slots/{key}/variants")
async def put_variant(
    key: str, request: Request, person: Annotated[SignedIn, Depends(EDITOR)]
) -> Response:
    form = await form_of(request)
    variant_id = form.get("variant_id", "").strip()

    def edit(slot: dict[str, Any]) -> dict[str, Any]:
        variants = list(slot.get("variants", []))
        entry = {"id": variant_id, "content": _block(form)}
        at = next((i for i, v in enumerate(variants) if v.get("id") == variant_id), None)
        if at is None:
            variants.append(entry)
        else:
            variants[at] = {**variants[at], **entry}
        return {**slot, "variants": variants}

    return await _apply(request, person, key, edit, f"variant {variant_id} of {key}")


@router.post("/ui/slots/{key}/variants/{variant_id}/delete")
async def delete_variant(
    key: str, variant_id: str, request: Request, person: Annotated[SignedIn, Depends(EDITOR)]
) -> Response:
    def edit(slot: dict[str, Any]) -> dict[str, Any]:
        return {**slot, "variants": [v for v in slot.get("variants", []) if v["id"] != variant_id]}

    return await _apply(request, person, key, edit, f"deleted variant {variant_id} of {key}")


def _rule(form: dict[str, str], segments: list[str]) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": form.get("rule_id", "").strip(),
        "description": form.get("description", "").strip(),
        "priority": _int(form.get("priority")) or 0,
        "pricing": form.get("pricing") == "on",
    }
    if segments:
        rule["segments"] = segments
    when = form.get("when", "").strip()
    if when:
        try:
            rule["when"] = json.loads(when)
        except json.JSONDecodeError as exc:
            raise ValidationFailed(
                f"The rule's condition is not valid JSON ({exc.msg}).", field="when"
            ) from None
        check_unique_keys(when, "when")
    then: dict[str, Any] = {}
    if form.get("variant"):
        then["variant"] = form["variant"]
    if form.get("strategy"):
        then["strategy"] = form["strategy"]
    rule["then"] = then
    for name in ("active_from", "active_to"):
        if form.get(name):
            rule[name] = form[name] if form[name].endswith("Z") else form[name] + ":00Z"
    return rule


@router.post("/ui/slots/{key}/rules")
async def put_rule(
    key: str, request: Request, person: Annotated[SignedIn, Depends(EDITOR)]
) -> Response:
    form = await form_of(request)
    try:
        rule = _rule(form, [s for s in await form_list(request, "segments") if s])
    except ValidationFailed as exc:
        return _page(request, key, error=exc, status_code=400)

    def edit(slot: dict[str, Any]) -> dict[str, Any]:
        rules = [r for r in slot.get("rules", []) if r.get("id") != rule["id"]]
        return {**slot, "rules": [*rules, rule]}

    return await _apply(request, person, key, edit, f"rule {rule['id']} of {key}")


@router.post("/ui/slots/{key}/rules/{rule_id}/move")
async def move_rule(
    key: str, rule_id: str, request: Request, person: Annotated[SignedIn, Depends(EDITOR)]
) -> Response:
    """Swap a rule with its neighbour in priority order, and renumber priorities so the order
    is explicit (10 apart, highest first)."""
    form = await form_of(request)
    up = form.get("direction") == "up"

    def edit(slot: dict[str, Any]) -> dict[str, Any]:
        ordered = sorted(
            enumerate(slot.get("rules", [])), key=lambda p: (-p[1].get("priority", 0), p[0])
        )
        rules = [dict(rule) for _, rule in ordered]
        at = next((i for i, r in enumerate(rules) if r["id"] == rule_id), None)
        if at is None:
            raise NotFound(f'No rule "{rule_id}" in slot "{key}".', field="rule")
        other = at - 1 if up else at + 1
        if 0 <= other < len(rules):
            rules[at], rules[other] = rules[other], rules[at]
        for i, rule in enumerate(rules):
            rule["priority"] = (len(rules) - i) * 10
        return {**slot, "rules": rules}

    return await _apply(
        request, person, key, edit, f"moved rule {rule_id} {'up' if up else 'down'}"
    )


@router.post("/ui/slots/{key}/rules/{rule_id}/delete")
async def delete_rule(
    key: str, rule_id: str, request: Request, person: Annotated[SignedIn, Depends(EDITOR)]
) -> Response:
    def edit(slot: dict[str, Any]) -> dict[str, Any]:
        return {**slot, "rules": [r for r in slot.get("rules", []) if r.get("id") != rule_id]}

    return await _apply(request, person, key, edit, f"deleted rule {rule_id} of {key}")


@router.post("/ui/slots/{key}/settings")
async def settings(
    key: str, request: Request, person: Annotated[SignedIn, Depends(EDITOR)]
) -> Response:
    form = await form_of(request)

    def edit(slot: dict[str, Any]) -> dict[str, Any]:
        changed = {**slot, "description": form.get("description", slot.get("description", ""))}
        if slot.get("kind") == "block" and form.get("default_variant"):
            changed["default_variant"] = form["default_variant"]
        if slot.get("kind") == "list" and form.get("default_strategy"):
            changed["default_strategy"] = form["default_strategy"]
        return changed

    return await _apply(request, person, key, edit, f"settings of {key}")


@router.post("/ui/slots/{key}/json")
async def save_json(
    key: str, request: Request, person: Annotated[SignedIn, Depends(EDITOR)]
) -> Response:
    form = await form_of(request)
    try:
        document = json.loads(form.get("slot_json", ""))
        if not isinstance(document, dict):
            raise ValueError("not an object")
        check_unique_keys(form.get("slot_json", ""), "slot_json")
    except ValidationFailed as duplicate:
        return _page(request, key, error=duplicate, status_code=400, draft=form.get("slot_json"))
    except ValueError as exc:
        error = ValidationFailed(f"The slot is not a JSON object ({exc}).", field="slot_json")
        return _page(request, key, error=error, status_code=400, draft=form.get("slot_json"))
    return await _apply(request, person, key, lambda _: {**document, "key": key}, f"edited {key}")


@router.post("/ui/slots/preview")
async def preview(request: Request, person: Annotated[SignedIn, Depends(VIEWER)]) -> Response:
    """The page's decision now, and with the draft slot (unsaved) when one is sent."""
    form = await form_of(request)
    console = console_of(request)
    services = console.services
    audience = Audience(
        identifier=form.get("identifier", "").strip(),
        country=form.get("country", "").strip(),
        device=form.get("device", ""),
        source=form.get("source", ""),
        segments=tuple(s for s in await form_list(request, "as_segments") if s),
        personalization=form.get("impersonal") != "on",
    )
    wanted = [s for s in await form_list(request, "page_slots") if s]
    live = services.workspace.compiled
    slots = wanted or list(live.slots)
    before = after = None
    problem: LoopwiseError | None = None
    try:
        before = preview_page(services, live, audience, slots)
        draft_key, draft_json = form.get("draft_key", ""), form.get("slot_json", "").strip()
        if draft_key and draft_json:
            try:
                draft = json.loads(draft_json)
            except json.JSONDecodeError as exc:
                raise ValidationFailed(
                    f"The unsaved slot is not valid JSON ({exc.msg}).", field="slot_json"
                ) from None
            document = live.workspace.document()
            document["slots"] = [
                {**draft, "key": draft_key} if s["key"] == draft_key else s
                for s in document["slots"]
            ]
            compiled = compile_draft(services, document)
            after = preview_page(services, compiled, audience, slots)
    except LoopwiseError as exc:
        problem = exc
    return render(
        request,
        "partials/preview.html",
        before=before,
        after=after,
        problem=problem,
        names=live.segment_names,
    )
