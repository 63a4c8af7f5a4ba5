"""The reward model of doubly robust: scikit-learn's logistic regression of the reward on the
round's context features, the action (one-hot) and the position (one-hot).

The model is linear in one-hot blocks, so the predicted reward of every action in a round is the
round's context-and-position logit plus each action's weight: one matrix product gives the
(rounds x actions) predictions without building a row per action. Rewards are clicks or
conversions (0/1); a data set with a single reward value gets that constant.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import sparse

from loopwise.ope.data import LoggedData


@dataclass(frozen=True, slots=True)
class RewardModel:
    q: NDArray[np.float64]  # (n_rounds, n_actions): predicted reward in the round's position
    kind: str

    def describe(self) -> dict[str, object]:
        return {"kind": self.kind, "mean_prediction": float(self.q.mean()) if self.q.size else 0}


def _design(data: LoggedData, action: NDArray[np.int64]) -> sparse.csr_matrix:
    n = data.n_rounds
    rows = np.arange(n)
    one_action = sparse.csr_matrix((np.ones(n), (rows, action)), shape=(n, max(data.n_actions, 1)))
    one_position = sparse.csr_matrix(
        (np.ones(n), (rows, data.position)), shape=(n, max(data.len_list, 1))
    )
    return sparse.csr_matrix(sparse.hstack([data.features, one_position, one_action]))


def fit_reward_model(data: LoggedData, *, c: float = 1.0, seed: int = 12345) -> RewardModel:
    """Fit on the logged rounds; predict every action of every round (in its position)."""
    n, k = data.n_rounds, data.n_actions
    reward = (data.reward > 0).astype(int)
    if n == 0 or reward.min() == reward.max():
        constant = float(reward[0]) if n else 0.0
        return RewardModel(np.full((n, k), constant), "constant")
    from sklearn.linear_model import LogisticRegression  # imported on first use (start-up)

    model = LogisticRegression(C=c, max_iter=1000, random_state=seed)
    model.fit(_design(data, data.action), reward)
    coef = model.coef_.ravel()
    d = data.features.shape[1]
    w_context, w_position = coef[:d], coef[d : d + data.len_list]
    w_action = coef[d + data.len_list :]
    base = np.asarray(data.features @ w_context).ravel() + w_position[data.position]
    logits = base[:, None] + w_action[None, :] + float(model.intercept_[0])
    return RewardModel(1.0 / (1.0 + np.exp(-logits)), "logistic_regression")
