"""EASE (Steck 2019, "Embarrassingly Shallow Autoencoders for Sparse Data").

Closed form: ``P = (XᵀX + λI)⁻¹`` and ``B = I - P · diagMat(1 / diag(P))``, i.e.
``B[i, j] = -P[i, j] / P[j, j]`` off the diagonal and ``0`` on it. A user's scores are
``row @ B``: folding a new user in is one sparse-dense product.

Time and memory are bounded by item pruning: ``B`` is dense and the inverse cubic in items, so
only the ``max_items`` most popular items (by number of users) are modelled — about
``2 · max_items² · 4`` bytes while fitting. The default, 2,000, fits in about a second on one
core (an inverse of 2,000 x 2,000 float32; 3,000 take ~4 s, 10,000 items 20 s and more), which
keeps the hybrid's fit within its budget at 10,000 items; the long tail beyond it is served by
the hybrid's item-kNN and session transitions, which are sparse. Raise ``max_items`` for a full
EASE (the benchmark's tuned EASE baseline models every item). Pruned items score ``-inf`` and
are never recommended; they remain visible to the other models (and to a hybrid).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import scipy.linalg
from scipy.sparse import csr_matrix

from loopwise.catalog.items import Item
from loopwise.models.base import BaseRecommender, check_rows, single_blas_thread
from loopwise.models.interactions import InteractionMatrix


class EASEModel(BaseRecommender):
    """EASE over the weighted matrix (``binary=True`` uses 0/1 instead).

    Attributes after ``fit``: ``kept`` (int64, shape (m,)): the modelled item indices (the
    ``max_items`` most popular, in index order); ``weights`` (float32, shape (m, m)):
    ``B`` over those items.
    """

    name = "ease"

    def __init__(self, l2: float = 1000.0, max_items: int = 2_000, binary: bool = False) -> None:
        if max_items < 1:
            raise ValueError("max_items must be at least 1")
        self.l2 = l2
        self.max_items = max_items
        self.binary = binary
        self.kept: np.ndarray | None = None
        self.weights: np.ndarray | None = None
        self._all_kept = False

    def fit(self, matrix: InteractionMatrix, items: Mapping[str, Item] | None = None) -> None:
        x = csr_matrix(matrix.matrix, dtype=np.float32)
        if self.binary:
            x.data[:] = 1.0
        popularity = np.diff(x.tocsc().indptr)
        order = np.argsort(-popularity, kind="stable")
        kept = np.sort(order[: self.max_items])
        sub = x[:, kept]
        gram = (sub.T @ sub).toarray().astype(np.float32)
        gram[np.diag_indices_from(gram)] += self.l2
        with single_blas_thread():
            p = scipy.linalg.inv(gram, overwrite_a=True, check_finite=False)
        del gram
        p /= -np.diag(p)[None, :]
        np.fill_diagonal(p, 0.0)
        # C order: scipy's sparse @ dense copies a Fortran-ordered operand (inv returns one) on
        # every call, 4 MB per product for 1,000 items
        self.kept = kept.astype(np.int64)
        self.weights = np.ascontiguousarray(p, dtype=np.float32)
        self._all_kept = kept.size == x.shape[1]
        self.n_items = x.shape[1]

    def score_users(self, user_items: csr_matrix) -> np.ndarray:
        self._require_fitted(self.weights)
        assert self.kept is not None and self.weights is not None
        rows = check_rows(user_items, self.n_items)
        if self.binary:
            rows = rows.copy()
            rows.data[:] = 1.0
        if self._all_kept:  # nothing pruned: skip the column gather and scatter
            return np.asarray(rows @ self.weights, dtype=np.float32)
        out = np.full((rows.shape[0], self.n_items), -np.inf, dtype=np.float32)
        out[:, self.kept] = np.asarray(rows[:, self.kept] @ self.weights, dtype=np.float32)
        return out

    def similar_items(self, item_index: int, n: int = 10) -> list[tuple[int, float]]:
        """Items by their EASE weight from ``item_index`` (``B[item, :]``); empty when the item
        was pruned."""
        self._require_fitted(self.weights)
        assert self.kept is not None and self.weights is not None
        pos = np.searchsorted(self.kept, item_index)
        if pos >= self.kept.size or self.kept[pos] != item_index:
            return []
        scores = np.full(self.n_items, -np.inf, dtype=np.float32)
        scores[self.kept] = self.weights[pos]
        return self._similar_from(scores, item_index, n)
