"""The training job: interactions in, trained models and their metadata out (no I/O).

``train`` builds the users x items matrix with the workspace's event weights and time decay
(``training.event_weights``, ``training.half_life_days``), fits the configured models — the
hybrid implies its components (popularity, ALS, EASE, item-kNN and, when the catalog has text,
content), fitted once and shared — and measures every trained model on a per-user temporal
holdout (:func:`loopwise.models.evaluate.evaluate`: last 20 % of each user's interactions; the
hybrid's weights are tuned on a validation split carved from the training part, never on the
holdout). The caller stores the result (:mod:`loopwise.models.artifacts`) and serves it
(:mod:`loopwise.models.serving`).
"""

from __future__ import annotations

import importlib.metadata
import platform
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix

from loopwise.catalog.items import Item
from loopwise.config import TrainingSettings
from loopwise.errors import ValidationFailed
from loopwise.models.base import Recommender, top_k_indices
from loopwise.models.content import has_text
from loopwise.models.evaluate import HYBRID_COMPONENTS, make_model, score_rows
from loopwise.models.hybrid import HybridModel
from loopwise.models.interactions import Interaction, InteractionMatrix
from loopwise.models.metrics import (
    ap_batch,
    coverage,
    hit_matrix,
    ndcg_batch,
    precision_batch,
    recall_batch,
)
from loopwise.models.sequence import Recency, user_rows, uses_recent
from loopwise.models.split import relevant_items, temporal_split, validation_split
from loopwise.models.tuning import TuneResult, build, tune_hybrid

#: Libraries whose versions go into the metadata (a model pickled by one may not load in another).
LIBRARIES: tuple[str, ...] = ("loopwise", "implicit", "numpy", "scipy", "scikit-learn")

#: ``progress(step, done, total)``: called as the job moves through its steps.
Progress = Callable[[str, int, int], None]


class NotEnoughData(ValidationFailed):
    """Too few interactions to train: a 409, the state of the data does not allow it yet (the
    request itself was fine; try again when more events arrived)."""

    status = 409
    slug = "not-enough-data"
    title = "Not enough data"


@dataclass(slots=True)
class TrainedModels:
    """What a training produced.

    ``item_ids`` are the matrix columns (the id ↔ index map every model scores in);
    ``item_users`` the number of training users per column (0 = an item with no interactions,
    served by content similarity); ``models`` holds the trained models by strategy name
    (``hybrid`` plus its components, or the single models asked for) and always
    ``popularity``; ``metadata`` is what ``metadata.json`` records.
    """

    item_ids: list[str]
    item_users: np.ndarray
    models: dict[str, Recommender]
    settings: TrainingSettings
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def strategy_names(self) -> list[str]:
        """Model names served as decide strategies (popularity is the built-in ``popular``)."""
        return [name for name in self.models if name != "popularity"]


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "unknown"
    return out


def model_names(settings: TrainingSettings, items: Mapping[str, Item] | None) -> list[str]:
    """The models to fit, components before the hybrid; ``content`` only with catalog text."""
    with_text = has_text(items)
    wanted: list[str] = []
    for name in settings.models:
        if name == "hybrid":
            wanted += [c for c in HYBRID_COMPONENTS if c != "content" or with_text]
        elif name == "content" and not with_text:
            raise ValidationFailed(
                "The content model needs catalog items with a title, text, categories or tags; "
                "import items or remove 'content' from training.models.",
                field="training.models",
            )
        wanted.append(name)
    if "popularity" not in wanted:
        wanted.insert(0, "popularity")
    return list(dict.fromkeys(wanted))


def _tune_hybrid(
    hybrid: HybridModel,
    interactions: Sequence[Interaction],
    matrix: InteractionMatrix,
    settings: TrainingSettings,
    items: Mapping[str, Item] | None,
) -> None:
    """Tune blend weights on a validation split of all interactions (the same rule as the
    offline evaluation); with too little history to carve one, the blend keeps equal weights."""
    split = validation_split(interactions)
    relevant = relevant_items(split)
    val = InteractionMatrix.build(
        split.train,
        settings.event_weights,
        settings.half_life_days,
        item_ids=matrix.item_index.ids,
        user_ids=matrix.user_index.ids,
    )
    rows: list[int] = []
    cols: list[int] = []
    for user, wanted in relevant.items():
        row = val.user_index.get(user)
        for item in wanted:
            col = val.item_index.get(item)
            if row is not None and col is not None:
                rows.append(row)
                cols.append(col)
    if not rows:
        return
    rel = csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=val.matrix.shape)
    hybrid.tune(val, rel, items)


