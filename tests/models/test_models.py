from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from scipy.sparse import csr_matrix

from loopwise.models import (
    ALSModel,
    BPRModel,
    ContentModel,
    EASEModel,
    HybridModel,
    InteractionMatrix,
    ItemKNNModel,
    PopularityModel,
    Recommender,
)
from loopwise.models.hybrid import normalise_scores
from loopwise.models.interactions import Interaction
from loopwise.models.sequence import TransitionModel
from tests.models import BLOCK_A, BLOCK_B, catalog, planted

PERSONALISED: dict[str, Callable[[], Recommender]] = {
    "als": lambda: ALSModel(factors=8, iterations=15, regularization=5.0, seed=1),
    "bpr": lambda: BPRModel(factors=8, iterations=200, learning_rate=0.05, seed=1),
    "ease": lambda: EASEModel(l2=500.0),
    "item_knn": lambda: ItemKNNModel(k=30),
    "item_knn_bm25": lambda: ItemKNNModel(k=30, similarity="bm25"),
    "content": ContentModel,
    "hybrid": lambda: HybridModel(
        {"popularity": PopularityModel(), "ease": EASEModel(l2=500.0)},
        {"popularity": 0.01, "ease": 1.0},
    ),
}


@pytest.fixture(scope="module")
def matrix() -> InteractionMatrix:
    return InteractionMatrix.build(planted())


def _fitted(name: str, matrix: InteractionMatrix) -> Recommender:
    model = PERSONALISED[name]()
    model.fit(matrix, catalog())
    return model


def _row(matrix: InteractionMatrix, items: list[str]) -> csr_matrix:
    return matrix.rows_for([dict.fromkeys(items, 1.0)])


def _ids(matrix: InteractionMatrix, recs: list[tuple[int, float]]) -> list[str]:
    return [matrix.item_index.id_of(i) for i, _ in recs]


@pytest.mark.parametrize("name", list(PERSONALISED))
def test_unseen_user_gets_their_block_and_shifts_after_three_views(
    name: str, matrix: InteractionMatrix
) -> None:
    model = _fitted(name, matrix)
    assert isinstance(model, Recommender)
    # a user who was not in training, folded in from three views of block A
    row_a = _row(matrix, BLOCK_A[:3])
    seen_a = row_a.indices
    recs = _ids(matrix, model.recommend(row_a, n=5, exclude=seen_a))
    assert len(recs) == 5 and all(i in BLOCK_A for i in recs), recs
    # every in-block item outranks every out-of-block item (the seen ones aside)
    scores = model.score_user(row_a)
    a_cols = [matrix.item_index[i] for i in BLOCK_A[3:]]
    b_cols = [matrix.item_index[i] for i in BLOCK_B]
    assert scores[a_cols].min() > scores[b_cols].max()
    # three views of block B later, with the same fitted model: recommendations move to B
    row_b = _row(matrix, BLOCK_B[:3])
    recs_b = _ids(matrix, model.recommend(row_b, n=5, exclude=row_b.indices))
    assert all(i in BLOCK_B for i in recs_b), recs_b
    # candidates are scored in the order given
    cands = np.asarray([b_cols[0], a_cols[0]])
    assert model.score_user(row_a, cands).tolist() == pytest.approx(scores[cands].tolist())
    # similar items stay in the block
    sims = _ids(matrix, model.similar_items(matrix.item_index["a5"], n=3))
    assert sims and "a5" not in sims and all(i in BLOCK_A for i in sims), sims


def test_batch_scores_match_single_rows(matrix: InteractionMatrix) -> None:
    model = _fitted("als", matrix)
    rows = matrix.rows_for([dict.fromkeys(BLOCK_A[:3], 1.0), dict.fromkeys(BLOCK_B[:2], 1.0)])
    batch = model.score_users(rows)
    assert batch.shape == (2, matrix.shape[1]) and batch.dtype == np.float32
    assert batch[1] == pytest.approx(model.score_user(rows[1]), abs=1e-5)


def test_rows_with_wrong_width_are_rejected(matrix: InteractionMatrix) -> None:
    model = _fitted("ease", matrix)
    with pytest.raises(ValueError, match="columns"):
        model.score_user(csr_matrix((1, matrix.shape[1] + 1), dtype=np.float32))


def test_popularity_ranks_by_distinct_users(matrix: InteractionMatrix) -> None:
    model = PopularityModel()
    heavy = [Interaction("u1", "x", float(t)) for t in range(10)]
    light = [Interaction(f"u{n}", "y", 0.0) for n in range(3)]
    small = InteractionMatrix.build(heavy + light)
    model.fit(small)
    recs = _ids(small, model.recommend(small.rows_for([{}]), n=2))
    assert recs == ["y", "x"]  # three users beat one user's ten views
    # on the planted data the larger group's block wins for everyone
    model.fit(matrix)
    top = _ids(matrix, model.recommend(_row(matrix, BLOCK_A[:3]), n=5))
    assert all(i in BLOCK_B for i in top)


