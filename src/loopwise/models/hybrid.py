"""A weighted blend of recommenders, tuned on a validation split.

Each component's scores are normalised per user — min-max to [0, 1] or percentile rank — so
scales do not matter, then summed with the component weights. Rows where a component has no
opinion (all scores equal, e.g. ALS or EASE for a user with no history, content for items without
text) contribute 0, so popularity carries cold-start users and content carries new items.

Weights come from a coordinate search on a validation split carved from the training data (never
from the test set): start from the best single component (weight 1, others 0), then, for a few
passes, try each grid value for each component and keep it when validation nDCG@k improves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
from scipy.sparse import csr_matrix

from loopwise.catalog.items import Item
from loopwise.models.base import BaseRecommender, Recommender, check_rows, top_k_indices
from loopwise.models.interactions import InteractionMatrix
from loopwise.models.metrics import hit_matrix, ndcg_batch

Normalisation = Literal["minmax", "rank"]
DEFAULT_GRID: tuple[float, ...] = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0)


def normalise_scores(scores: np.ndarray, how: Normalisation = "minmax") -> np.ndarray:
    """Per-row normalisation of scores (n_users, n_items) to [0, 1], float32; non-finite scores
    map to 0, rows with a single distinct finite value to all 0."""
    s = np.asarray(scores, dtype=np.float64)
    finite = np.isfinite(s)
    low = np.where(finite, s, np.inf).min(axis=1, keepdims=True)
    high = np.where(finite, s, -np.inf).max(axis=1, keepdims=True)
    flat = ~(high > low)  # includes rows without any finite score
    if how == "minmax":
        span = np.where(flat, 1.0, high - low)
        out = (np.where(finite, s, low) - np.where(flat, 0.0, low)) / span
    elif how == "rank":
        from scipy.stats import rankdata  # imported on first use: ~0.7 s at start-up

        ranks = rankdata(np.where(finite, s, -np.inf), axis=1, method="average")
        out = (ranks - 1.0) / max(s.shape[1] - 1, 1)
        out = np.where(finite, out, 0.0)
    else:
        raise ValueError(f"normalisation must be 'minmax' or 'rank', not {how!r}")
    out = np.where(flat | ~finite, 0.0, out)
    return out.astype(np.float32)


class HybridModel(BaseRecommender):
    """Blend of ``components`` (name → recommender).

    ``weights`` is a name → weight mapping, or ``"tune"``: call :meth:`tune` with a validation
    split before :meth:`fit` (a hybrid fitted untuned uses equal weights; ``tuned`` says which).
    """

    name = "hybrid"

    def __init__(
        self,
        components: Mapping[str, Recommender],
        weights: Mapping[str, float] | Literal["tune"] = "tune",
        normalisation: Normalisation = "minmax",
        grid: Sequence[float] = DEFAULT_GRID,
        k: int = 10,
        passes: int = 2,
        max_tune_users: int = 2_000,
        seed: int = 0,
    ) -> None:
        if not components:
            raise ValueError("a hybrid needs at least one component")
        self.components = dict(components)
        if weights == "tune":
            self.weights = {name: 1.0 for name in self.components}
            self.tuned = False
        else:
            unknown = set(weights) - set(self.components)
            if unknown:
                raise ValueError(f"weights for unknown components: {sorted(unknown)}")
            self.weights = {name: float(weights.get(name, 0.0)) for name in self.components}
            self.tuned = True
        self.normalisation: Normalisation = normalisation
        self.grid = tuple(grid)
        self.k = k
        self.passes = passes
        self.max_tune_users = max_tune_users
        self.seed = seed
        self.validation_ndcg: float | None = None

    def fit(self, matrix: InteractionMatrix, items: Mapping[str, Item] | None = None) -> None:
        for component in self.components.values():
            component.fit(matrix, items)
        self.n_items = matrix.matrix.shape[1]

    def _normalised(self, rows: csr_matrix) -> dict[str, np.ndarray]:
        return {
            name: normalise_scores(component.score_users(rows), self.normalisation)
            for name, component in self.components.items()
            if self.weights.get(name, 0.0) != 0.0
        }

    @staticmethod
    def _blend(parts: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
        first = next(iter(parts.values()))
        out = np.zeros(first.shape, dtype=np.float32)
        for name, part in parts.items():
            w = weights.get(name, 0.0)
            if w:
                out += np.float32(w) * part
        return out

    def score_users(self, user_items: csr_matrix) -> np.ndarray:
        rows = check_rows(user_items, self.n_items)
        if not any(self.weights.values()):
            return np.zeros((rows.shape[0], self.n_items), dtype=np.float32)
        return self._blend(self._normalised(rows), self.weights)

    def similar_items(self, item_index: int, n: int = 10) -> list[tuple[int, float]]:
        """Items the blend recommends to a user whose only interaction is ``item_index``."""
        row = csr_matrix(
            (np.ones(1, dtype=np.float32), ([0], [item_index])), shape=(1, self.n_items)
        )
        return self._similar_from(self.score_users(row)[0], item_index, n)

    def tune(
        self,
        train: InteractionMatrix,
        validation: csr_matrix,
        items: Mapping[str, Item] | None = None,
    ) -> dict[str, float]:
        """Fit the components on ``train`` and choose weights maximising nDCG@k on
        ``validation`` (csr, shape of ``train.matrix``: non-zero where an item is relevant for a
        user; users without relevant items are ignored). Returns and keeps the weights; fit
        again on the full training data afterwards."""
        self.fit(train, items)
        relevant = csr_matrix(validation)
        if relevant.shape != train.matrix.shape:
            raise ValueError("validation must have the shape of the training matrix")
        users = np.flatnonzero(np.diff(relevant.indptr))
        if users.size > self.max_tune_users:
            rng = np.random.default_rng(self.seed)
            users = np.sort(rng.choice(users, self.max_tune_users, replace=False))
        if users.size == 0:
            self.tuned = False
            return dict(self.weights)
        rows = csr_matrix(train.matrix[users], dtype=np.float32)
        relevant = relevant[users]
        n_relevant = np.diff(relevant.indptr)
        seen = rows.toarray() > 0
        parts = {
            name: normalise_scores(component.score_users(rows), self.normalisation)
            for name, component in self.components.items()
        }

        def objective(weights: Mapping[str, float]) -> float:
            blended = self._blend(parts, weights)
            blended[seen] = -np.inf
            top = top_k_indices(blended, self.k)
            return float(ndcg_batch(hit_matrix(top, relevant), n_relevant, self.k).mean())

        singles = {name: objective({name: 1.0}) for name in parts}
        best_name = max(parts, key=lambda name: (singles[name], name == "popularity"))
        weights = {name: (1.0 if name == best_name else 0.0) for name in parts}
        best = singles[best_name]
        for _ in range(self.passes):
            improved = False
            for name in parts:
                for value in self.grid:
                    if value == weights[name]:
                        continue
                    trial = {**weights, name: value}
                    if not any(trial.values()):
                        continue
                    score = objective(trial)
                    if score > best + 1e-9:
                        best, weights, improved = score, trial, True
            if not improved:
                break
        self.weights, self.tuned, self.validation_ndcg = weights, True, best
        return dict(weights)
