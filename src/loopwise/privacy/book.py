"""The engine's in-memory consent map (the hot path) over the durable ``consent`` table.

States are keyed by profile key: the canonical profile id when the person is known, else the id
a first event would give them (``profile_id_for(identifier)``). A person's state is the merge of
every key that belongs to them, so consent given while anonymous follows them once identified.
Writers stage new states inside a write job and publish them only after it succeeded; readers see
whole states swapped in, so a withdrawal applies to the very next request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from loopwise.privacy.consent import EMPTY, ConsentState, merge


class ConsentBook:
    def __init__(self, records: Iterable[tuple[str, Mapping]]) -> None:
        self._states: dict[str, ConsentState] = {
            key: ConsentState.from_record(record) for key, record in records
        }

    def __len__(self) -> int:
        return len(self._states)

    def state(
        self, keys: Iterable[str], staged: Mapping[str, ConsentState] | None = None
    ) -> ConsentState:
        """The merged state of ``keys`` (staged, unpublished states win over published ones)."""
        found = []
        for key in dict.fromkeys(keys):
            state = staged.get(key) if staged else None
            if state is None:
                state = self._states.get(key)
            if state is not None:
                found.append(state)
        if not found:
            return EMPTY
        return found[0] if len(found) == 1 else merge(found)

    def publish(self, states: Mapping[str, ConsentState]) -> None:
        self._states.update(states)

    def forget(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._states.pop(key, None)