def test_ease_prunes_to_the_most_popular_items() -> None:
    # item j is used by j + 1 users: i11 is the most popular, i0 the least
    its = [Interaction(f"u{u}", f"i{j}", 0.0) for j in range(12) for u in range(j + 1)]
    m = InteractionMatrix.build(its)
    model = EASEModel(l2=1.0, max_items=5)
    model.fit(m)
    assert model.weights is not None and model.weights.shape == (5, 5)  # memory: 5², not 12²
    kept = {m.item_index.id_of(int(i)) for i in model.kept}  # type: ignore[union-attr]
    assert kept == {"i7", "i8", "i9", "i10", "i11"}
    scores = model.score_user(m.rows_for([{"i11": 1.0}]))
    pruned = [m.item_index[f"i{j}"] for j in range(7)]
    assert np.isneginf(scores[pruned]).all()
    row = m.rows_for([{"i11": 1.0}])
    recs = _ids(m, model.recommend(row, n=20, exclude=row.indices))
    assert set(recs) <= kept - {"i11"} and len(recs) == 4
    assert model.similar_items(m.item_index["i0"]) == []
    assert np.allclose(np.diag(model.weights), 0.0)


def test_content_scores_new_items_without_interactions() -> None:
    m = InteractionMatrix.build(planted(), item_ids=["new-a-jazz-item"])
    model = ContentModel()
    model.fit(m, catalog(extra=("new-a-jazz-item",)))
    recs = _ids(m, model.recommend(_row(m, BLOCK_A[:3]), n=20))
    assert "new-a-jazz-item" in recs
    with pytest.raises(ValueError, match="text"):
        ContentModel().fit(m, {})


def test_content_scores_one_person_as_in_a_batch(matrix: InteractionMatrix) -> None:
    model = ContentModel()
    model.fit(matrix, catalog())
    people = [BLOCK_A[:3], BLOCK_B[:2], []]  # the last one has no items: all zero
    batch = model.score_users(matrix.rows_for([dict.fromkeys(p, 1.0) for p in people]))
    for i, items in enumerate(people):
        one = model.score_users(_row(matrix, items))
        assert one.shape == (1, batch.shape[1])
        np.testing.assert_allclose(one[0], batch[i], rtol=1e-5, atol=1e-6)
    assert batch[0].max() > 0 and not batch[2].any()


def test_hybrid_falls_back_to_popularity_for_empty_rows(matrix: InteractionMatrix) -> None:
    hybrid = HybridModel({"popularity": PopularityModel(), "als": ALSModel(factors=8)}, "tune")
    hybrid.fit(matrix)
    assert not hybrid.tuned
    popular = PopularityModel()
    popular.fit(matrix)
    empty = matrix.rows_for([{}])
    assert _ids(matrix, hybrid.recommend(empty, 5)) == _ids(matrix, popular.recommend(empty, 5))


def test_hybrid_tuning_picks_the_personalised_component(matrix: InteractionMatrix) -> None:
    # validation truth: the held-out half of each user's block they did not touch in training
    dense = matrix.matrix.toarray()
    truth = np.zeros_like(dense)
    for u in range(dense.shape[0]):
        block = BLOCK_A if matrix.user_index.id_of(u).startswith("a") else BLOCK_B
        for item in block:
            col = matrix.item_index[item]
            if dense[u, col] == 0:
                truth[u, col] = 1.0
    hybrid = HybridModel({"popularity": PopularityModel(), "ease": EASEModel(l2=500.0)})
    weights = hybrid.tune(matrix, csr_matrix(truth))
    assert hybrid.tuned and weights["ease"] > 0
    assert weights["ease"] > weights["popularity"]
    with pytest.raises(ValueError, match="shape"):
        hybrid.tune(matrix, csr_matrix(truth[:-1]))


def test_normalisation_per_row() -> None:
    scores = np.array([[1.0, 3.0, -np.inf], [2.0, 2.0, 2.0]])
    assert normalise_scores(scores).tolist() == [[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]
    ranks = normalise_scores(np.array([[5.0, 1.0, 3.0]]), "rank")
    assert ranks[0].tolist() == pytest.approx([1.0, 0.0, 0.5])


def test_one_row_normalises_exactly_as_in_a_batch() -> None:
    rng = np.random.default_rng(3)
    batch = rng.normal(size=(4, 50)).astype(np.float32)
    batch[1] = 7.0  # flat
    batch[2, 5], batch[3, 9] = np.nan, np.inf  # non-finite: the general path
    together = normalise_scores(batch)
    for i in range(len(batch)):
        alone = normalise_scores(batch[i : i + 1])
        assert np.array_equal(alone, together[i : i + 1]), i
    assert together[0].min() == 0.0 and together[0].max() == 1.0 and not together[1].any()


@pytest.mark.parametrize("model", [ItemKNNModel, TransitionModel])
def test_item_to_item_models_score_one_person_as_in_a_batch(
    matrix: InteractionMatrix, model: Callable[[], Recommender]
) -> None:
    fitted = model()
    fitted.fit(matrix, catalog())
    people = [BLOCK_A[:3], BLOCK_B[:2], []]
    batch = fitted.score_users(matrix.rows_for([dict.fromkeys(p, 1.0) for p in people]))
    for i, items in enumerate(people):
        np.testing.assert_allclose(
            fitted.score_users(_row(matrix, items))[0], batch[i], rtol=1e-6, atol=1e-7
        )
    assert batch[0].max() > 0 and not batch[2].any()
