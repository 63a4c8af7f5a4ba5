"""One person's state in one journey, as plain data (stored whole in the journey store).

``status``: ``watching`` (an inactivity journey watches the person, not entered), ``active``
(in the journey, at ``step``), ``done`` (left: completed, exited, held out, no consent).
``history`` keeps what happened (entered, each step, sends, exits), bounded, newest last; it is
the person's journey history in their profile and export, and is erased with them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from loopwise.clock import isoformat, parse_timestamp
from loopwise.storage.journey_records import JourneyRecord

WATCHING = "watching"
ACTIVE = "active"
DONE = "done"
HISTORY_LIMIT = 100
SENDS_LIMIT = 50


def _time(value: Any) -> datetime | None:
    return None if value is None else parse_timestamp(value)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else isoformat(value)


@dataclass(slots=True)
class JourneyState:
    journey: str
    profile_id: str
    status: str = WATCHING
    step: int = 0
    due_at: datetime | None = None
    waiting_for: str | None = None  # wait_until: the event that ends the wait
    waiting_at: str | None = None  # the step id the person waits at (the "waiting" count)
    quiet: bool = False  # waiting for quiet hours to end at an action step
    arm: str | None = None
    entries: int = 0
    entered_at: datetime | None = None
    left_at: datetime | None = None
    exit_reason: str | None = None
    converted: bool = False
    visited: list[str] = field(default_factory=list)  # step ids reached in this entry
    sends: list[datetime] = field(default_factory=list)  # this journey's sends (caps)
    history: list[dict[str, Any]] = field(default_factory=list)

    def copy(self) -> JourneyState:
        return JourneyState.from_record(self.to_record())

    def note(self, at: datetime, what: str, **detail: Any) -> None:
        self.history.append({"at": isoformat(at), "what": what, **detail})
        if len(self.history) > HISTORY_LIMIT:
            del self.history[: len(self.history) - HISTORY_LIMIT]

    def to_data(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "step": self.step,
            "waiting_for": self.waiting_for,
            "waiting_at": self.waiting_at,
            "quiet": self.quiet,
            "arm": self.arm,
            "entries": self.entries,
            "entered_at": _iso(self.entered_at),
            "left_at": _iso(self.left_at),
            "exit_reason": self.exit_reason,
            "converted": self.converted,
            "visited": list(self.visited),
            "sends": [isoformat(t) for t in self.sends],
            "history": list(self.history),
        }

    def to_record(self) -> JourneyRecord:
        return JourneyRecord(self.journey, self.profile_id, self.due_at, self.to_data())

    @classmethod
    def from_record(cls, record: JourneyRecord) -> JourneyState:
        d = record.data
        return cls(
            journey=record.journey,
            profile_id=record.profile_id,
            status=str(d.get("status", WATCHING)),
            step=int(d.get("step", 0)),
            due_at=record.due_at,
            waiting_for=d.get("waiting_for"),
            waiting_at=d.get("waiting_at"),
            quiet=bool(d.get("quiet", False)),
            arm=d.get("arm"),
            entries=int(d.get("entries", 0)),
            entered_at=_time(d.get("entered_at")),
            left_at=_time(d.get("left_at")),
            exit_reason=d.get("exit_reason"),
            converted=bool(d.get("converted", False)),
            visited=[str(v) for v in d.get("visited", [])],
            sends=[t for t in (_time(v) for v in d.get("sends", [])) if t is not None],
            history=[dict(h) for h in d.get("history", [])],
        )

    def view(self) -> dict[str, Any]:
        """The person-facing summary (profile, export)."""
        return {"journey": self.journey, **self.to_data(), "due_at": _iso(self.due_at)}
