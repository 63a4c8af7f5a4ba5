"""Tests of the predict stage. ``planted`` builds the synthetic data most tests share."""

from __future__ import annotations

import numpy as np

from loopwise.catalog.items import Item
from loopwise.models.interactions import Interaction

BLOCK_A = [f"a{i}" for i in range(15)]
BLOCK_B = [f"b{i}" for i in range(15)]
WORDS = {"a": "jazz saxophone trumpet swing", "b": "metal guitar distortion drums"}


def planted(
    users_a: int = 16,
    users_b: int = 24,
    per_user: int = 8,
    seed: int = 0,
    skew: float = 0.0,
    cold: int = 0,
) -> list[Interaction]:
    """Two user groups, each interacting only with its own item block, in time order. Group B is
    larger, so popularity favours block B. With ``skew`` > 0 the items of a block are chosen
    with probability ∝ 1 / (rank + 1) ** skew, so popularity *within* the block matters too. With
    ``cold`` > 0 every other user ends with three new releases of their block, from
    ``new-a0``..., then ``new-a0b``..., then ``new-a0c``... (``cold`` of each). Each new item
    occurs at one position only, so it is cold in the split that tests it (the last interaction
    in the test split, the one before in the validation split): only its catalog text ("new
    release") can predict it."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, len(BLOCK_A) + 1) ** skew
    probs = weights / weights.sum()
    out: list[Interaction] = []
    for group, count, block in (("a", users_a, BLOCK_A), ("b", users_b, BLOCK_B)):
        for u in range(count):
            chosen = rng.choice(len(block), size=per_user, replace=False, p=probs)
            for t, i in enumerate(chosen):
                out.append(Interaction(f"{group}-user{u}", block[i], 1_000.0 * t + u, "view", 1.0))
            if cold and u % 2:
                for step, suffix in ((1, ""), (2, "b"), (3, "c")):
                    new = f"new-{group}{rng.integers(cold)}{suffix}"
                    out.append(Interaction(f"{group}-user{u}", new, step * 1e6 + u, "view", 1.0))
    return out


def new_items(cold: int) -> tuple[str, ...]:
    """The ids ``planted(cold=cold)`` may use for new items."""
    return tuple(f"new-{g}{j}{s}" for g in "ab" for j in range(cold) for s in ("", "b", "c"))


def catalog(extra: tuple[str, ...] = ()) -> dict[str, Item]:
    """Items with text in their block's vocabulary (``new-a1`` is in block A), plus ``extra``."""
    items = {}
    for item_id in [*BLOCK_A, *BLOCK_B, *extra]:
        words = WORDS[item_id.removeprefix("new-")[0]]
        if item_id.startswith("new-"):
            words += " new release limited edition"
        items[item_id] = Item(id=item_id, title=f"{words.split()[0]} record", text=words)
    return items
