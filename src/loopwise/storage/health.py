"""The read/write health report every backend's ``health()`` gives (``/healthz`` shows it)."""

from __future__ import annotations

import contextlib
import time
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


def report(
    backend: str, writer: GroupCommitWriter[Any], read: str, **details: Any
) -> dict[str, Any]:
    """The health document; ``write_failed_at`` (``time.monotonic()``) says since when writes
    fail, so an idle server can probe whether they work again."""
    write = write_health(writer)
    failed_at = writer.last_error_at if writer.last_error is not None else None
    return {
        "backend": backend,
        **details,
        "write": write,
        "read": read,
        "ok": write == "ok" and read == "ok",
        **({"write_failed_at": failed_at} if failed_at is not None else {}),
    }


HEALTH_PROBE_SECONDS = 5.0


def probed_health(storage: Any) -> dict[str, Any]:
    """``storage.health()``; writes that failed stay reported until a commit succeeds, so with
    no traffic a probe write after ``HEALTH_PROBE_SECONDS`` tells whether the disk came back."""
    health: dict[str, Any] = storage.health()
    failed_at = health.get("write_failed_at")
    if failed_at is not None and time.monotonic() - failed_at >= HEALTH_PROBE_SECONDS:
        with contextlib.suppress(Exception):
            storage.write(lambda uow: uow.config.put_meta("health_probe", "ok"))
        health = storage.health()
    return health
