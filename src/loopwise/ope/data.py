"""A logged bandit data set, whatever it was read from (the decision log, Open Bandit Dataset).

Round *i*: the logging policy showed action ``action[i]`` (a variant, an item) in position
``position[i]`` with propensity ``pscore[i]`` and got reward ``reward[i]`` (a click, a
conversion). ``features`` describe the round's context (for the reward model of doubly robust);
``logging_dist`` when known holds the logging policy's probability of every action in the round's
position (the bandit logs it), so support can be checked exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import sparse


@dataclass(frozen=True, slots=True)
class LoggedData:
    action: NDArray[np.int64]
    position: NDArray[np.int64]
    reward: NDArray[np.float64]
    pscore: NDArray[np.float64]
    action_names: Sequence[str]
    features: sparse.csr_matrix  # (n, d) context features, one-hot or numeric
    len_list: int = 1
    logging_dist: NDArray[np.float64] | None = None  # (n, n_actions), in the round's position
    source: dict[str, Any] = field(default_factory=dict)
    # extra per-round information a candidate may read (segments, context), by round
    contexts: Sequence[dict[str, Any]] = ()

    @property
    def n_rounds(self) -> int:
        return len(self.action)

    @property
    def n_actions(self) -> int:
        return len(self.action_names)

    def supported(self) -> NDArray[np.bool_]:
        """(n, n_actions): whether the logging policy could show each action in each round.
        From ``logging_dist`` when logged, else every action the log ever shows in that
        position (a policy that never showed an action there gives no evidence about it)."""
        n, k = self.n_rounds, self.n_actions
        if self.logging_dist is not None:
            return np.asarray(self.logging_dist > 0.0)
        seen = np.zeros((max(self.len_list, 1), k), dtype=bool)
        seen[self.position, self.action] = True
        return seen[self.position] if n else np.zeros((0, k), dtype=bool)
