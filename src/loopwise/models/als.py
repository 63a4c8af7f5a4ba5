"""Matrix factorisation with ``implicit``: ALS (Hu, Koren & Volinsky 2008) and BPR (Rendle 2009).

Users are always scored by folding their item row into the model, so a user who was not in the
training data (or whose history grew since) is scored without retraining.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
from scipy.sparse import csr_matrix

from loopwise.catalog.items import Item
from loopwise.models.base import BaseRecommender, check_rows, single_blas_thread
from loopwise.models.interactions import InteractionMatrix

if TYPE_CHECKING:  # implicit costs about a second to import: only training and loading need it
    from implicit.cpu.als import AlternatingLeastSquares


def _cosine_neighbours(factors: np.ndarray, item_index: int) -> np.ndarray:
    """Cosine similarity of every item to ``item_index``; ``factors`` is (n_items, n_factors)."""
    norms = np.linalg.norm(factors, axis=1)
    norms[norms == 0] = 1e-10
    return (factors @ factors[item_index]) / (norms * norms[item_index])


class ALSModel(BaseRecommender):
    """Implicit-feedback ALS (``implicit.cpu.als.AlternatingLeastSquares``).

    Confidence is ``1 + alpha * matrix`` (``implicit``'s convention). Fold-in: a user's factors
    are recomputed from their row with ``recalculate_user`` (the exact least-squares step of ALS
    against the fixed item factors), then scored against every item.

    Defaults (32 factors, regularization 5, alpha 10) were chosen on a *validation* split carved
    from the training part of the benchmark's simulated data (``benchmarks/bench_models.py``):
    ``implicit``'s own defaults (100 factors, regularization 0.01, alpha 1) overfit sparse logs
    of a dozen interactions per user; fewer factors, stronger regularization and a higher
    confidence scale rank better there and fit faster.
    """

    name = "als"

    def __init__(
        self,
        factors: int = 32,
        regularization: float = 5.0,
        iterations: int = 15,
        alpha: float = 10.0,
        seed: int = 0,
        num_threads: int = 0,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.iterations = iterations
        self.alpha = alpha
        self.seed = seed
        self.num_threads = num_threads
        self.model: AlternatingLeastSquares | None = None

    def fit(self, matrix: InteractionMatrix, items: Mapping[str, Item] | None = None) -> None:
        with single_blas_thread():
            from implicit.cpu.als import AlternatingLeastSquares

            model = AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=self.alpha,
                iterations=self.iterations,
                random_state=self.seed,
                num_threads=self.num_threads,
            )
            model.fit(matrix.matrix, show_progress=False)
        # fold-in solves one small (factors x factors) system per row: a thread pool costs more
        # than it saves (and its wake-up makes one-user latency spiky), so score on one thread
        model.num_threads = 1
        self.model = model
        self.n_items = matrix.matrix.shape[1]

    @property
    def item_factors(self) -> np.ndarray:
        """float32, shape (n_items, factors)."""
        self._require_fitted(self.model)
        assert self.model is not None
        return np.asarray(self.model.item_factors)

    def user_factors(self, user_items: csr_matrix) -> np.ndarray:
        """Folded-in factors, float32, shape (n_users, factors), for rows (n_users x n_items)."""
        self._require_fitted(self.model)
        assert self.model is not None
        rows = check_rows(user_items, self.n_items)
        with single_blas_thread():
            factors = self.model.recalculate_user(np.arange(rows.shape[0]), rows)
        return np.asarray(factors, dtype=np.float32)

    def score_users(self, user_items: csr_matrix) -> np.ndarray:
        return (self.user_factors(user_items) @ self.item_factors.T).astype(np.float32)

    def similar_items(self, item_index: int, n: int = 10) -> list[tuple[int, float]]:
        return self._similar_from(_cosine_neighbours(self.item_factors, item_index), item_index, n)


class BPRModel(BaseRecommender):
    """Bayesian Personalised Ranking (``implicit.cpu.bpr.BayesianPersonalizedRanking``).

    ``implicit`` cannot recompute BPR user factors, so fold-in represents a user by the
    interaction-weighted mean of their items' factors, ``x = Σ w_i q_i / Σ w_i`` (BPR puts a
    user's vector close to the vectors of the items they rank high); scores are ``Q x + b`` with
    ``b`` the learnt item biases, so an empty row ranks by bias alone. (A least-squares
    projection as in ALS was tried and ranks worse: with a handful of items it pushes every other
    item of the same taste towards the 0 target.) ``num_threads=1`` (default) makes a seeded fit
    reproducible; more threads train Hogwild-style, faster but not repeatable.
    """

    name = "bpr"

    def __init__(
        self,
        factors: int = 64,
        learning_rate: float = 0.05,
        regularization: float = 0.01,
        iterations: int = 100,
        seed: int = 0,
        num_threads: int = 1,
    ) -> None:
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.iterations = iterations
        self.seed = seed
        self.num_threads = num_threads
        self._q: np.ndarray | None = None  # (n_items, factors) float64
        self._bias: np.ndarray | None = None  # (n_items,) float64

    def fit(self, matrix: InteractionMatrix, items: Mapping[str, Item] | None = None) -> None:
        with single_blas_thread():
            from implicit.cpu.bpr import BayesianPersonalizedRanking

            model = BayesianPersonalizedRanking(
                factors=self.factors,
                learning_rate=self.learning_rate,
                regularization=self.regularization,
                iterations=self.iterations,
                random_state=self.seed,
                num_threads=self.num_threads,
            )
            model.fit(matrix.matrix, show_progress=False)
        # implicit stores [factors..., bias] per item and [factors..., 1] per user
        full = np.asarray(model.item_factors, dtype=np.float64)
        self._q, self._bias = full[:, :-1], full[:, -1]
        self.n_items = matrix.matrix.shape[1]

    def user_factors(self, user_items: csr_matrix) -> np.ndarray:
        """Folded-in factors, float64, shape (n_users, factors): weighted means of item factors
        (zeros for an empty row)."""
        self._require_fitted(self._q)
        assert self._q is not None
        rows = check_rows(user_items, self.n_items)
        totals = np.asarray(rows.sum(axis=1), dtype=np.float64)
        totals[totals == 0] = 1.0
        return np.asarray(rows @ self._q) / totals

    def score_users(self, user_items: csr_matrix) -> np.ndarray:
        factors = self.user_factors(user_items)
        assert self._q is not None and self._bias is not None
        return (factors @ self._q.T + self._bias).astype(np.float32)

    def similar_items(self, item_index: int, n: int = 10) -> list[tuple[int, float]]:
        self._require_fitted(self._q)
        assert self._q is not None
        return self._similar_from(_cosine_neighbours(self._q, item_index), item_index, n)
