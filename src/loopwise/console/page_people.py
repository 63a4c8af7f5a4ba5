"""``/ui/people``: look a person up by any id; their timeline (events, segment entries and exits,
decisions with their "why"), consent state and history; export and erasure for admins, with a
confirmation and the receipt. Viewers see people only by pseudonymous id: no identifiers, no
traits, no event properties."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from loopwise.console.people import SignedIn
from loopwise.console.web import (
    ADMIN,
    SECURITY_HEADERS,
    VIEWER,
    ConsoleRoute,
    console_of,
    form_of,
    render,
)
from loopwise.decide.why import explain_decision
from loopwise.errors import NotFound, ValidationFailed

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
TIMELINE_LIMIT = 200


def timeline(export: dict[str, Any], masked: bool) -> list[dict[str, Any]]:
    """Newest first: events, segment changes and decisions with their reasons."""
    entries: list[dict[str, Any]] = []
    for event in export.get("events", []):
        name = event.get("event") or event.get("name") or event.get("type")
        detail = "" if masked else json.dumps(event.get("properties") or {}, sort_keys=True)[:200]
        entries.append(
            {
                "at": event.get("timestamp", ""),
                "kind": "event",
                "what": f"{event.get('type')}: {name}",
                "detail": detail,
            }
        )
    for change in export.get("segment_history", []):
        entries.append(
            {
                "at": change["at"],
                "kind": "segment",
                "what": f"{change['change']} {change['segment']}",
                "detail": "",
            }
        )
    for decision in export.get("decisions", []):
        try:
            why = explain_decision(decision)
            reasons = "; ".join(
                reason for slot in why.get("slots", []) for reason in slot.get("reasons", [])
            )
        except Exception:  # an old record without every field still shows
            reasons = ""
        slots = ", ".join(
            f"{s.get('slot')}={s.get('variant') or s.get('strategy') or ''}"
            for s in decision.get("slots", [])
        )
        entries.append(
            {
                "at": decision.get("created_at", ""),
                "kind": "decision",
                "what": slots,
                "detail": reasons,
            }
        )
    entries.sort(key=lambda e: str(e["at"]), reverse=True)
    return entries[:TIMELINE_LIMIT]


@router.get("/ui/people")
def people(
    request: Request, person: Annotated[SignedIn, Depends(VIEWER)], id: str = ""
) -> Response:
    console = console_of(request)
    services = console.services
    masked = not person.role.editor
    found: dict[str, Any] | None = None
    problem = None
    identifier = id.strip()
    if identifier:
        try:
            export = services.privacy.export(identifier, services.profiles.view)
            pseudonym = services.privacy.pseudonymous_id(export["profile_id"])
            profile = export.get("profile", {})
            found = {
                "pseudonym": pseudonym[:16],
                "profile_id": None if masked else export["profile_id"],
                "identifiers": [] if masked else export.get("identifiers", []),
                "segments": export.get("segments", []),
                "summary": {
                    k: profile.get(k)
                    for k in (
                        "country",
                        "lifecycle",
                        "engagement",
                        "sessions",
                        "events",
                        "purchases",
                        "last_seen",
                    )
                },
                "device": (profile.get("device") or {}).get("type"),
                "traits": {} if masked else profile.get("traits", {}),
                "consent": export.get("consent", {}),
                "consent_history": export.get("consent_history", []),
                "exposures": export.get("exposures", []),
                "timeline": timeline(export, masked),
                "events": len(export.get("events", [])),
            }
        except NotFound as exc:
            problem = exc.detail
    return render(
        request, "people.html", identifier=identifier, found=found, problem=problem, masked=masked
    )


@router.post("/ui/people/export")
async def export(request: Request, person: Annotated[SignedIn, Depends(ADMIN)]) -> Response:
    form = await form_of(request)
    services = console_of(request).services
    document = services.privacy.export(form.get("id", "").strip(), services.profiles.view)
    name = f"loopwise-export-{services.privacy.pseudonymous_id(document['profile_id'])[:12]}.json"
    return Response(
        json.dumps(document, indent=2, ensure_ascii=False),
        media_type="application/json",
        headers={**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.post("/ui/people/erase")
async def erase(request: Request, person: Annotated[SignedIn, Depends(ADMIN)]) -> Response:
    form = await form_of(request)
    identifier = form.get("id", "").strip()
    if not identifier or form.get("confirm", "").strip() != identifier:
        raise ValidationFailed(
            "Type the person's id again in the confirmation box to erase them.", field="confirm"
        )
    receipt = console_of(request).services.privacy.erase(identifier)
    return render(
        request, "erased.html", receipt=receipt, receipt_json=json.dumps(receipt, indent=2)
    )
