"""Identity links in memory: ``identities`` (identifier -> profile id), indexed by profile."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from loopwise.storage.memory.base import Store


class MemoryIdentityStore(Store):
    def resolve(self, identifiers: Iterable[str]) -> dict[str, str]:
        with self._db.read() as tables:
            rows = [(i, tables["identities"].get(i)) for i in dict.fromkeys(identifiers)]
        return {identifier: row[0] for identifier, row in rows if row is not None}

    def members(self, profile_ids: Iterable[str]) -> dict[str, set[str]]:
        with self._db.read() as tables:
            links = tables["identities"]
            found = {pid: links.keys_where("profile_id", pid) for pid in dict.fromkeys(profile_ids)}
        return {pid: {str(i) for i in keys} for pid, keys in found.items() if keys}

    def count(self) -> int:
        with self._db.read() as tables:
            return len(tables["identities"].rows)

    def iter(self) -> Iterator[tuple[str, str]]:
        with self._db.read() as tables:
            rows = sorted(tables["identities"].rows.items())
        return ((identifier, row[0]) for identifier, row in rows)

    def link(self, links: Mapping[str, str]) -> None:
        for identifier, profile_id in links.items():
            self._db.put("identities", identifier, (profile_id,))

    def delete_profile(self, profile_id: str) -> int:
        with self._db.read() as tables:
            linked = tables["identities"].keys_where("profile_id", profile_id)
        for identifier in linked:
            self._db.pop("identities", identifier)
        return len(linked)
