"""Identity links on PostgreSQL: ``identities`` (identifier -> profile id)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from loopwise.storage.postgres.base import Table, first_column


class PostgresIdentityStore(Table):
    def resolve(self, identifiers: Iterable[str]) -> dict[str, str]:
        rows = self._all(
            "SELECT identifier, profile_id FROM identities WHERE identifier = ANY(%b)",
            [list(identifiers)],
        )
        return {identifier: pid for identifier, pid in rows}

    def members(self, profile_ids: Iterable[str]) -> dict[str, set[str]]:
        rows = self._all(
            "SELECT profile_id, identifier FROM identities WHERE profile_id = ANY(%b)",
            [list(profile_ids)],
        )
        found: dict[str, set[str]] = {}
        for pid, identifier in rows:
            found.setdefault(pid, set()).add(identifier)
        return found

    def count(self) -> int:
        return int(self._one("SELECT count(*) FROM identities"))

    def iter(self) -> Iterator[tuple[str, str]]:
        rows = self._paged(
            "SELECT identifier, profile_id FROM identities WHERE identifier > %s "
            "ORDER BY identifier LIMIT %s",
            [],
            first_column,
            first="SELECT identifier, profile_id FROM identities ORDER BY identifier LIMIT %s",
        )
        return ((identifier, pid) for identifier, pid in rows)

    def link(self, links: Mapping[str, str]) -> None:
        if not links:
            return
        self._exec(
            "INSERT INTO identities (identifier, profile_id) "
            "SELECT * FROM unnest(%b::text[], %b::text[]) "
            "ON CONFLICT (identifier) DO UPDATE SET profile_id = excluded.profile_id",
            [list(links), list(links.values())],
        )

    def delete_profile(self, profile_id: str) -> int:
        return self._exec("DELETE FROM identities WHERE profile_id = %s", [profile_id])
