"""The catalog service: the items decide and the reducer read, kept in memory copy-on-write.

Requests in flight keep the catalog they started with (a new dict is swapped in per change;
caches key on the object). A change made by another process (``loopwise import items`` beside a
running server) moves the stored ``catalog`` revision; :meth:`refresh` then reloads the items.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from loopwise.catalog.importer import read_items
from loopwise.catalog.items import Item
from loopwise.errors import ValidationFailed
from loopwise.storage.stores import Storage, UnitOfWork

CATALOG_REVISION = "catalog"

log = logging.getLogger(__name__)


class CatalogService:
    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._lock = threading.Lock()
        self.listeners: list[Callable[[Mapping[str, Item]], None]] = []
        self._revision = storage.config.revisions().get(CATALOG_REVISION, 0)
        self._items = self._load()

    def _load(self) -> dict[str, Item]:
        items: dict[str, Item] = {}
        for record in self._storage.catalog.all():
            try:
                item = Item.from_record(record)
            except (ValidationFailed, KeyError, TypeError, ValueError) as exc:
                log.warning("catalog item %r skipped: it is damaged (%s)", record.get("id"), exc)
                continue
            items[item.id] = item
        for damaged in self._storage.catalog.damaged():
            log.warning("catalog item %r skipped: %s", damaged.key, damaged.problem)
        return items

    @property
    def items(self) -> Mapping[str, Item]:
        return self._items

    def _swap(self, items: dict[str, Item]) -> None:
        self._items = items
        for listener in self.listeners:
            listener(items)

    def put(self, items: list[Item]) -> int:
        records = [item.to_record() for item in items]
        with self._lock:

            def job(uow: UnitOfWork) -> None:
                uow.catalog.upsert(records)
                self._revision = uow.config.bump(CATALOG_REVISION)

            self._storage.write(job)
            catalog = dict(self._items)
            catalog.update((item.id, item) for item in items)
            self._swap(catalog)
        return len(items)

    def delete(self, item_ids: list[str]) -> int:
        with self._lock:
            deleted: list[int] = []

            def job(uow: UnitOfWork) -> None:
                deleted.append(uow.catalog.delete(item_ids))
                self._revision = uow.config.bump(CATALOG_REVISION)

            self._storage.write(job)
            gone = set(item_ids)
            self._swap({k: v for k, v in self._items.items() if k not in gone})
        return deleted[0]

    def get(self, item_id: str) -> Item | None:
        return self._items.get(item_id)

    def page(self, offset: int, limit: int) -> tuple[list[Item], int]:
        ordered = sorted(self._items)
        return [self._items[i] for i in ordered[offset : offset + limit]], len(ordered)

    def import_initial(self, path: Path) -> None:
        """The workspace's catalog file, imported once into an empty catalog."""
        if not self._items:
            self.put(list(read_items(path)))

    def refresh(self, revisions: Mapping[str, int]) -> bool:
        """Reload the items when another process changed them."""
        revision = revisions.get(CATALOG_REVISION, 0)
        with self._lock:
            if revision == self._revision:
                return False
            self._revision = revision
            self._swap(self._load())
        return True
