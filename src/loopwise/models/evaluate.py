"""Offline evaluation: temporal split, fit every model on the past, rank all items for each test
user (their training items excluded), score against what they did next.

Result shape (all floats are means over evaluated users unless said otherwise)::

    {"models": {"<name>": {"ndcg@10", "recall@20", "precision@10", "map@10", "coverage@10",
                           "novelty", "diversity@10", "fit_seconds"}},
     "hybrid": {"weights", "half_life", "validation_ndcg"},
     "tuning": {"<name>": {"params", "default_ndcg", "best_ndcg", "trials", "seconds"}},
     "split": {"users", "train", "test", "skipped_users"},
     "segments": {"<segment>": {"<name>": {metrics as above without fit_seconds, "users"}}}}

``k`` sets the cut-off of nDCG, precision, MAP and coverage; recall is reported at ``2k``
(recall@20 for the default k = 10). Evaluated users are test users with at least one relevant
item (a test item not already in their training history); relevant items the training data never
saw still count in recall's denominator, so cold items cost models honestly. ``fit_seconds`` of
the hybrid includes its tuning (weights and fold-in half-life on a validation split carved from
the training part); with ``tune_seconds`` the hybrid and the tunable single models (ALS, EASE,
item-kNN, transitions, session kNN) are first tuned with Optuna (:mod:`loopwise.models.tuning`)
on that validation split, about ``tune_seconds`` each, and ``fit_seconds`` excludes that search
(``tuning`` reports it). Next to accuracy: coverage@k, novelty and intra-list diversity@k
(:func:`loopwise.models.metrics.intra_list_diversity`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix

from loopwise.catalog.items import Item
from loopwise.errors import ValidationFailed
from loopwise.models.als import ALSModel, BPRModel
from loopwise.models.base import Recommender, top_k_indices
from loopwise.models.content import ContentModel, has_text
from loopwise.models.ease import EASEModel
from loopwise.models.hybrid import HybridModel
from loopwise.models.interactions import Interaction, InteractionMatrix
from loopwise.models.item_knn import ItemKNNModel
from loopwise.models.metrics import (
    ap_batch,
    coverage,
    hit_matrix,
    intra_list_diversity,
    item_vectors,
    ndcg_batch,
    novelty_batch,
    precision_batch,
    recall_batch,
)
from loopwise.models.popularity import PopularityModel
from loopwise.models.sequence import (
    Recency,
    SessionKNNModel,
    TransitionModel,
    user_rows,
    uses_recent,
)
from loopwise.models.split import Split, relevant_items, temporal_split, validation_split
from loopwise.models.tuning import (
    TUNABLE_MODELS,
    TuneResult,
    Validation,
    build,
    tune_hybrid,
    tune_model,
)

MODEL_NAMES: tuple[str, ...] = (
    "popularity",
    "als",
    "bpr",
    "ease",
    "item_knn",
    "transitions",
    "session_knn",
    "content",
    "hybrid",
)
#: Models evaluated only when asked for by name (they need an optional extra); when chosen they
#: also join the hybrid's components.
EXTRA_MODEL_NAMES: tuple[str, ...] = ("content_embeddings",)
#: Components of the hybrid, in blend order (content only with catalog text).
HYBRID_COMPONENTS: tuple[str, ...] = (
    "popularity",
    "als",
    "ease",
    "item_knn",
    "transitions",
    "session_knn",
    "content",
)
TEXT_MODELS = frozenset({"content", "content_embeddings"})
BATCH_USERS = 1024


def make_model(name: str, seed: int = 0) -> Recommender:
    """A model with its default settings by name (one of :data:`MODEL_NAMES` except hybrid, or
    of :data:`EXTRA_MODEL_NAMES`)."""
    if name == "content_embeddings":
        from loopwise.models.embeddings import EmbeddingContentModel

        return EmbeddingContentModel()
    factories: dict[str, Callable[[], Recommender]] = {
        "popularity": PopularityModel,
        "als": lambda: ALSModel(seed=seed),
        "bpr": lambda: BPRModel(seed=seed),
        "ease": EASEModel,
        "item_knn": ItemKNNModel,
        "transitions": TransitionModel,
        "session_knn": SessionKNNModel,
        "content": ContentModel,
    }
    if name not in factories:
        raise ValidationFailed(
            f"unknown model {name!r}; choose from {', '.join(MODEL_NAMES + EXTRA_MODEL_NAMES)}",
            field="models",
        )
    return factories[name]()


def _relevance(
    matrix: InteractionMatrix, relevant: Mapping[str, set[str]], users: Sequence[str]
) -> tuple[csr_matrix, np.ndarray]:
    """Relevance rows for ``users`` (csr, len(users) x n_items; items outside the matrix are
    dropped) and the full relevant counts (int64, (len(users),))."""
    rows: list[int] = []
    cols: list[int] = []
    for r, user in enumerate(users):
        for item in relevant.get(user, ()):
            col = matrix.item_index.get(item)
            if col is not None:
                rows.append(r)
                cols.append(col)
    rel = csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)),
        shape=(len(users), matrix.matrix.shape[1]),
    )
    counts = np.asarray([len(relevant.get(user, ())) for user in users], dtype=np.int64)
    return rel, counts


def score_rows(model: Recommender, rows: csr_matrix, recent: csr_matrix | None) -> np.ndarray:
    """``model``'s scores of ``rows``, handing ``recent`` to a model that reads recent rows
    (the transitions model, the hybrid)."""
    if recent is not None and (uses_recent(model) or isinstance(model, HybridModel)):
        return np.asarray(model.score_users(rows, recent=recent))  # type: ignore[call-arg]
    return np.asarray(model.score_users(rows))


def _ranked(
    model: Recommender, rows: csr_matrix, depth: int, recent: csr_matrix | None = None
) -> np.ndarray:
    """Top ``depth`` item indices per row (int64, (n_rows, depth)), training items excluded,
    ``-1`` where the model had nothing left to rank. ``recent`` rows go to sequence-aware
    models."""
    out: list[np.ndarray] = []
    for start in range(0, rows.shape[0], BATCH_USERS):
        chunk = rows[start : start + BATCH_USERS]
        part = None if recent is None else recent[start : start + BATCH_USERS]
        scores = np.asarray(score_rows(model, chunk, part), dtype=np.float32)
        r, c = chunk.nonzero()
        scores[r, c] = -np.inf
        top = top_k_indices(scores, depth)
        top[~np.isfinite(np.take_along_axis(scores, top, axis=1))] = -1
        if top.shape[1] < depth:
            top = np.pad(top, ((0, 0), (0, depth - top.shape[1])), constant_values=-1)
        out.append(top)
    return np.concatenate(out) if out else np.zeros((0, depth), dtype=np.int64)


def _metrics(
    top: np.ndarray,
    hits: np.ndarray,
    n_relevant: np.ndarray,
    k: int,
    n_items: int,
    item_users: np.ndarray,
    n_train_users: int,
    vectors: csr_matrix | None = None,
) -> dict[str, float]:
    extra = {} if vectors is None else {f"diversity@{k}": intra_list_diversity(top[:, :k], vectors)}
    return {
        f"ndcg@{k}": float(ndcg_batch(hits, n_relevant, k).mean()),
        f"recall@{2 * k}": float(recall_batch(hits, n_relevant, 2 * k).mean()),
        f"precision@{k}": float(precision_batch(hits, k).mean()),
        f"map@{k}": float(ap_batch(hits, n_relevant, k).mean()),
        f"coverage@{k}": coverage(top[:, :k], n_items),
        "novelty": novelty_batch(top[:, :k], item_users, n_train_users),
        **extra,
    }


def _segment_masks(
    segments: Mapping[str, str | Collection[str]], users: Sequence[str]
) -> dict[str, np.ndarray]:
    """Per segment name (sorted), a boolean mask over ``users`` of its members."""
    members: list[set[str]] = []
    for user in users:
        found = segments.get(user, ())
        members.append({found} if isinstance(found, str) else {str(s) for s in found})
    labels = sorted({label for group in members for label in group if label})
    return {label: np.asarray([label in group for group in members]) for label in labels}


def _hybrid(names: Iterable[str], seed: int) -> HybridModel:
    hybrid = HybridModel({name: make_model(name, seed) for name in names}, "tune", seed=seed)
    hybrid.fit_unweighted = False  # evaluation ranks with the blend only
    return hybrid


def _fit_hybrid(
    hybrid: HybridModel,
    split: Split,
    matrix: InteractionMatrix,
    items: Mapping[str, Item] | None,
) -> None:
    """Tune on a validation split carved from the training data, then fit on all of it."""
    val = validation_split(split.train)
    val_matrix = InteractionMatrix.build(
        val.train, item_ids=matrix.item_index.ids, user_ids=matrix.user_index.ids
    )
    val_relevant = relevant_items(val)
    rel, _ = _relevance(val_matrix, val_relevant, val_matrix.user_index.ids)
    hybrid.tune(val_matrix, rel, items)
    hybrid.fit(matrix, items)


def evaluate(
    interactions: Iterable[Interaction],
    models: Sequence[str] | None = None,
    k: int = 10,
    seed: int = 0,
    items: Mapping[str, Item] | None = None,
    segments: Mapping[str, str | Collection[str]] | None = None,
    tune_seconds: float | None = None,
) -> dict[str, Any]:
    """Evaluate ``models`` (default: all of :data:`MODEL_NAMES`; ``content`` only when
    ``items`` have text) on a per-user temporal split of ``interactions``. ``segments`` maps
    user ids to the segment (name) or segments they belong to, for per-segment results; a user
    counts in each of their segments. See the module docstring."""
    if k < 1:
        raise ValidationFailed("k must be at least 1", field="k")
    with_text = has_text(items)
    if models is None:
        names = [n for n in MODEL_NAMES if n != "content" or with_text]
    else:
        names = list(dict.fromkeys(models))
        for name in names:
            if name not in MODEL_NAMES + EXTRA_MODEL_NAMES:
                raise ValidationFailed(
                    f"unknown model {name!r}; choose from "
                    f"{', '.join(MODEL_NAMES + EXTRA_MODEL_NAMES)}",
                    field="models",
                )
        for name in TEXT_MODELS.intersection(names):
            if not with_text:
                raise ValidationFailed(
                    f"the {name} model needs catalog items with text; pass items or drop {name!r}",
                    field="models",
                )
        if "content_embeddings" in names:
            from loopwise.models.embeddings import require_embeddings

            require_embeddings("models")
    split = temporal_split(interactions)
    relevant = {u: s for u, s in relevant_items(split).items() if s}
    if not relevant:
        raise ValidationFailed(
            "nothing to evaluate: no user has 5 or more interactions with a new item at the end",
            field="data",
        )
    catalog_ids = sorted(items) if items else []
    matrix = InteractionMatrix.build(split.train, item_ids=catalog_ids)
    users = sorted(relevant, key=lambda u: matrix.user_index[u])
    rel, n_relevant = _relevance(matrix, relevant, users)
    rows = csr_matrix(matrix.matrix[[matrix.user_index[u] for u in users]], dtype=np.float32)
    item_users = matrix.item_popularity()
    n_items = matrix.matrix.shape[1]
    groups = _segment_masks(segments or {}, users)
    components = [n for n in HYBRID_COMPONENTS if n != "content" or with_text]
    components += [n for n in EXTRA_MODEL_NAMES if n in names]

    result: dict[str, Any] = {"models": {}, "split": split.stats(), "segments": {}}
    user_pos = [matrix.user_index[u] for u in users]
    vectors = item_vectors(matrix.matrix)
    tuned: dict[str, Any] = {}
    if tune_seconds is not None:
        tuned = _tune(names, components, split.train, items, tune_seconds, seed, k, catalog_ids)
        result["tuning"] = {name: found.as_dict() for name, found in tuned.items()}
    for name in names:
        started = time.perf_counter()
        model_rows, recent = rows, None
        model: Recommender
        if name == "hybrid" and "hybrid" in tuned:
            model = _tuned_hybrid(components, tuned["hybrid"], seed)
            assert isinstance(model, HybridModel)
            model.fit(matrix, items)
            result["hybrid"] = {
                "weights": dict(model.weights),
                "half_life": model.recency.half_life,
                "validation_ndcg": tuned["hybrid"].best_ndcg,
            }
        elif name == "hybrid":
            model = _hybrid(components, seed)
            assert isinstance(model, HybridModel)
            _fit_hybrid(model, split, matrix, items)
            result["hybrid"] = {
                "weights": dict(model.weights),
                "half_life": model.recency.half_life,
                "validation_ndcg": model.validation_ndcg,
            }
        if name == "hybrid":
            assert isinstance(model, HybridModel)
            all_rows, all_recent = model.user_rows(matrix)
            model_rows = all_rows[user_pos]
            recent = None if all_recent is None else all_recent[user_pos]
        else:
            if name in tuned:
                model = build(name, tuned[name].params.get(name, {}), seed)
            else:
                model = make_model(name, seed)
            model.fit(matrix, items)
            if uses_recent(model) and matrix.log is not None:
                recent = user_rows(matrix.log, matrix.matrix.shape, Recency())[1][user_pos]
        fit_seconds = time.perf_counter() - started
        top = _ranked(model, model_rows, 2 * k, recent)
        hits = hit_matrix(top, rel)
        scores = _metrics(top, hits, n_relevant, k, n_items, item_users, matrix.shape[0], vectors)
        result["models"][name] = {**scores, "fit_seconds": fit_seconds}
        for label, mask in groups.items():
            part = _metrics(
                top[mask],
                hits[mask],
                n_relevant[mask],
                k,
                n_items,
                item_users,
                matrix.shape[0],
                vectors,
            )
            bucket = result["segments"].setdefault(label, {})
            bucket[name] = {**part, "users": int(mask.sum())}
    return result


def _tune(
    names: Sequence[str],
    components: Sequence[str],
    train: Sequence[Interaction],
    items: Mapping[str, Item] | None,
    seconds: float,
    seed: int,
    k: int,
    item_ids: Sequence[str],
) -> dict[str, TuneResult]:
    """Optuna studies on a validation split of ``train`` for the hybrid and each tunable
    single model of ``names``, about ``seconds`` each."""
    if seconds <= 0:
        raise ValidationFailed("tune_seconds must be positive", field="tune_seconds")
    out: dict[str, TuneResult] = {}
    validation = Validation.carve(train, item_ids=item_ids)
    for name in names:
        if name == "hybrid":
            out[name] = tune_hybrid(
                train, components, seconds, items=items, seed=seed, k=k, item_ids=item_ids
            )
        elif name in TUNABLE_MODELS and validation is not None:
            out[name] = tune_model(name, train, seconds, seed=seed, k=k, validation=validation)
    return out


def _tuned_hybrid(components: Sequence[str], found: TuneResult, seed: int) -> HybridModel:
    """The hybrid a study chose: tuned component settings, blend weights and recency."""
    chosen = found.hybrid
    recency = Recency(
        chosen.get("half_life", Recency().half_life),
        int(chosen.get("recent_items", Recency().recent_items)),
        float(chosen.get("recent_decay", Recency().recent_decay)),
    )
    models = {c: build(c, found.params.get(c, {}), seed) for c in components}
    weights = chosen.get("weights") or dict.fromkeys(components, 1.0)
    hybrid = HybridModel(models, weights, seed=seed, recency=recency)
    hybrid.fit_unweighted = False
    hybrid.validation_ndcg = found.best_ndcg
    return hybrid
