"""How memory stores reach their tables: committed (readers) or in a transaction (one job).

Readers get :class:`Committed`: every read copies what it needs out of the committed tables under
one short lock, then decodes outside it (so a read never yields while holding the lock, and never
waits for a running job). Jobs get :class:`Transaction`: the writer thread's working copy of the
tables, where every change logs the row it replaced; rolling back to a position in that undo log
is what a savepoint does, and committing copies the rows the log names into the committed tables.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Protocol

from loopwise.errors import StorageUnavailable
from loopwise.storage.memory.tables import Key, Row, Tables


def closed_error() -> StorageUnavailable:
    return StorageUnavailable(
        "Storage is closed. Restart the server or open the storage again before using it."
    )


class Access(Protocol):
    def read(self) -> AbstractContextManager[Tables]: ...

    def put(self, table: str, key: Key, row: Row) -> Row | None: ...

    def pop(self, table: str, key: Key) -> Row | None: ...

    def next_id(self, name: str) -> int: ...

    def next_ids(self, name: str, count: int) -> range: ...


class Committed:
    """The committed tables, shared by every reader."""

    def __init__(self) -> None:
        self.tables = Tables()
        self.closed = False
        self._lock = threading.Lock()

    @contextmanager
    def read(self) -> Iterator[Tables]:
        with self._lock:
            if self.closed:
                raise closed_error()
            yield self.tables

    def put(self, table: str, key: Key, row: Row) -> Row | None:
        raise _read_only()

    def pop(self, table: str, key: Key) -> Row | None:
        raise _read_only()

    def next_id(self, name: str) -> int:
        raise _read_only()

    def next_ids(self, name: str, count: int) -> range:
        raise _read_only()

    def publish(self, source: Tables, touched: Iterable[tuple[str, Key]]) -> None:
        """Make the working copy's rows at ``touched`` the committed ones, all at once."""
        with self._lock:
            for name, key in touched:
                row = source[name].get(key)
                if row is None:
                    self.tables[name].pop(key)
                else:
                    self.tables[name].put(key, row)

    def close(self) -> None:
        with self._lock:
            self.closed = True


def _read_only() -> RuntimeError:
    return RuntimeError("a read handle cannot write; submit a job and use its unit of work")


class Transaction:
    """The writer's working copy and its undo log (touched by the writer thread only)."""

    def __init__(self) -> None:
        self.tables = Tables()
        self.undo: list[tuple[str, Key, Row | None]] = []

    def read(self) -> AbstractContextManager[Tables]:
        return nullcontext(self.tables)

    def put(self, table: str, key: Key, row: Row) -> Row | None:
        old = self.tables[table].put(key, row)
        self.undo.append((table, key, old))
        return old

    def pop(self, table: str, key: Key) -> Row | None:
        old = self.tables[table].pop(key)
        if old is not None:
            self.undo.append((table, key, old))
        return old

    def next_id(self, name: str) -> int:
        """The next value of sequence ``name`` (undone with the job, as SQLite's are)."""
        return self.next_ids(name, 1)[0]

    def next_ids(self, name: str, count: int) -> range:
        """The next ``count`` values of sequence ``name``, in order."""
        row = self.tables["sequences"].get(name)
        last = int(row[0]) if row else 0
        self.put("sequences", name, (last + count,))
        return range(last + 1, last + count + 1)

    def undo_to(self, mark: int) -> None:
        while len(self.undo) > mark:
            table, key, old = self.undo.pop()
            if old is None:
                self.tables[table].pop(key)
            else:
                self.tables[table].put(key, old)

    def touched(self) -> list[tuple[str, Key]]:
        return list(dict.fromkeys((table, key) for table, key, _ in self.undo))


class Store:
    """A store bound to committed tables (a read handle) or to a transaction (a job's)."""

    def __init__(self, db: Access) -> None:
        self._db = db
