from __future__ import annotations

from loopwise.models.interactions import Interaction
from loopwise.models.split import relevant_items, temporal_split, validation_split


def _history(user: str, n: int, items: list[str] | None = None) -> list[Interaction]:
    # given newest first so the split must sort by time itself
    names = items or [f"{user}-i{t}" for t in range(n)]
    return [Interaction(user, names[t], float(t), "view") for t in reversed(range(n))]


def test_last_twenty_percent_at_least_one_and_short_users_skipped() -> None:
    data = _history("ten", 10) + _history("five", 5) + _history("seven", 7) + _history("four", 4)
    split = temporal_split(data)
    test_by_user: dict[str, list[float]] = {}
    for it in split.test:
        test_by_user.setdefault(it.user, []).append(it.timestamp)
    assert sorted(test_by_user["ten"]) == [8.0, 9.0]  # 20 % of 10, the newest
    assert test_by_user["five"] == [4.0]  # at least one
    assert test_by_user["seven"] == [6.0]  # floor(1.4) = 1
    assert "four" not in test_by_user
    # the short user still trains, whole
    assert sum(1 for it in split.train if it.user == "four") == 4
    assert split.stats() == {"users": 3, "train": 4 + 8 + 4 + 6, "test": 4, "skipped_users": 1}
    # every test interaction is newer than every training one of the same user
    for user, stamps in test_by_user.items():
        assert min(stamps) > max(it.timestamp for it in split.train if it.user == user)


def test_relevance_excludes_items_already_in_train() -> None:
    items = ["x", "y", "z", "w", "x"]  # the last (test) interaction repeats a training item
    split = temporal_split(_history("rep", 5, items) + _history("new", 5))
    rel = relevant_items(split)
    assert rel["rep"] == set()
    assert rel["new"] == {"new-i4"}


def test_validation_split_is_carved_from_train_only() -> None:
    split = temporal_split(_history("u", 10))
    val = validation_split(split.train)
    assert {it.timestamp for it in val.test} == {7.0}  # floor(8 * 0.2) = 1, newest of train
    assert len(val.train) == 7
    assert not {it.timestamp for it in val.train + val.test} & {it.timestamp for it in split.test}