def _fit(
    interactions: Sequence[Interaction],
    items: Mapping[str, Item] | None,
    settings: TrainingSettings,
    names: Sequence[str],
    seed: int,
    now: datetime | None,
    progress: Progress | None,
    with_holdout: bool,
    tuning_out: dict[str, Any] | None = None,
) -> tuple[tuple[InteractionMatrix, dict[str, float], float], dict[str, Recommender]]:
    """Build the matrix and fit ``names``. The hybrid's components are fitted by the hybrid
    itself (on the validation split to tune, then on everything), not once more alone."""
    total = len(names) + (2 if with_holdout else 1)
    report = progress or (lambda step, done, total: None)
    started = time.perf_counter()
    report("matrix", 0, total)
    matrix = InteractionMatrix.build(
        interactions,
        settings.event_weights,
        settings.half_life_days,
        None if now is None else now.timestamp(),
        item_ids=sorted(items) if items else [],
    )
    blended = set(HYBRID_COMPONENTS) if "hybrid" in names else set()
    models: dict[str, Recommender] = {}
    tuning: dict[str, Any] = {}
    fit_seconds: dict[str, float] = {}
    for done, name in enumerate(names, start=1):
        report(name, done, total)
        t0 = time.perf_counter()
        if name in blended:
            models[name] = make_model(name, seed)  # fitted below, by the hybrid
            continue
        if name == "hybrid" and settings.tune_seconds > 0:
            hybrid, found = _optuna_hybrid(interactions, items, settings, models, seed, matrix)
            tuning["hybrid"] = found.as_dict()
            hybrid.fit(matrix, items)  # the shared components, on all interactions
            models.update(hybrid.components)
            models[name] = hybrid
        elif name == "hybrid":
            components = {c: models[c] for c in HYBRID_COMPONENTS if c in models}
            hybrid = HybridModel(components, "tune", seed=seed)
            _tune_hybrid(hybrid, interactions, matrix, settings, items)
            hybrid.fit(matrix, items)  # the shared components, on all interactions
            models[name] = hybrid
        else:
            model = make_model(name, seed)
            model.fit(matrix, items)
            models[name] = model
        fit_seconds[name] = round(time.perf_counter() - t0, 4)
    if tuning_out is not None:
        tuning_out.update(tuning)
    return (matrix, fit_seconds, time.perf_counter() - started), models


def _optuna_hybrid(
    interactions: Sequence[Interaction],
    items: Mapping[str, Item] | None,
    settings: TrainingSettings,
    models: Mapping[str, Recommender],
    seed: int,
    matrix: InteractionMatrix,
) -> tuple[HybridModel, TuneResult]:
    """The hybrid with Optuna-tuned component settings, weights and recency
    (:func:`loopwise.models.tuning.tune_hybrid`, ``settings.tune_seconds``)."""
    names = [c for c in HYBRID_COMPONENTS if c in models]
    found = tune_hybrid(
        interactions,
        names,
        settings.tune_seconds,
        items=items,
        seed=seed,
        event_weights=settings.event_weights,
        half_life_days=settings.half_life_days,
        item_ids=matrix.item_index.ids,
    )
    components = {c: build(c, found.params.get(c, {}), seed) for c in names}
    chosen = found.hybrid
    if chosen.get("weights"):
        recency = Recency(
            chosen.get("half_life"), int(chosen["recent_items"]), float(chosen["recent_decay"])
        )
        hybrid = HybridModel(components, chosen["weights"], seed=seed, recency=recency)
        hybrid.validation_ndcg = found.best_ndcg
    else:  # too little history to tune: equal weights, as the untuned hybrid
        hybrid = HybridModel(components, "tune", seed=seed)
    return hybrid, found


