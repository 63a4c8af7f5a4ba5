"""Evaluate a candidate policy on a logged data set: support check, reward model, estimates.

``evaluate(data, pi_full)`` takes the candidate's probability of every action in every logged
round (in that round's position) and returns the report: IPW, SNIPW and DR with bootstrap
intervals, the logs' own (on-policy) reward rate, the effective sample size, and what the reward
model was. A candidate that puts probability on actions the logging policy could not have shown
(zero support) cannot be estimated from these logs and is refused with :class:`NotEstimable`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from loopwise.errors import LoopwiseError
from loopwise.ope.data import LoggedData
from loopwise.ope.estimators import (
    DEFAULT_ALPHA,
    DEFAULT_BOOTSTRAP,
    Rounds,
    effective_sample_size,
    estimate_all,
)
from loopwise.ope.reward_model import fit_reward_model

SUPPORT_TOLERANCE = 1e-12
MAX_LISTED_ACTIONS = 10


class NotEstimable(LoopwiseError):
    """The candidate cannot be estimated from these logs (422)."""

    status: ClassVar[int] = 422
    slug: ClassVar[str] = "not-estimable"
    title: ClassVar[str] = "Policy cannot be estimated from the logs"


def check_support(data: LoggedData, pi_full: NDArray[np.float64]) -> None:
    """Refuse a candidate that picks actions the logging policy never shows there."""
    unsupported = (pi_full > SUPPORT_TOLERANCE) & ~data.supported()
    if not unsupported.any():
        return
    rounds = int(unsupported.any(axis=1).sum())
    mass = float((pi_full * unsupported).sum() / max(data.n_rounds, 1))
    actions = [data.action_names[int(a)] for a in np.flatnonzero(unsupported.any(axis=0))]
    listed = ", ".join(actions[:MAX_LISTED_ACTIONS]) + (" ..." if len(actions) > 10 else "")
    raise NotEstimable(
        f"The candidate policy picks actions the logging policy never showed there (zero "
        f"support): {listed} — in {rounds} of {data.n_rounds} logged rounds, "
        f"{mass:.1%} of its probability. No estimator can say how they would do; log them "
        "first (explore them, e.g. with a bandit's exploration floor) or evaluate a policy "
        "that stays within what was shown.",
        field="policy",
        unsupported_actions=actions,
        unsupported_rounds=rounds,
    )


def evaluate(
    data: LoggedData,
    pi_full: NDArray[np.float64],
    *,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    alpha: float = DEFAULT_ALPHA,
    seed: int = 12345,
) -> dict[str, Any]:
    if data.n_rounds == 0:
        raise NotEstimable(
            "No logged rounds to estimate from: widen --from/--to or pick the slot that was "
            "decided.",
            field="from",
        )
    if pi_full.shape != (data.n_rounds, data.n_actions):
        raise ValueError(f"pi_full has shape {pi_full.shape}, want {data.n_rounds, data.n_actions}")
    check_support(data, pi_full)
    rows = np.arange(data.n_rounds)
    model = fit_reward_model(data, seed=seed)
    rounds = Rounds(
        reward=data.reward.astype(np.float64),
        pscore=data.pscore.astype(np.float64),
        pi=pi_full[rows, data.action],
        q_logged=model.q[rows, data.action],
        q_expected=(pi_full * model.q).sum(axis=1),
    )
    estimates = estimate_all(rounds, n_bootstrap=n_bootstrap, alpha=alpha, seed=seed)
    return {
        "rounds": data.n_rounds,
        "actions": data.n_actions,
        "positions": data.len_list,
        "logged_reward_rate": float(data.reward.mean()),
        "effective_sample_size": effective_sample_size(rounds),
        "reward_model": model.describe(),
        "bootstrap": {"samples": n_bootstrap, "confidence": 1.0 - alpha, "seed": seed},
        "estimates": {name: estimate.to_dict() for name, estimate in estimates.items()},
    }
