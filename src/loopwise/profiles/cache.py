"""A bounded, least-recently-used map for the engine's in-memory profiles and memberships.

Every profile the engine touches is stored before it is cached, so evicting one loses nothing: the
next read reloads it from storage (``Engine._profile``) or re-evaluates it (memberships). The
bound keeps memory flat however many profiles the event log holds. One lock serialises the
writer thread's publishes with the request threads' reads (a read moves the key to the end).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class LruCache(OrderedDict[K, V]):
    """An ``OrderedDict`` that holds at most ``limit`` entries, dropping the least recently read
    or written one first."""

    def __init__(self, limit: int, entries: Mapping[K, V] | None = None) -> None:
        if limit < 1:
            raise ValueError("an LRU cache needs a limit of at least 1")
        super().__init__()
        self.limit = limit
        self._lock = threading.RLock()
        if entries:
            self.update(entries)

    def __setitem__(self, key: K, value: V) -> None:
        with self._lock:
            super().__setitem__(key, value)
            self.move_to_end(key)
            while len(self) > self.limit:
                self.popitem(last=False)

    def get(self, key: K, default: Any = None, /) -> Any:
        with self._lock:
            if key not in self:
                return default
            self.move_to_end(key)
            return super().__getitem__(key)

    def setdefault(self, key: K, default: V) -> V:
        with self._lock:
            if key in self:
                self.move_to_end(key)
                return super().__getitem__(key)
            self[key] = default
            return default

    def get_many(self, keys: Iterable[K], load: Callable[[list[K]], Mapping[K, V]]) -> dict[K, V]:
        """Each key's value: the cached ones, the others from one ``load`` of them all (a
        store read giving a value for every key it is asked), each kept unless a newer value
        was stored meanwhile (``setdefault``: a publish after commit wins over the read)."""
        found: dict[K, V] = {}
        missing: list[K] = []
        for key in dict.fromkeys(keys):
            with self._lock:
                if key in self:
                    self.move_to_end(key)
                    found[key] = super().__getitem__(key)
                    continue
            missing.append(key)
        if missing:
            loaded = load(missing)
            for key in missing:
                found[key] = self.setdefault(key, loaded[key])
        return found

    def update(self, *args: Any, **kwargs: Any) -> None:
        with self._lock:
            entries: Iterable[tuple[K, V]] = dict(*args, **kwargs).items()
            for key, value in entries:
                self[key] = value

    def pop(self, key: K, *default: Any) -> Any:
        with self._lock:
            return super().pop(key, *default)

    def clear(self) -> None:
        with self._lock:
            super().clear()
