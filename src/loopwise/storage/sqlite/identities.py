"""Identity links on SQLite: ``identities`` (identifier -> profile id)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from loopwise.storage.sqlite.base import Table


class SqliteIdentityStore(Table):
    def resolve(self, identifiers: Iterable[str]) -> dict[str, str]:
        rows = self._in(
            "SELECT identifier, profile_id FROM identities WHERE identifier IN ({})",
            list(identifiers),
        )
        return {str(identifier): str(pid) for identifier, pid in rows}

    def members(self, profile_ids: Iterable[str]) -> dict[str, set[str]]:
        rows = self._in(
            "SELECT profile_id, identifier FROM identities WHERE profile_id IN ({})",
            list(profile_ids),
        )
        found: dict[str, set[str]] = {}
        for pid, identifier in rows:
            found.setdefault(str(pid), set()).add(str(identifier))
        return found

    def count(self) -> int:
        return int(self._one("SELECT count(*) FROM identities"))

    def iter(self) -> Iterator[tuple[str, str]]:
        for identifier, pid in self._stream(
            "SELECT identifier, profile_id FROM identities ORDER BY identifier"
        ):
            yield str(identifier), str(pid)

    def link(self, links: Mapping[str, str]) -> None:
        self._many(
            "INSERT INTO identities (identifier, profile_id) VALUES (?, ?) "
            "ON CONFLICT (identifier) DO UPDATE SET profile_id = excluded.profile_id",
            list(links.items()),
        )

    def delete_profile(self, profile_id: str) -> int:
        return self._exec("DELETE FROM identities WHERE profile_id = ?", (profile_id,))
