"""Most-popular baseline: every user gets the same ranking."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy.sparse import csr_matrix

from loopwise.catalog.items import Item
from loopwise.models.base import BaseRecommender, check_rows
from loopwise.models.interactions import InteractionMatrix


class PopularityModel(BaseRecommender):
    """Scores each item by how many distinct users interacted with it (heavy users count once),
    with the summed weight as a small tie-breaker. Users' rows are ignored: it is the cold-start
    fallback and the baseline every model must beat."""

    name = "popularity"
    ignores_rows = True

    def __init__(self) -> None:
        self.scores: np.ndarray | None = None  # float32, shape (n_items,)

    def fit(self, matrix: InteractionMatrix, items: Mapping[str, Item] | None = None) -> None:
        x = matrix.matrix
        users = np.diff(x.tocsc().indptr).astype(np.float64)
        weight = np.asarray(x.sum(axis=0), dtype=np.float64).ravel()
        tie = weight / (1.0 + weight.max()) if weight.size else weight
        self.scores = (users + tie).astype(np.float32)
        self.n_items = x.shape[1]

    def score_users(self, user_items: csr_matrix) -> np.ndarray:
        self._require_fitted(self.scores)
        assert self.scores is not None
        rows = check_rows(user_items, self.n_items)
        return np.broadcast_to(self.scores, (rows.shape[0], self.n_items)).copy()

    def similar_items(self, item_index: int, n: int = 10) -> list[tuple[int, float]]:
        """Most popular other items (popularity has no notion of similarity)."""
        self._require_fitted(self.scores)
        assert self.scores is not None
        return self._similar_from(self.scores, item_index, n)