def holdout_metrics(
    interactions: Sequence[Interaction],
    items: Mapping[str, Item] | None,
    settings: TrainingSettings,
    names: Sequence[str],
    seed: int = 0,
    k: int = 10,
    segments_of: Callable[[str], Collection[str]] | None = None,
) -> dict[str, Any]:
    """Metrics of exactly the configured models (same weights, decay and hybrid) on a per-user
    temporal holdout: the last 20 % of each user's interactions (users with 5+), trained on the
    rest, all items ranked with the user's training items excluded. ``{"skipped": why}`` when
    no user has a new item in their held-out part. ``segments_of`` (a profile id's segments
    now) adds ``segments``: per segment with at least :data:`MIN_SEGMENT_USERS` held-out
    people, each model's ndcg@k and recall@2k over them."""
    split = temporal_split(interactions)
    relevant = {u: s for u, s in relevant_items(split).items() if s}
    if not relevant:
        return {
            "skipped": "no user has 5 or more interactions with a new item at the end; "
            "metrics need more history per user"
        }
    _, models = _fit(split.train, items, settings, names, seed, None, None, False)
    matrix = InteractionMatrix.build(
        split.train,
        settings.event_weights,
        settings.half_life_days,
        item_ids=sorted(items) if items else [],
    )
    users = [u for u in relevant if u in matrix.user_index]
    if not users:
        return {"skipped": "no held-out user has training interactions"}
    positions = [matrix.user_index[u] for u in users]
    rows = csr_matrix(matrix.matrix[positions], dtype=np.float32)
    sequence_rows = user_rows(matrix.log, matrix.matrix.shape, Recency()) if matrix.log else None
    r_rows: list[int] = []
    r_cols: list[int] = []
    for r, user in enumerate(users):
        for item in relevant[user]:
            col = matrix.item_index.get(item)
            if col is not None:
                r_rows.append(r)
                r_cols.append(col)
    rel = csr_matrix((np.ones(len(r_rows), dtype=np.float32), (r_rows, r_cols)), shape=rows.shape)
    n_relevant = np.asarray([len(relevant[u]) for u in users], dtype=np.int64)
    out: dict[str, Any] = {}
    masks = _segment_masks(users, segments_of) if segments_of is not None else {}
    by_segment: dict[str, dict[str, Any]] = {
        segment: {"users": int(mask.sum())} for segment, mask in masks.items()
    }
    for name, model in models.items():
        model_rows, recent = rows, None
        if isinstance(model, HybridModel):
            hybrid_rows, hybrid_recent = model.user_rows(matrix)
            model_rows = hybrid_rows[positions]
            recent = None if hybrid_recent is None else hybrid_recent[positions]
        elif uses_recent(model) and sequence_rows is not None:
            recent = sequence_rows[1][positions]
        tops = []
        for start in range(0, rows.shape[0], 1024):
            chunk = model_rows[start : start + 1024]
            part = None if recent is None else recent[start : start + 1024]
            scores = np.asarray(score_rows(model, chunk, part), dtype=np.float32)
            r, c = chunk.nonzero()
            scores[r, c] = -np.inf
            top = top_k_indices(scores, 2 * k)
            top[~np.isfinite(np.take_along_axis(scores, top, axis=1))] = -1
            tops.append(top)
        top = np.concatenate(tops)
        hits = hit_matrix(top, rel)
        ndcg = ndcg_batch(hits, n_relevant, k)
        recall = recall_batch(hits, n_relevant, 2 * k)
        for segment, mask in masks.items():
            by_segment[segment][name] = {
                f"ndcg@{k}": float(ndcg[mask].mean()),
                f"recall@{2 * k}": float(recall[mask].mean()),
            }
        out[name] = {
            f"ndcg@{k}": float(ndcg.mean()),
            f"recall@{2 * k}": float(recall.mean()),
            f"precision@{k}": float(precision_batch(hits, k).mean()),
            f"map@{k}": float(ap_batch(hits, n_relevant, k).mean()),
            f"coverage@{k}": coverage(top[:, :k], rows.shape[1]),
        }
    result: dict[str, Any] = {"models": out, "split": split.stats()}
    if segments_of is not None:
        result["segments"] = by_segment
    return result


MIN_SEGMENT_USERS = 20  # fewer held-out people in a segment: too noisy to show


def _segment_masks(
    users: Sequence[str], segments_of: Callable[[str], Collection[str]]
) -> dict[str, np.ndarray]:
    """Per segment (sorted) with enough held-out people, a boolean mask over ``users``."""
    members: dict[str, list[int]] = {}
    for row, user in enumerate(users):
        for segment in segments_of(user):
            members.setdefault(segment, []).append(row)
    masks = {}
    for segment in sorted(members):
        if len(members[segment]) >= MIN_SEGMENT_USERS:
            mask = np.zeros(len(users), dtype=bool)
            mask[members[segment]] = True
            masks[segment] = mask
    return masks


