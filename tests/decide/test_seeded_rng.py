"""A decision's rng is seeded on its first draw: the same numbers as ``random.Random(seed)``."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from loopwise.decide.service import SeededOnUse

DRAWS: list[Callable[[random.Random], Any]] = [
    lambda r: r.random(),
    lambda r: r.getrandbits(70),
    lambda r: r.choice(range(1000)),
    lambda r: r.sample(range(10_000), 7),
    lambda r: r.randrange(3, 99),
    lambda r: r.uniform(-1.0, 1.0),
    lambda r: r.gauss(0.0, 1.0),
    lambda r: (lambda xs: (r.shuffle(xs), xs)[1])(list(range(30))),
    lambda r: r.getstate(),
]


@pytest.mark.parametrize("seed", [0, 7, 2**63 + 11])
def test_seeded_on_use_draws_what_random_draws(seed: int) -> None:
    for first in DRAWS:  # whichever draw comes first, then all of them in turn
        lazy, eager = SeededOnUse(seed), random.Random(seed)
        assert first(lazy) == first(eager)
        assert [draw(lazy) for draw in DRAWS] == [draw(eager) for draw in DRAWS]


def test_seeding_again_or_setting_the_state_wins_over_the_pending_seed() -> None:
    lazy, eager = SeededOnUse(1), random.Random(1)
    lazy.seed(2)
    eager.seed(2)
    assert lazy.random() == eager.random()
    lazy = SeededOnUse(3)
    lazy.setstate(random.Random(4).getstate())
    assert lazy.random() == random.Random(4).random()
