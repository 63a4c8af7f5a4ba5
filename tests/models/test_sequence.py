"""Order and recency: recency-weighted rows, recent rows, session transitions, the hybrid."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse import csr_matrix

from loopwise.models.evaluate import evaluate
from loopwise.models.hybrid import HybridModel
from loopwise.models.interactions import Interaction, InteractionMatrix
from loopwise.models.item_knn import ItemKNNModel
from loopwise.models.movielens_like import MovieLensLikeConfig, generate, write_ratings
from loopwise.models.popularity import PopularityModel
from loopwise.models.sequence import (
    MIN_FACTOR,
    Recency,
    SessionKNNModel,
    TransitionModel,
    _top_per_row,
    recent_row_from_ids,
    session_ids,
    session_matrix,
    user_rows,
)


def log(*rows: tuple[str, str, float]) -> InteractionMatrix:
    return InteractionMatrix.build(Interaction(u, i, t, "view") for u, i, t in rows)


def test_the_matrix_keeps_its_event_log_in_input_order() -> None:
    m = log(("u", "a", 3.0), ("u", "b", 1.0), ("v", "a", 2.0))
    assert m.log is not None and len(m.log) == 3
    assert m.log.items.tolist() == [0, 1, 0] and m.log.times.tolist() == [3.0, 1.0, 2.0]
    ordered = m.log.ordered()
    assert ordered.users.tolist() == [0, 0, 1] and ordered.items.tolist() == [1, 0, 0]


def test_fold_in_rows_halve_per_half_life_from_the_newest() -> None:
    m = log(("u", "a", 1.0), ("u", "b", 2.0), ("u", "c", 3.0), ("u", "a", 4.0))
    rows, recent = user_rows(m.log, m.matrix.shape, Recency(half_life=1.0))  # type: ignore[arg-type]
    a, b, c = (m.item_index[x] for x in "abc")
    # a: newest (1) + oldest (0.5 ** 3); c: 0.5; b: 0.25
    assert rows[0, a] == pytest.approx(1.0 + 0.125)
    assert rows[0, c] == pytest.approx(0.5) and rows[0, b] == pytest.approx(0.25)
    # recent row: distinct items newest first, decayed 0.6 per step
    assert recent[0, a] == pytest.approx(1.0)
    assert recent[0, c] == pytest.approx(0.6) and recent[0, b] == pytest.approx(0.36)
    plain, _ = user_rows(m.log, m.matrix.shape, Recency(half_life=None))  # type: ignore[arg-type]
    assert (plain.toarray() == m.matrix.toarray()).all()


def test_a_long_history_keeps_every_item_in_the_row() -> None:
    rows = [("u", f"i{k}", float(k)) for k in range(400)]
    m = log(*rows)
    folded, recent = user_rows(m.log, m.matrix.shape, Recency(half_life=2.0))  # type: ignore[arg-type]
    assert folded.nnz == 400 and folded.data.min() >= MIN_FACTOR * 0.99
    assert recent.nnz == Recency().recent_items


def test_sessions_split_at_pauses_and_users() -> None:
    m = log(("u", "a", 0.0), ("u", "b", 10.0), ("u", "c", 5000.0), ("v", "a", 5001.0))
    ordered = m.log.ordered()  # type: ignore[union-attr]
    assert session_ids(ordered, 3600.0).tolist() == [0, 0, 1, 2]
    assert session_ids(ordered, None).tolist() == [0, 0, 0, 1]


def test_transitions_learn_what_comes_next_within_a_session() -> None:
    # everyone goes a -> b -> c within minutes; a new session (a day later) starts with x
    rows = []
    for u in range(20):
        base = u * 1000.0
        rows += [(f"u{u}", "a", base), (f"u{u}", "b", base + 60), (f"u{u}", "c", base + 120)]
        rows += [(f"u{u}", "x", base + 90_000)]
    m = log(*rows)
    model = TransitionModel(window=1, backward=0.0, beta=0.0, session_gap_seconds=3600.0)
    model.fit(m)
    a, b, c = (m.item_index[k] for k in "abc")
    assert [i for i, _ in model.similar_items(a, 3)] == [b]  # x came after c in another session
    assert [i for i, _ in model.similar_items(c, 3)] == []
    recent = recent_row_from_ids(["b"], m.item_index, m.matrix.shape[1], Recency())  # type: ignore[arg-type]
    scores = model.score_users(csr_matrix((1, m.matrix.shape[1]), dtype=np.float32), recent)
    assert int(np.argmax(scores[0])) == c


def test_session_knn_ranks_what_similar_visits_co_viewed_first() -> None:
    # visits about a and one of b, c, d — b, c, d as often before a as after it, sometimes with
    # a one-off item in between — and visits about x and y; each person comes back two hours
    # later for an unrelated z
    rows = []
    for u in range(12):
        base = u * 100_000.0
        tail = ["b", "c", "d"][u % 3]
        visit = ["a", f"f{u}", tail] if u % 2 == 0 else [tail, "a"]
        rows += [(f"u{u}", item, base + 60.0 * j) for j, item in enumerate(visit)]
        rows += [(f"o{u}", "x", base + 1.0), (f"o{u}", "y", base + 61.0)]
        rows += [(f"u{u}", "z", base + 7_200.0)]
    m = log(*rows)
    model = SessionKNNModel(neighbours=50, beta=0.0)
    model.fit(m)
    n = m.matrix.shape[1]
    recent = recent_row_from_ids(["a"], m.item_index, n, Recency())  # type: ignore[arg-type]
    scores = model.score_users(csr_matrix((1, n), dtype=np.float32), recent)[0]
    ranked = [m.item_index.id_of(int(i)) for i in np.argsort(-scores, kind="stable")]
    top3 = set([i for i in ranked if i != "a"][:3])  # a itself: seen, never recommended
    assert top3 == {"b", "c", "d"}  # co-viewed in four visits with a each, in any position
    assert scores[m.item_index["b"]] > scores[m.item_index["f0"]] > 0  # one visit only
    assert scores[m.item_index["z"]] == 0.0  # after a pause: another visit
    assert scores[m.item_index["y"]] == 0.0  # never in a visit with a
    # without the visit gap, the later z counts as co-viewed
    whole = SessionKNNModel(neighbours=50, beta=0.0, session_gap_seconds=None)
    whole.fit(m)
    assert whole.score_users(csr_matrix((1, n), dtype=np.float32), recent)[0, m.item_index["z"]] > 0
    assert [i for i, _ in model.similar_items(m.item_index["x"], 1)] == [m.item_index["y"]]


def test_session_knn_keeps_only_the_most_similar_sessions() -> None:
    # query {a, b}: the sessions with both are nearer than those with a alone
    rows = [("s1", "a", 0.0), ("s1", "b", 1.0), ("s1", "c", 2.0)]
    rows += [(f"t{k}", "a", 0.0) for k in range(5)] + [(f"t{k}", "d", 1.0) for k in range(5)]
    m = log(*rows)
    n = m.matrix.shape[1]
    recent = recent_row_from_ids(["b", "a"], m.item_index, n, Recency(recent_decay=1.0))  # type: ignore[arg-type]
    empty = csr_matrix((1, n), dtype=np.float32)
    one = SessionKNNModel(neighbours=1, beta=0.0)
    one.fit(m)
    scores = one.score_users(empty, recent)[0]
    assert scores[m.item_index["c"]] > 0 and scores[m.item_index["d"]] == 0.0
    every = SessionKNNModel(neighbours=10, beta=0.0)
    every.fit(m)
    scores = every.score_users(empty, recent)[0]
    assert scores[m.item_index["d"]] > scores[m.item_index["c"]] > 0  # five votes beat one


def test_session_knn_scores_one_row_as_a_batch_would() -> None:
    # the decide path (one row, plain numpy) and the batch path (sparse products) agree
    rng = np.random.default_rng(1)
    rows = []
    for u in range(60):
        t = u * 50_000.0
        for _ in range(int(rng.integers(3, 12))):
            t += float(rng.choice([30.0, 4_000.0]))
            rows.append((f"u{u}", f"i{int(rng.integers(0, 25))}", t))
    m = log(*rows)
    model = SessionKNNModel(neighbours=7)
    model.fit(m)
    _, recent = user_rows(m.log, m.matrix.shape, Recency())  # type: ignore[arg-type]
    batch = model.score_users(m.matrix, recent)
    assert (batch > 0).any()
    for r in range(m.shape[0]):
        one = model.score_users(m.matrix[r], recent[r])[0]
        np.testing.assert_allclose(one, batch[r], rtol=1e-5, atol=1e-6)
    empty = csr_matrix((1, m.matrix.shape[1]), dtype=np.float32)
    assert not model.score_users(empty).any()


def test_top_per_row_matches_a_row_by_row_selection() -> None:
    rng = np.random.default_rng(0)
    dense = rng.random((30, 40)) * (rng.random((30, 40)) < 0.3)
    kept = _top_per_row(csr_matrix(dense, dtype=np.float32), 4).toarray()
    for r in range(30):
        nz = np.flatnonzero(dense[r])
        want = set(nz[np.argsort(-dense[r, nz])[:4]].tolist())
        assert set(np.flatnonzero(kept[r]).tolist()) == want
        assert np.allclose(kept[r, list(want)], dense[r, list(want)])


def test_session_matrix_marks_each_visit_once() -> None:
    m = log(("u", "a", 0.0), ("u", "a", 5.0), ("u", "b", 10.0), ("u", "c", 5000.0))
    sessions = session_matrix(m.log, 3, 1800.0).toarray()  # type: ignore[arg-type]
    a, b, c = (m.item_index[x] for x in "abc")
    assert sessions.shape == (2, 3)
    assert sessions[0, a] == 1.0 and sessions[0, b] == 1.0 and sessions[1, c] == 1.0
    assert sessions.sum() == 3.0


def test_recent_row_from_profile_ids_skips_unknown_and_repeats() -> None:
    index = {"a": 0, "b": 1, "c": 2}
    row = recent_row_from_ids(["b", "zz", "b", "a", "c"], index, 3, Recency(recent_items=2))
    assert row.toarray().tolist() == [[pytest.approx(0.6), 1.0, 0.0]]


def test_hybrid_passes_recent_rows_to_the_transitions() -> None:
    m = log(*[(f"u{u}", k, u * 1000.0 + j) for u in range(10) for j, k in enumerate("abc")])
    hybrid = HybridModel(
        {"popularity": PopularityModel(), "transitions": TransitionModel(), "knn": ItemKNNModel()},
        {"transitions": 1.0},
    )
    hybrid.fit(m)
    rows, _ = hybrid.user_rows(m)
    c = m.item_index["c"]
    only_a = recent_row_from_ids(["a"], m.item_index, 3, Recency())  # type: ignore[arg-type]
    scores = hybrid.score_users(rows[:1], recent=only_a)
    assert scores[0, m.item_index["b"]] > scores[0, c]  # b follows a
    # without a recent row the row itself is read (a user of a, b and c)
    assert np.isfinite(hybrid.score_users(rows[:1])).all()


def test_movielens_like_logs_are_seeded_and_shaped_like_movielens(tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = MovieLensLikeConfig(n_users=30, n_items=200, interactions=900, seed=3)
    first, again = generate(config), generate(config)
    assert first == again
    per_user: dict[str, int] = {}
    for it in first:
        per_user[it.user] = per_user.get(it.user, 0) + 1
    assert len(per_user) == 30 and min(per_user.values()) >= 20
    assert len({(it.user, it.item) for it in first}) == len(first)  # a film is rated once
    path = write_ratings(first, tmp_path / "ratings.dat")
    assert path.read_text().splitlines()[0].count("::") == 3
    with pytest.raises(ValueError):
        generate(MovieLensLikeConfig(n_users=10, interactions=100))


def test_order_pays_on_sequential_data_and_hybrid_beats_ease_and_als() -> None:
    data = generate(MovieLensLikeConfig(n_users=150, n_items=600, interactions=4500, seed=1))
    result = evaluate(data, ["als", "ease", "transitions", "hybrid"])
    ndcg = {name: m["ndcg@10"] for name, m in result["models"].items()}
    assert ndcg["transitions"] > max(ndcg["als"], ndcg["ease"])
    assert ndcg["hybrid"] > 1.2 * max(ndcg["als"], ndcg["ease"]), ndcg
    assert result["hybrid"]["weights"]["transitions"] > 0
    for metrics in result["models"].values():
        assert 0 < metrics["diversity@10"] <= 1


def test_the_tuned_half_life_and_weights_are_the_best_pair_on_validation() -> None:
    # each half-life gets its own weight search: the pair kept is at least as good on validation
    # as the best weights found at any single half-life of the grid
    from benchmarks.bench_models import Scale, simulated_log

    from loopwise.models.evaluate import HYBRID_COMPONENTS, make_model
    from loopwise.models.split import relevant_items, validation_split

    interactions, _ = simulated_log(Scale(600, 200, 14, 10), 2)
    val = validation_split(interactions)
    train = InteractionMatrix.build(val.train)
    rows, cols = [], []
    for user, wanted in relevant_items(val).items():
        for item in wanted:
            if user in train.user_index and item in train.item_index:
                rows.append(train.user_index[user])
                cols.append(train.item_index[item])
    relevant = csr_matrix((np.ones(len(rows)), (rows, cols)), shape=train.matrix.shape)

    def tuned(grid: tuple[float | None, ...]) -> HybridModel:
        hybrid = HybridModel(
            {name: make_model(name) for name in HYBRID_COMPONENTS if name != "content"},
            recency=Recency(grid[0]),
            half_life_grid=grid,
        )
        hybrid.tune(train, relevant)
        return hybrid

    grid = (8.0, None, 24.0, 3.0)
    every = tuned(grid)
    alone = [tuned((h,)) for h in grid]
    assert every.validation_ndcg is not None
    assert every.validation_ndcg >= max(h.validation_ndcg or 0.0 for h in alone) - 1e-9
