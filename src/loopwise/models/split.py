"""Per-user temporal splits for offline evaluation.

For each user with at least ``min_interactions`` interactions, the last ``test_fraction`` of their
interactions by time — ``max(1, floor(n · test_fraction))`` of them — are the test set; everything
before is training. Users with fewer interactions are *skipped*: none of their interactions is
tested, all of them train. Ties in time keep input order (the sort is stable), so a split is
deterministic.

At evaluation, each user's training items are excluded from the ranking and the relevant items
are the test items the user did not already have in training (:func:`relevant_items`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from loopwise.models.interactions import Interaction


@dataclass(frozen=True, slots=True)
class Split:
    """``train`` and ``test`` interactions (input order kept); ``test_users`` contributed to
    ``test``; ``skipped_users`` had fewer than ``min_interactions``."""

    train: list[Interaction]
    test: list[Interaction]
    test_users: int
    skipped_users: int

    def stats(self) -> dict[str, int]:
        return {
            "users": self.test_users,
            "train": len(self.train),
            "test": len(self.test),
            "skipped_users": self.skipped_users,
        }


def temporal_split(
    interactions: Iterable[Interaction], test_fraction: float = 0.2, min_interactions: int = 5
) -> Split:
    """Split each user's history at their own point in time (see the module docstring)."""
    if not 0 < test_fraction < 1:
        raise ValueError("test_fraction must be between 0 and 1")
    rows = list(interactions)
    by_user: dict[str, list[int]] = defaultdict(list)
    for pos, it in enumerate(rows):
        by_user[it.user].append(pos)
    is_test = [False] * len(rows)
    test_users = skipped = 0
    for positions in by_user.values():
        if len(positions) < min_interactions:
            skipped += 1
            continue
        test_users += 1
        ordered = sorted(positions, key=lambda p: rows[p].timestamp)
        n_test = max(1, int(len(positions) * test_fraction))
        for pos in ordered[-n_test:]:
            is_test[pos] = True
    train = [it for it, t in zip(rows, is_test, strict=True) if not t]
    test = [it for it, t in zip(rows, is_test, strict=True) if t]
    return Split(train, test, test_users, skipped)


def validation_split(
    train: Sequence[Interaction], test_fraction: float = 0.2, min_interactions: int = 5
) -> Split:
    """A validation split carved from ``train`` by the same rule (for tuning; the test set is
    never looked at)."""
    return temporal_split(train, test_fraction, min_interactions)


def relevant_items(split: Split) -> dict[str, set[str]]:
    """Per test user, the test items not already in that user's training interactions. Users
    whose test items were all seen in training map to an empty set (nothing to evaluate)."""
    seen: dict[str, set[str]] = defaultdict(set)
    for it in split.train:
        seen[it.user].add(it.item)
    out: dict[str, set[str]] = {}
    for it in split.test:
        bucket = out.setdefault(it.user, set())
        if it.item not in seen[it.user]:
            bucket.add(it.item)
    return out
