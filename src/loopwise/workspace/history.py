"""Who changes the workspace and how, and the errors of optimistic concurrency.

Every change is a revision (``WorkspaceChange`` in the ``workspace_history`` store). A writer
that says which revision it edited (``If-Match`` over HTTP, the hidden revision of a console
form) is refused with :class:`StaleRevision` — a 412 carrying what changed since — when
someone else saved first; a writer that does not say is applied on the newest revision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loopwise.clock import isoformat
from loopwise.errors import LoopwiseError, ValidationFailed
from loopwise.storage.records import WorkspaceChange

MAX_COMMENT_CHARS = 500


@dataclass(frozen=True, slots=True)
class Author:
    """Who makes a change, through what, and why."""

    actor: str
    source: str  # admin | console | file | clusters | restore | push | cli
    comment: str = ""

    def with_comment(self, comment: str) -> Author:
        return Author(self.actor, self.source, comment.strip()[:MAX_COMMENT_CHARS])


ADMIN_API = Author("admin key", "admin")
CLI = Author("cli", "cli")


@dataclass(frozen=True, slots=True)
class Applied:
    """The outcome of a change: the new revision and the whole document after it."""

    revision: int
    document: dict[str, Any]


class StaleRevision(LoopwiseError):
    """The change was made on an older revision than the live one."""

    status = 412
    slug = "stale-revision"
    title = "The workspace changed since you loaded it"


def stale(expected: int, current: int, changes: list[str]) -> StaleRevision:
    shown = "; ".join(changes[:5]) + (f" (and {len(changes) - 5} more)" if len(changes) > 5 else "")
    return StaleRevision(
        f"You edited revision {expected}, but the workspace is at revision {current}: someone "
        f"saved first ({shown or 'no content changed'}). Reload the workspace (its ETag is "
        f'"{current}"), re-apply your change and send it with If-Match: "{current}".',
        field="If-Match",
        your_revision=expected,
        current_revision=current,
        changes=changes,
    )


def parse_if_match(value: str | None) -> int | None:
    """``If-Match: "12"`` (or ``W/"12"``, ``12``) -> 12; absent or ``*`` -> None."""
    if value is None or not value.strip() or value.strip() == "*":
        return None
    text = value.strip().removeprefix("W/").strip().strip('"')
    if not text.isdigit():
        raise ValidationFailed(
            f'If-Match must be the workspace ETag, a revision number in quotes such as "12" '
            f"(got {value[:40]!r}).",
            field="If-Match",
        )
    return int(text)


def etag(revision: int) -> str:
    return f'"{revision}"'


def change_summary(change: WorkspaceChange) -> dict[str, Any]:
    """One revision as JSON (the document left out: ask for a revision to get it)."""
    return {
        "revision": change.revision,
        "at": isoformat(change.at),
        "actor": change.actor,
        "source": change.source,
        "comment": change.comment,
        "changes": list(change.diff),
    }
