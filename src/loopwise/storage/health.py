"""The read/write health report every backend's ``health()`` gives (``/healthz`` shows it)."""

from __future__ import annotations

from typing import Any

from loopwise.storage.writer import GroupCommitWriter


def write_health(writer: GroupCommitWriter[Any]) -> str:
    """``ok``, or why writes fail: the writer stopped, or the last commit failed (until a
    commit succeeds again)."""
    if not writer.alive:
        return "the writer has stopped; restart the server or open the storage again"
    if writer.last_error is not None:
        return f"failing: {writer.last_error}"
    return "ok"


def report(backend: str, write: str, read: str, **details: Any) -> dict[str, Any]:
    return {
        "backend": backend,
        **details,
        "write": write,
        "read": read,
        "ok": write == "ok" and read == "ok",
    }
