from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.sparse import csr_matrix

from loopwise.models.metrics import (
    ap_batch,
    coverage,
    coverage_at_k,
    hit_matrix,
    map_at_k,
    ndcg_at_k,
    ndcg_batch,
    novelty,
    novelty_batch,
    precision_at_k,
    recall_at_k,
)

RANKED = ["a", "b", "c", "d", "e"]
RELEVANT = {"b", "d", "x"}  # x was never recommended


def test_precision_and_recall_by_hand() -> None:
    assert precision_at_k(RANKED, RELEVANT, 5) == pytest.approx(2 / 5)
    assert recall_at_k(RANKED, RELEVANT, 5) == pytest.approx(2 / 3)  # |relevant| denominator
    assert precision_at_k(RANKED, RELEVANT, 1) == 0.0
    # precision divides by k even when the list is shorter
    assert precision_at_k(["b"], RELEVANT, 4) == pytest.approx(1 / 4)
    assert recall_at_k(RANKED, RELEVANT, 2) == pytest.approx(1 / 3)


def test_ndcg_by_hand() -> None:
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)  # three relevant items fit in k = 5
    assert ndcg_at_k(RANKED, RELEVANT, 5) == pytest.approx(dcg / idcg)
    assert ndcg_at_k(["b", "d", "x"], RELEVANT, 3) == pytest.approx(1.0)
    # one relevant item at rank 2 with k = 2: ideal is a single hit at rank 1
    assert ndcg_at_k(["a", "b"], {"b"}, 2) == pytest.approx(1 / math.log2(3))


def test_map_by_hand() -> None:
    # hits at ranks 2 and 4: (1/2 + 2/4) / min(5, 3)
    assert map_at_k(RANKED, RELEVANT, 5) == pytest.approx(1 / 3)
    # min(k, |relevant|): a perfect top 2 of 3 relevant items scores 1
    assert map_at_k(["b", "d"], RELEVANT, 2) == pytest.approx(1.0)
    assert map_at_k(["a", "b"], RELEVANT, 2) == pytest.approx((1 / 2) / 2)


def test_coverage_and_novelty_by_hand() -> None:
    assert coverage_at_k([["a", "b", "z"], ["b", "c"]], 10, 2) == pytest.approx(3 / 10)
    # 8 training users: a seen by all (0 bits), b by 2 (2 bits), never-seen c counts as 1 (3 bits)
    assert novelty([["a", "b"]], {"a": 8, "b": 2}, 8) == pytest.approx(1.0)
    assert novelty([["a"], ["c"]], {"a": 8}, 8) == pytest.approx(1.5)


def test_batch_forms_agree_with_hand_values() -> None:
    # items 0..4 = a..e, relevant b (1), d (3) plus one item outside the ranking
    top = np.array([[0, 1, 2, 3, 4], [3, 1, -1, -1, -1]])
    relevant = csr_matrix(np.array([[0, 1, 0, 1, 0, 1], [0, 0, 0, 1, 0, 0]]))
    hits = hit_matrix(top, relevant)
    assert hits.tolist() == [
        [False, True, False, True, False],
        [True, False, False, False, False],
    ]
    n_rel = np.array([3, 1])
    assert ndcg_batch(hits, n_rel, 5)[0] == pytest.approx(ndcg_at_k(RANKED, RELEVANT, 5))
    assert ndcg_batch(hits, n_rel, 5)[1] == pytest.approx(1.0)
    assert ap_batch(hits, n_rel, 5).tolist() == pytest.approx([1 / 3, 1.0])
    assert coverage(top, 10) == pytest.approx(5 / 10)  # -1 padding is not an item
    assert novelty_batch(np.array([[0, 1]]), np.array([8, 2]), 8) == pytest.approx(1.0)


def test_empty_relevance_is_rejected() -> None:
    with pytest.raises(ValueError, match="relevant is empty"):
        ndcg_at_k(RANKED, set(), 5)
