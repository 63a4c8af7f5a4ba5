"""Offline ranking metrics with binary relevance.

Every metric has a batch form over a *hit matrix* (what evaluation uses) and a form over id
lists; the per-user ranking metrics build a one-row hit matrix, so both share one
implementation.

- ``hits`` : bool array, shape (n_users, k); ``hits[u, r]`` is True when user ``u``'s item at
  rank ``r`` (0-based) is relevant.
- ``n_relevant`` : int array, shape (n_users,); how many relevant items each user has. Users with
  none must be left out by the caller (their recall is undefined).

Definitions (``rel_r`` = 1 if the item at 1-based rank ``r`` is relevant):

- precision@k = hits in top k / k (always ``k``, even when fewer items were recommended);
- recall@k = hits in top k / |relevant| (the standard denominator; a user with 30 relevant
  items cannot reach 1 at k = 10);
- nDCG@k = DCG / IDCG with DCG = Σ_{r≤k} rel_r / log2(r + 1) and IDCG the DCG of a perfect
  ranking of min(k, |relevant|) relevant items;
- AP@k = Σ_{r≤k} precision@r · rel_r / min(k, |relevant|) (the Kaggle / ``ml_metrics``
  normalisation, so a perfect top k scores 1); MAP@k is its mean over users;
- coverage@k = distinct items in all users' top k / catalog size;
- novelty = mean self-information ``-log2(p_i)`` over all recommended items, where ``p_i`` is the
  share of training users who interacted with item ``i`` (Zhou et al. 2010); items no training
  user touched count as one user, so the value stays finite;
- intra-list diversity@k = mean pairwise cosine distance between the items of a list, on the
  items' binarised user vectors (:func:`intra_list_diversity`).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Hashable, Mapping, Sequence

import numpy as np
from scipy.sparse import csr_matrix


def hit_matrix(top: np.ndarray, relevant: csr_matrix) -> np.ndarray:
    """Hits of ranked lists against a relevance matrix.

    Parameters
    ----------
    top : int array, shape (n_users, k); item indices, best first (``-1`` pads a short list)
    relevant : csr_matrix, shape (n_users, n_items); non-zero where relevant

    Returns
    -------
    bool array, shape (n_users, k)
    """
    top = np.asarray(top, dtype=np.int64)
    if top.size == 0:
        return np.zeros(top.shape, dtype=bool)
    rows = np.repeat(np.arange(top.shape[0]), top.shape[1])
    cols = np.maximum(top.ravel(), 0)
    values = np.asarray(csr_matrix(relevant)[rows, cols]).ravel()
    return (values != 0).reshape(top.shape) & (top >= 0)


def _k_hits(hits: np.ndarray, k: int) -> np.ndarray:
    if k <= 0:
        raise ValueError("k must be positive")
    return np.asarray(hits, dtype=bool)[:, :k]


def precision_batch(hits: np.ndarray, k: int) -> np.ndarray:
    """precision@k per user, shape (n_users,)."""
    return _k_hits(hits, k).sum(axis=1) / k


def recall_batch(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """recall@k per user, shape (n_users,)."""
    return _k_hits(hits, k).sum(axis=1) / np.asarray(n_relevant, dtype=np.float64)


def ndcg_batch(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """nDCG@k per user, shape (n_users,)."""
    h = _k_hits(hits, k)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (h * discounts[: h.shape[1]]).sum(axis=1)
    ideal_counts = np.minimum(np.asarray(n_relevant), k)
    idcg = np.concatenate([[0.0], np.cumsum(discounts)])[ideal_counts]
    return dcg / idcg


def ap_batch(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """AP@k per user, shape (n_users,)."""
    h = _k_hits(hits, k).astype(np.float64)
    precision_at_r = np.cumsum(h, axis=1) / np.arange(1, h.shape[1] + 1)
    return (precision_at_r * h).sum(axis=1) / np.minimum(np.asarray(n_relevant), k)


def coverage(top: np.ndarray, n_catalog: int) -> float:
    """Distinct items in ``top`` (int array (n_users, k), ``-1`` = padding) / ``n_catalog``."""
    items = np.unique(top[top >= 0])
    return float(items.size / n_catalog) if n_catalog else 0.0


def novelty_batch(top: np.ndarray, item_users: np.ndarray, n_users: int) -> float:
    """Mean ``-log2(max(item_users[i], 1) / n_users)`` over the recommended items in ``top``
    (int array (n_users, k), ``-1`` = padding); ``item_users`` (n_items,) counts training users
    per item."""
    items = top[top >= 0]
    if items.size == 0 or n_users <= 0:
        return 0.0
    share = np.maximum(np.asarray(item_users, dtype=np.float64)[items], 1.0) / n_users
    return float(np.mean(-np.log2(share)))


def item_vectors(matrix: csr_matrix) -> csr_matrix:
    """L2-normalised item vectors (n_items x n_users, CSR) of a users x items matrix, binarised:
    two items are similar when the same users interacted with both (the behavioural distance
    :func:`intra_list_diversity` uses, independent of any model)."""
    x = csr_matrix(matrix, dtype=np.float32).T.tocsr()
    x.data[:] = 1.0
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return csr_matrix(x.multiply(1.0 / norms[:, None]), dtype=np.float32)


def intra_list_diversity(top: np.ndarray, vectors: csr_matrix) -> float:
    """Mean over users of the mean pairwise cosine *distance* ``1 - cos(i, j)`` between the
    items of their list (``top``: item indices, ``-1`` pads; Ziegler et al. 2005). 0 = every
    list is one kind of item, 1 = no two items share a user. Lists with fewer than two items
    are left out."""
    values: list[float] = []
    for row in np.asarray(top, dtype=np.int64):
        items = row[row >= 0]
        m = items.size
        if m < 2:
            continue
        v = vectors[items]
        sims = np.asarray((v @ v.T).toarray(), dtype=np.float64)
        off = (sims.sum() - np.trace(sims)) / (m * (m - 1))
        values.append(1.0 - off)
    return float(np.mean(values)) if values else 0.0


# -- one user, by id ---------------------------------------------------------------------------


def _one(
    recommended: Sequence[Hashable], relevant: Collection[Hashable], k: int
) -> tuple[np.ndarray, np.ndarray]:
    if not relevant:
        raise ValueError("relevant is empty: the metric is undefined for this user")
    wanted = set(relevant)
    row = [item in wanted for item in list(recommended)[:k]]
    hits = np.zeros((1, k), dtype=bool)
    hits[0, : len(row)] = row
    return hits, np.asarray([len(wanted)])


def precision_at_k(
    recommended: Sequence[Hashable], relevant: Collection[Hashable], k: int
) -> float:
    """precision@k of one ranked list (best first) against a set of relevant ids."""
    hits, _ = _one(recommended, relevant, k)
    return float(precision_batch(hits, k)[0])


def recall_at_k(recommended: Sequence[Hashable], relevant: Collection[Hashable], k: int) -> float:
    """recall@k = hits / |relevant| for one ranked list."""
    hits, n = _one(recommended, relevant, k)
    return float(recall_batch(hits, n, k)[0])


def ndcg_at_k(recommended: Sequence[Hashable], relevant: Collection[Hashable], k: int) -> float:
    """nDCG@k (binary gains, log2 discount) for one ranked list."""
    hits, n = _one(recommended, relevant, k)
    return float(ndcg_batch(hits, n, k)[0])


def map_at_k(recommended: Sequence[Hashable], relevant: Collection[Hashable], k: int) -> float:
    """AP@k for one ranked list (MAP@k is the mean over users)."""
    hits, n = _one(recommended, relevant, k)
    return float(ap_batch(hits, n, k)[0])


def coverage_at_k(recommended: Sequence[Sequence[Hashable]], catalog_size: int, k: int) -> float:
    """Distinct ids among every user's top ``k`` / ``catalog_size``."""
    if catalog_size <= 0:
        return 0.0
    distinct = {item for ranked in recommended for item in list(ranked)[:k]}
    return len(distinct) / catalog_size


def novelty(
    recommended: Sequence[Sequence[Hashable]], item_users: Mapping[Hashable, int], n_users: int
) -> float:
    """Mean self-information ``-log2(users(i) / n_users)`` over all recommended ids (unknown or
    zero-user items count as one user)."""
    values = [
        -math.log2(max(item_users.get(item, 0), 1) / n_users)
        for ranked in recommended
        for item in ranked
    ]
    return float(np.mean(values)) if values else 0.0
