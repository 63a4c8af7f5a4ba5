"""What every PostgreSQL store shares: how it reaches a connection, paging, times.

A store is bound to a connection *getter* (a context manager): the storage's read handle lends a
pooled read-only connection per query; a unit of work's handle hands out the writer connection
inside its transaction, so its reads see its own writes. Iterators page by key (``ORDER BY ...
LIMIT``, then ``WHERE key > last``), so a long iteration holds no connection or transaction
between pages and large tables never sit in memory whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

from loopwise.clock import parse_timestamp
from loopwise.errors import StorageUnavailable

Connection = psycopg.Connection[Any]
Query = str | bytes | sql.SQL | sql.Composed
Connect = Callable[[], AbstractContextManager[Connection]]
PAGE = 1000

# advisory lock class ids (the second key is the schema's hash)
MIGRATION_LOCK = 0x6C6F6F70  # "loop"
POSITIONS_LOCK = 0x6C6F6731  # "log1": event and observation positions, in commit order


BEGINNING = datetime(1, 1, 1, tzinfo=UTC)  # before any stored time: where keyset pages start


def first_column(row: Any) -> list[Any]:
    """The sort key of rows ordered by their first column alone."""
    return [row[0]]


def ms(value: datetime) -> datetime:
    """``value`` in UTC at millisecond precision, as every backend keeps times."""
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def required_time(value: Any, what: str) -> datetime:
    parsed = parse_timestamp(value)
    if parsed is None:
        raise ValueError(f"{what} must be an ISO 8601 time, got {value!r}")
    return ms(parsed)


def read_error(exc: psycopg.Error) -> StorageUnavailable:
    error = StorageUnavailable(
        f"Reading from PostgreSQL failed ({type(exc).__name__}: {exc}); check that the server "
        "is running and reachable, then retry."
    )
    error.__cause__ = exc
    return error


class Table:
    """Query helpers over the bound connection. Writes raise ``psycopg.Error`` as they are (the
    writer turns a lost transaction into ``StorageUnavailable``); reads raise
    ``StorageUnavailable`` with a message an operator can act on."""

    def __init__(self, connect: Connect, *, pooled: bool) -> None:
        self._connect = connect
        self._pooled = pooled

    def _all(self, sql: Query, params: Sequence[Any] = ()) -> list[Any]:
        # a pooled connection can have died with the server since it was last used: the pool
        # drops it when it comes back broken, so one retry gets a fresh one
        attempts = 2 if self._pooled else 1
        for attempt in range(attempts):
            try:
                with self._connect() as conn:
                    return conn.execute(sql, params).fetchall()
            except psycopg.OperationalError as exc:
                if attempt + 1 == attempts:
                    raise read_error(exc) from exc
            except psycopg.Error as exc:
                raise read_error(exc) from exc
        raise AssertionError("unreachable")

    def _one(self, sql: Query, params: Sequence[Any] = ()) -> Any:
        rows = self._all(sql, params)
        return rows[0][0] if rows else None

    def _row(self, sql: Query, params: Sequence[Any] = ()) -> Any:
        rows = self._all(sql, params)
        return rows[0] if rows else None

    def _paged(
        self,
        after: Query,
        params: Sequence[Any],
        key: Callable[[Any], Sequence[Any]],
        *,
        start: Sequence[Any] | None = None,
        first: Query | None = None,
        page: int = PAGE,
    ) -> Iterator[Any]:
        """Every row, page by page. ``after`` takes ``params``, then a row's ``key`` (the sort
        key, compared with ``>``), then the page size (``... ORDER BY k LIMIT %s``). The first
        page starts after ``start``, or is ``first`` (``after`` without the key condition)."""
        if start is not None:
            rows = self._all(after, [*params, *start, page])
        else:
            assert first is not None
            rows = self._all(first, [*params, page])
        while True:
            yield from rows
            if len(rows) < page:
                return
            rows = self._all(after, [*params, *key(rows[-1]), page])

    def _exec(self, sql: Query, params: Sequence[Any] = ()) -> int:
        with self._connect() as conn:
            return conn.execute(sql, params).rowcount

    def _returning(self, sql: Query, params: Sequence[Any] = ()) -> list[Any]:
        """A write's ``RETURNING`` rows (errors raised as they are)."""
        with self._connect() as conn:
            return conn.execute(sql, params).fetchall()
