"""Decision ids: ``d_``, the millisecond (12 hex digits), then 80 random bits (20 hex digits).

Time first, as in UUIDv7: ids made one after another sort together, so the decision log's id
index grows at its end instead of taking every insert at a random page (a campaign logs
thousands of decisions a second; random ids made each commit rewrite a page of the index per
decision, costing SQLite about twice the time and the disk twice the writes). The 80 random
bits keep ids unguessable.

The random bits come from ``os.urandom`` a few kilobytes at a time: one system call per 400
ids, not one per id. Each such call also lets go of the GIL, and a thread deciding a campaign's
chunk then waits for the writer thread to hand it back. A forked child starts with an empty
buffer, so two processes never hand out the same bits.
"""

from __future__ import annotations

import os
import threading
import time

_RANDOM = 10  # bytes per id
_BUFFER = _RANDOM * 400


class _RandomBytes:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffer = b""
        self._at = 0

    def take(self) -> bytes:
        with self._lock:
            if self._at >= len(self._buffer):
                self._buffer, self._at = os.urandom(_BUFFER), 0
            start = self._at
            self._at = start + _RANDOM
            return self._buffer[start : start + _RANDOM]

    def forget(self) -> None:
        self._lock = threading.Lock()  # a lock held in the parent at fork stays held in the child
        self._buffer, self._at = b"", 0


_random = _RandomBytes()
os.register_at_fork(after_in_child=_random.forget)


def new_decision_id() -> str:
    return f"d_{time.time_ns() // 1_000_000:012x}{_random.take().hex()}"
