"""The catalog on PostgreSQL: ``items`` (id -> ``Item.to_record()``)."""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from loopwise.storage.decoding import damaged_items, items
from loopwise.storage.postgres.base import Table, first_column
from loopwise.storage.records import Damaged, JsonDict


class PostgresCatalogStore(Table):
    def _rows(self) -> list[tuple[str, bytes]]:
        rows = self._paged(
            "SELECT id, record FROM items WHERE id > %s ORDER BY id LIMIT %s",
            [],
            first_column,
            first="SELECT id, record FROM items ORDER BY id LIMIT %s",
        )
        return [(item_id, bytes(blob)) for item_id, blob in rows]

    def all(self) -> list[JsonDict]:
        return items(self._rows())

    def damaged(self) -> list[Damaged]:
        return damaged_items(self._rows())

    def upsert(self, items: Sequence[JsonDict]) -> None:
        latest = {str(item["id"]): orjson.dumps(item) for item in items}  # the last copy wins
        if not latest:
            return
        self._exec(
            "INSERT INTO items (id, record) SELECT * FROM unnest(%b::text[], %b::bytea[]) "
            "ON CONFLICT (id) DO UPDATE SET record = excluded.record",
            [list(latest), list(latest.values())],
        )

    def delete(self, item_ids: Sequence[str]) -> int:
        return self._exec("DELETE FROM items WHERE id = ANY(%b)", [list(item_ids)])
