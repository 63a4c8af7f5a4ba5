"""The shared helpers of :mod:`loopwise.models.base`."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse import csr_matrix
from scipy.sparse import random as sparse_random

from loopwise.models.base import products, spans, top_n


def test_spans_concatenate_the_ranges() -> None:
    starts, ends = np.array([3, 0, 7, 7]), np.array([5, 0, 9, 8])
    assert spans(starts, ends).tolist() == [3, 4, 7, 8, 7]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_rows_product_equals_scipys(seed: int) -> None:
    rng = np.random.default_rng(seed)
    matrix = csr_matrix(sparse_random(60, 40, density=0.1, random_state=seed, dtype=np.float32))
    for nnz in (0, 1, 5, 30):
        columns = np.sort(rng.choice(60, nnz, replace=False))
        row = csr_matrix((rng.random(nnz, dtype=np.float32), columns, [0, nnz]), shape=(1, 60))
        one = products(row, matrix)
        assert one.shape == (1, 40) and one.dtype == np.float32
        np.testing.assert_allclose(one, (row @ matrix).toarray(), rtol=1e-6, atol=1e-7)
    rows = csr_matrix(sparse_random(3, 60, density=0.2, random_state=seed, dtype=np.float32))
    np.testing.assert_allclose(products(rows, matrix), (rows @ matrix).toarray(), rtol=1e-6)


@pytest.mark.parametrize("n", [1, 3, 10, 50])
def test_top_n_breaks_ties_by_lower_index_and_skips_excluded_and_non_finite(n: int) -> None:
    rng = np.random.default_rng(n)
    scores = rng.integers(0, 5, 40).astype(np.float32)  # many ties
    scores[[2, 9]] = -np.inf
    scores[5] = np.nan
    exclude = np.array([0, 7])
    got = top_n(scores, n, exclude)
    values = scores.astype(np.float64)
    values[~np.isfinite(values)] = -np.inf
    values[exclude] = -np.inf
    keep = [i for i in range(40) if np.isfinite(values[i])]
    expected = sorted(keep, key=lambda i: (-values[i], i))[:n]
    assert [i for i, _ in got] == expected
    assert [v for _, v in got] == [float(values[i]) for i in expected]