def train(
    interactions: Sequence[Interaction],
    items: Mapping[str, Item] | None,
    settings: TrainingSettings,
    *,
    seed: int = 0,
    evaluate_holdout: bool = True,
    progress: Progress | None = None,
    now: datetime | None = None,
    segments_of: Callable[[str], Collection[str]] | None = None,
) -> TrainedModels:
    """Fit the configured models on ``interactions``. Raises :class:`NotEnoughData` below
    ``settings.min_interactions`` and ValidationFailed for an impossible configuration.

    Decay reference ``now`` defaults to the newest interaction, so retraining the same log gives
    the same matrix whatever the wall clock says.
    """
    if len(interactions) < settings.min_interactions:
        raise NotEnoughData(
            f"Only {len(interactions)} interactions (item views, clicks, add-to-carts, purchases) "
            f"in the event log; training needs at least {settings.min_interactions}. Send more "
            "events or lower training.min_interactions.",
            field="training.min_interactions",
            interactions=len(interactions),
            min_interactions=settings.min_interactions,
        )
    names = model_names(settings, items)
    tuning: dict[str, Any] = {}
    fitted, models = _fit(
        interactions, items, settings, names, seed, now, progress, evaluate_holdout, tuning
    )
    matrix, fit_seconds, training_seconds = fitted
    steps = len(names) + (2 if evaluate_holdout else 1)
    metrics: dict[str, Any] = {}
    evaluation_started = time.perf_counter()
    if evaluate_holdout:
        if progress is not None:
            progress("holdout", steps - 1, steps)
        metrics = holdout_metrics(
            interactions, items, settings, names, seed, segments_of=segments_of
        )
    if progress is not None:
        progress("done", steps, steps)
    stamps = [it.timestamp for it in interactions]
    hybrid_model = models.get("hybrid")
    metadata: dict[str, Any] = {
        "data_window": {
            "first_event": _iso(min(stamps)),
            "last_event": _iso(max(stamps)),
            "events": len(interactions),
            "users": matrix.shape[0],
            "items": matrix.shape[1],
            "items_with_interactions": int((matrix.item_popularity() > 0).sum()),
        },
        "models": [n for n in names if n != "popularity"],
        "parameters": {name: _parameters(model) for name, model in models.items()},
        "event_weights": dict(settings.event_weights),
        "half_life_days": settings.half_life_days,
        "hybrid_weights": dict(hybrid_model.weights)
        if isinstance(hybrid_model, HybridModel)
        else None,
        "metrics": metrics,
        "fit_seconds": fit_seconds,
        "tuning": tuning or None,
        "recency": _recency(hybrid_model),
        "training_seconds": round(training_seconds, 4),
        "evaluation_seconds": round(time.perf_counter() - evaluation_started, 4),
        "libraries": library_versions(),
        "seed": seed,
    }
    return TrainedModels(
        item_ids=list(matrix.item_index.ids),
        item_users=matrix.item_popularity(),
        models=models,
        settings=settings,
        metadata=metadata,
    )


def _iso(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).isoformat().replace("+00:00", "Z")


def _parameters(model: Recommender) -> dict[str, Any]:
    """The model's plain settings (numbers, strings, booleans, tuples of them)."""
    if isinstance(model, HybridModel):
        return {
            "components": sorted(model.components),
            "normalisation": model.normalisation,
            "tuned": model.tuned,
            "validation_ndcg": model.validation_ndcg,
        }
    out: dict[str, Any] = {}
    for key, value in vars(model).items():
        if key.startswith("_"):
            continue
        if isinstance(value, bool | int | float | str):
            out[key] = value
        elif isinstance(value, tuple) and all(isinstance(v, int | float | str) for v in value):
            out[key] = list(value)
    return out


def _recency(model: Recommender | None) -> dict[str, Any] | None:
    """The hybrid's fold-in half-life and recent row settings, for the metadata."""
    if not isinstance(model, HybridModel):
        return None
    r = model.recency
    return {
        "half_life": r.half_life,
        "recent_items": r.recent_items,
        "recent_decay": r.recent_decay,
    }
