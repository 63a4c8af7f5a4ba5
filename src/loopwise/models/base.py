"""The recommender interface, in the spirit of ``implicit``'s ``RecommenderBase``.

A recommender is fitted on an :class:`~loopwise.models.interactions.InteractionMatrix` (users x
items) and then scores *rows*: a user is described by their item row (1 x items, the same columns
as the training matrix), not by a training user id. That is how real time works — at decide time
the engine folds the user's recent interactions into the model (ALS recomputes the user factors
from their items, EASE multiplies the row by its item-item matrix, item-kNN sums the neighbours of
the recent items), so users who arrived after training, or whose history changed since, are
scored without retraining.

Scores are ``float32``, higher is better. Items a model cannot score (e.g. pruned by EASE) get
``-inf``; they sort last and are never recommended.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from typing import Protocol, runtime_checkable

import numpy as np
from scipy.sparse import csr_matrix
from threadpoolctl import ThreadpoolController

from loopwise.catalog.items import Item
from loopwise.models.interactions import InteractionMatrix


@runtime_checkable
class Recommender(Protocol):
    """What every model offers. ``n_items`` is the number of columns it was fitted on."""

    name: str

    def fit(self, matrix: InteractionMatrix, items: Mapping[str, Item] | None = None) -> None:
        """Learn from ``matrix`` (users x items); ``items`` is the catalog by item id (used by
        content models, ignored by the others)."""
        ...

    def score_users(self, user_items: csr_matrix) -> np.ndarray:
        """Scores for a batch of users given their item rows.

        Parameters
        ----------
        user_items : csr_matrix, shape (n_users, n_items)
            Each row a user's (weighted) interactions; users need not be in the training data.

        Returns
        -------
        ndarray of float32, shape (n_users, n_items)
        """
        ...

    def score_user(
        self, user_items: csr_matrix, candidates: np.ndarray | None = None
    ) -> np.ndarray:
        """Scores for one user (``user_items`` is 1 x n_items): shape (n_items,), or
        (len(candidates),) in the order of ``candidates`` (item indices) when given."""
        ...

    def recommend(
        self, user_items: csr_matrix, n: int = 10, exclude: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """Top ``n`` ``(item_index, score)`` for one user, best first, never an item in
        ``exclude`` (item indices) nor one the model cannot score."""
        ...

    def similar_items(self, item_index: int, n: int = 10) -> list[tuple[int, float]]:
        """Top ``n`` ``(item_index, score)`` most similar to ``item_index`` (itself excluded)."""
        ...


@cache
def _threadpools() -> ThreadpoolController:
    # scanning the loaded libraries costs ~1 ms; do it once (BLAS is loaded with numpy) so the
    # limit is cheap on the per-decision scoring path
    return ThreadpoolController()


@contextmanager
def single_blas_thread() -> Iterator[None]:
    """Limit BLAS to one thread: ``implicit`` parallelises itself, and a threaded OpenBLAS under
    it oversubscribes the CPU (and makes ``implicit`` warn)."""
    with _threadpools().limit(limits=1, user_api="blas"):
        yield


def check_rows(user_items: csr_matrix, n_items: int) -> csr_matrix:
    """``user_items`` as float32 CSR with ``n_items`` columns, or ValueError."""
    if type(user_items) is csr_matrix and user_items.dtype == np.float32:
        rows = user_items  # already so: wrapping it again costs ~20 us a call, per component
    else:
        rows = csr_matrix(user_items, dtype=np.float32)
    if rows.shape[1] != n_items:
        raise ValueError(
            f"user_items has {rows.shape[1]} columns but the model was fitted on {n_items} items; "
            "build rows with the training InteractionMatrix (rows_for)"
        )
    return rows


def spans(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """``concatenate([arange(a, b) for a, b in zip(starts, ends)])`` without the loop."""
    lengths = ends - starts
    total = int(lengths.sum())
    offsets = np.cumsum(lengths) - lengths
    return np.repeat(starts - offsets, lengths) + np.arange(total)


def products(rows: csr_matrix, matrix: csr_matrix) -> np.ndarray:
    """``(rows @ matrix).toarray()`` as float32. One row (the decide path) is summed in numpy
    from the matrix rows its items select: scipy's sparse product costs ~0.1 ms of overhead
    per call there, more than its arithmetic."""
    if rows.shape[0] != 1:
        return np.asarray((rows @ matrix).toarray(), dtype=np.float32)
    starts, ends = matrix.indptr[rows.indices], matrix.indptr[rows.indices + 1]
    at = spans(starts, ends)
    weights = np.repeat(rows.data, ends - starts)
    summed = np.bincount(matrix.indices[at], matrix.data[at] * weights, minlength=matrix.shape[1])
    return summed.astype(np.float32)[None, :]


def top_n(scores: np.ndarray, n: int, exclude: np.ndarray | None = None) -> list[tuple[int, float]]:
    """Best ``n`` ``(index, score)`` of a 1-D score array, skipping ``exclude`` and ``-inf``
    (and NaN). Ties break by lower index."""
    values = np.asarray(scores, dtype=np.float64).copy()
    values[~np.isfinite(values)] = -np.inf
    if exclude is not None and len(exclude):
        values[np.asarray(exclude, dtype=np.int64)] = -np.inf
    n = min(n, int(np.isfinite(values).sum()))
    if n <= 0:
        return []
    # sort only the candidates: every value at least the n-th largest (ties included), which
    # holds the same first n as sorting them all
    threshold = np.partition(values, values.size - n)[values.size - n]
    candidates = np.flatnonzero(values >= threshold)
    order = candidates[np.lexsort((candidates, -values[candidates]))[:n]]
    return [(int(i), float(values[i])) for i in order]


def top_k_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """Row-wise top ``k`` column indices, best first.

    Parameters
    ----------
    scores : ndarray, shape (n_users, n_items)
    k : int

    Returns
    -------
    ndarray of int64, shape (n_users, min(k, n_items))
    """
    k = min(k, scores.shape[1])
    if k <= 0:
        return np.zeros((scores.shape[0], 0), dtype=np.int64)
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1).astype(np.int64)


class BaseRecommender(ABC):
    """Shared plumbing: subclasses implement :meth:`fit`, :meth:`score_users` and
    :meth:`similar_items` and set ``n_items`` in ``fit``."""

    name: str = "base"
    n_items: int = 0

    @abstractmethod
    def fit(self, matrix: InteractionMatrix, items: Mapping[str, Item] | None = None) -> None: ...

    @abstractmethod
    def score_users(self, user_items: csr_matrix) -> np.ndarray: ...

    @abstractmethod
    def similar_items(self, item_index: int, n: int = 10) -> list[tuple[int, float]]: ...

    def score_user(
        self, user_items: csr_matrix, candidates: np.ndarray | None = None
    ) -> np.ndarray:
        rows = check_rows(user_items, self.n_items)
        if rows.shape[0] != 1:
            raise ValueError(f"score_user takes one row, got {rows.shape[0]}; use score_users")
        scores = self.score_users(rows)[0]
        return scores if candidates is None else scores[np.asarray(candidates, dtype=np.int64)]

    def recommend(
        self, user_items: csr_matrix, n: int = 10, exclude: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        return top_n(self.score_user(user_items), n, exclude)

    def _similar_from(self, scores: np.ndarray, item_index: int, n: int) -> list[tuple[int, float]]:
        return top_n(scores, n, np.asarray([item_index]))

    def _require_fitted(self, fitted: object) -> None:
        if fitted is None:
            raise RuntimeError(f"{self.name}: call fit() first")
