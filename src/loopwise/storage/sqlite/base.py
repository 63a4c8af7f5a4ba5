"""What every SQLite store shares: how it reaches its connection, and read errors as problems.

A store object is bound to a connection *getter*: the storage's read handle returns the calling
thread's read-only connection (WAL lets readers run beside the writer), a unit of work's handle
returns the writer connection inside its transaction (so its reads see its own writes).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from loopwise.errors import StorageUnavailable

Connect = Callable[[], sqlite3.Connection]
FETCH_BATCH = 500
MAX_PARAMS = 500  # ids per IN (...) query, far below SQLite's variable limit


def placeholders(count: int) -> str:
    return ",".join("?" * count)


def chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), MAX_PARAMS):
        yield values[start : start + MAX_PARAMS]


def read_error(exc: sqlite3.Error) -> StorageUnavailable:
    error = StorageUnavailable(
        f"Reading the database failed ({exc}); check that the database file exists and is "
        "readable, then retry."
    )
    error.__cause__ = exc
    return error


class Table:
    """Query helpers over the bound connection. Writes raise ``sqlite3.Error`` as they are (the
    writer turns a failed transaction into ``StorageUnavailable``); reads raise
    ``StorageUnavailable`` with a message an operator can act on."""

    def __init__(self, connect: Connect) -> None:
        self._connect = connect

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        try:
            row = self._connect().execute(sql, params).fetchone()
        except sqlite3.Error as exc:
            raise read_error(exc) from exc
        return None if row is None else row[0]

    def _row(self, sql: str, params: Sequence[Any] = ()) -> Any:
        try:
            return self._connect().execute(sql, params).fetchone()
        except sqlite3.Error as exc:
            raise read_error(exc) from exc

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            return self._connect().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise read_error(exc) from exc

    def _in(self, sql: str, values: Sequence[str], extra: Sequence[Any] = ()) -> list[Any]:
        """``sql`` with one ``{}`` where an ``IN (...)`` list of ``values`` goes, chunked."""
        rows: list[Any] = []
        unique = list(dict.fromkeys(values))
        for chunk in chunks(unique):
            rows += self._all(sql.format(placeholders(len(chunk))), [*chunk, *extra])
        return rows

    def _stream(self, sql: str, params: Sequence[Any] = ()) -> Iterator[Any]:
        """Rows in fetchmany batches, so large tables never sit in memory whole."""
        try:
            cursor = self._connect().execute(sql, params)
        except sqlite3.Error as exc:
            raise read_error(exc) from exc
        try:
            while True:
                try:
                    batch = cursor.fetchmany(FETCH_BATCH)
                except sqlite3.Error as exc:
                    raise read_error(exc) from exc
                if not batch:
                    return
                yield from batch
        finally:
            cursor.close()

    def _exec(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._connect().execute(sql, params).rowcount

    def _many(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        if not rows:
            return 0
        return self._connect().executemany(sql, rows).rowcount


def as_bytes(value: object) -> bytes:
    """A stored blob as bytes (a damaged row may hold text, or nothing)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "replace")
    if isinstance(value, memoryview | bytearray):
        return bytes(value)
    return b""
