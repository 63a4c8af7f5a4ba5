"""Hyperparameter tuning with Optuna (TPE, a Bayesian optimisation) within a time budget.

Every objective is nDCG@k on a **validation split carved from the training interactions** (the
per-user temporal rule of :func:`loopwise.models.split.validation_split`): the test split of an
evaluation, or the holdout of a training job, is never looked at. Each study starts with the
current defaults as its first trial, so a tuned model is never worse than the default on
validation; it then runs trials until ``seconds`` have passed (a trial that started goes on to
its end, so a study may overrun by one trial) or ``max_trials`` ran.

- :func:`tune_hybrid` — the hybrid's component settings (ALS factors, regularization and
  confidence; EASE's L2; item-kNN's neighbours; the session transitions' window, decays,
  popularity damping and session gap; session kNN's neighbours, visit gap and popularity
  damping) and its recent row; each trial tunes the blend weights and
  the fold-in half-life on the same validation split (:meth:`HybridModel.tune`).
- :func:`tune_model` — one model's settings (``als``, ``ease``, ``item_knn``, ``transitions``,
  ``session_knn``):
  the tuned baselines of ``loopwise evaluate --tune``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.sparse import csr_matrix

from loopwise.catalog.items import Item
from loopwise.models.als import ALSModel
from loopwise.models.base import Recommender, top_k_indices
from loopwise.models.content import ContentModel
from loopwise.models.ease import EASEModel
from loopwise.models.hybrid import HybridModel
from loopwise.models.interactions import DEFAULT_EVENT_WEIGHTS, Interaction, InteractionMatrix
from loopwise.models.item_knn import ItemKNNModel
from loopwise.models.metrics import hit_matrix, ndcg_batch
from loopwise.models.popularity import PopularityModel
from loopwise.models.sequence import (
    Recency,
    SessionKNNModel,
    TransitionModel,
    user_rows,
    uses_recent,
)
from loopwise.models.split import relevant_items, validation_split

if TYPE_CHECKING:  # imported on first tuning: Optuna costs start-up time
    import optuna

TUNABLE_MODELS: tuple[str, ...] = ("als", "ease", "item_knn", "transitions", "session_knn")
GAP_CHOICES: tuple[float | None, ...] = (600.0, 3600.0, 86_400.0, None)
#: Visit gaps session kNN tries (its default, 30 minutes, among them).
VISIT_GAP_CHOICES: tuple[float | None, ...] = (600.0, 1800.0, 3600.0, None)


@dataclass(slots=True)
class TuneResult:
    """What a study found: ``params`` (by model name, plain values), the validation nDCG@k of
    the default settings and of the best trial, trials run and seconds spent."""

    params: dict[str, dict[str, Any]]
    default_ndcg: float
    best_ndcg: float
    trials: int
    seconds: float
    hybrid: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "params": self.params,
            "default_ndcg": self.default_ndcg,
            "best_ndcg": self.best_ndcg,
            "trials": self.trials,
            "seconds": round(self.seconds, 3),
            **({"hybrid": self.hybrid} if self.hybrid else {}),
        }


@dataclass(slots=True)
class Validation:
    """A validation split as matrices: ``train`` (with its event log), ``relevant`` (csr of
    ``train``'s shape, the held-out new items per user)."""

    train: InteractionMatrix
    relevant: csr_matrix

    @classmethod
    def carve(
        cls,
        interactions: Sequence[Interaction],
        event_weights: Mapping[str, float] | None = None,
        half_life_days: float | None = None,
        item_ids: Sequence[str] = (),
    ) -> Validation | None:
        """The validation split of ``interactions``; None when no user has a new item in their
        validation part (too little history to tune on)."""
        split = validation_split(interactions)
        wanted = relevant_items(split)
        train = InteractionMatrix.build(
            split.train, event_weights, half_life_days, item_ids=item_ids
        )
        rows: list[int] = []
        cols: list[int] = []
        for user, items in wanted.items():
            row = train.user_index.get(user)
            for item in items:
                col = train.item_index.get(item)
                if row is not None and col is not None:
                    rows.append(row)
                    cols.append(col)
        if not rows:
            return None
        relevant = csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=train.matrix.shape
        )
        return cls(train, relevant)


def _optuna() -> Any:
    import optuna

    return optuna


def _quiet() -> None:
    optuna = _optuna()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("optuna").setLevel(logging.WARNING)


def validation_ndcg(
    model: Recommender, validation: Validation, k: int = 10, max_users: int = 2_000, seed: int = 0
) -> float:
    """nDCG@k of a model fitted on ``validation.train`` (plain rows; recent rows for a
    sequence-aware model), training items excluded."""
    users = np.flatnonzero(np.diff(validation.relevant.indptr))
    if users.size > max_users:
        users = np.sort(np.random.default_rng(seed).choice(users, max_users, replace=False))
    rows = csr_matrix(validation.train.matrix[users], dtype=np.float32)
    if uses_recent(model) and validation.train.log is not None:
        recent = user_rows(validation.train.log, validation.train.matrix.shape, Recency())[1]
        scores = np.asarray(model.score_users(rows, recent=recent[users]))  # type: ignore[call-arg]
    else:
        scores = np.asarray(model.score_users(rows), dtype=np.float32)
    r, c = rows.nonzero()
    scores[r, c] = -np.inf
    top = top_k_indices(scores, k)
    top[~np.isfinite(np.take_along_axis(scores, top, axis=1))] = -1
    relevant = validation.relevant[users]
    return float(ndcg_batch(hit_matrix(top, relevant), np.diff(relevant.indptr), k).mean())


def _suggest(trial: optuna.trial.BaseTrial, name: str) -> dict[str, Any]:
    """Settings of model ``name`` for one trial (prefixed parameter names)."""
    if name == "als":
        return {
            "factors": trial.suggest_categorical("als.factors", [16, 32, 64, 128]),
            "regularization": trial.suggest_float("als.regularization", 0.05, 50.0, log=True),
            "alpha": trial.suggest_float("als.alpha", 0.5, 50.0, log=True),
            "iterations": trial.suggest_categorical("als.iterations", [8, 15]),
        }
    if name == "ease":
        return {"l2": trial.suggest_float("ease.l2", 1.0, 5_000.0, log=True)}
    if name == "item_knn":
        return {"k": trial.suggest_categorical("item_knn.k", [20, 50, 100, 200])}
    if name == "transitions":
        return {
            "window": trial.suggest_int("transitions.window", 1, 5),
            "step_decay": trial.suggest_float("transitions.step_decay", 0.2, 1.0),
            "backward": trial.suggest_float("transitions.backward", 0.0, 1.0),
            "beta": trial.suggest_float("transitions.beta", 0.0, 0.8),
            "session_gap_seconds": trial.suggest_categorical(
                "transitions.session_gap_seconds", list(GAP_CHOICES)
            ),
        }
    if name == "session_knn":
        return {
            "neighbours": trial.suggest_categorical("session_knn.neighbours", [50, 100, 300]),
            "session_gap_seconds": trial.suggest_categorical(
                "session_knn.session_gap_seconds", list(VISIT_GAP_CHOICES)
            ),
            "beta": trial.suggest_float("session_knn.beta", 0.0, 0.8),
        }
    return {}


#: The constructor parameters each model's search tunes (:func:`_suggest`): its first trial
#: enqueues the defaults, read off a model built without parameters.
TUNED_PARAMETERS: dict[str, tuple[str, ...]] = {
    "als": ("factors", "regularization", "alpha", "iterations"),
    "ease": ("l2",),
    "item_knn": ("k",),
    "transitions": ("window", "step_decay", "backward", "beta", "session_gap_seconds"),
    "session_knn": ("neighbours", "session_gap_seconds", "beta"),
}


def _defaults(name: str) -> dict[str, Any]:
    names = TUNED_PARAMETERS.get(name, ())
    if not names:
        return {}
    model = build(name, {}, 0)
    return {f"{name}.{param}": getattr(model, param) for param in names}


def build(name: str, params: Mapping[str, Any], seed: int, **extra: Any) -> Recommender:
    """Model ``name`` with ``params`` (its constructor's keywords) and ``extra`` keywords."""
    factories: dict[str, Callable[..., Recommender]] = {
        "popularity": PopularityModel,
        "als": lambda **kw: ALSModel(seed=seed, **kw),
        "ease": EASEModel,
        "item_knn": ItemKNNModel,
        "transitions": TransitionModel,
        "session_knn": SessionKNNModel,
        "content": ContentModel,
    }
    if name not in factories:
        raise ValueError(f"cannot build model {name!r}")
    return factories[name](**{**params, **extra})


def _study(seed: int) -> optuna.Study:
    _quiet()
    optuna = _optuna()
    return optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed, multivariate=True)
    )


def _run(
    study: optuna.Study,
    objective: Callable[[optuna.trial.Trial], float],
    seconds: float,
    max_trials: int | None,
) -> float:
    started = time.perf_counter()
    study.optimize(objective, n_trials=max_trials, timeout=max(seconds, 0.0), catch=())
    return time.perf_counter() - started


def tune_model(
    name: str,
    interactions: Sequence[Interaction],
    seconds: float,
    *,
    seed: int = 0,
    k: int = 10,
    max_trials: int | None = None,
    validation: Validation | None = None,
    extra: Mapping[str, Any] | None = None,
) -> TuneResult:
    """Tune model ``name`` (one of :data:`TUNABLE_MODELS`) on a validation split of
    ``interactions`` for about ``seconds``. ``extra`` are fixed constructor keywords (e.g.
    EASE's ``max_items``)."""
    if name not in TUNABLE_MODELS:
        raise ValueError(f"model {name!r} has no tuning; choose from {', '.join(TUNABLE_MODELS)}")
    validation = validation or Validation.carve(interactions)
    fixed = dict(extra or {})
    if validation is None:
        return TuneResult({name: {}}, 0.0, 0.0, 0, 0.0)
    study = _study(seed)
    study.enqueue_trial(_defaults(name))

    def objective(trial: optuna.trial.Trial) -> float:
        model = build(name, _suggest(trial, name), seed, **fixed)
        model.fit(validation.train)
        return validation_ndcg(model, validation, k, seed=seed)

    spent = _run(study, objective, seconds, max_trials)
    best = study.best_trial
    params = _suggest(_optuna().trial.FixedTrial(best.params), name)
    default = study.trials[0].value or 0.0
    return TuneResult({name: params}, default, float(best.value or 0.0), len(study.trials), spent)


def tune_hybrid(
    interactions: Sequence[Interaction],
    components: Sequence[str],
    seconds: float,
    *,
    items: Mapping[str, Item] | None = None,
    seed: int = 0,
    k: int = 10,
    max_trials: int | None = None,
    event_weights: Mapping[str, float] | None = None,
    half_life_days: float | None = None,
    item_ids: Sequence[str] = (),
) -> TuneResult:
    """Tune the hybrid on a validation split of ``interactions`` in about ``seconds``, in
    stages: each tunable component gets its own study (an equal share of 80% of the budget:
    a joint search over every component's settings would spend a whole hybrid fit per trial
    and run out of budget after a handful), then the hybrid with those settings tunes its blend
    weights and fold-in half-life (:meth:`HybridModel.tune`) — once with the default settings
    and once with the tuned ones; the better of the two on validation wins. The result's
    ``hybrid`` holds the winner's weights and recency."""
    weights = DEFAULT_EVENT_WEIGHTS if event_weights is None else event_weights
    started = time.perf_counter()
    validation = Validation.carve(interactions, weights, half_life_days, item_ids)
    if validation is None:
        return TuneResult({c: {} for c in components}, 0.0, 0.0, 0, 0.0)
    tunable = [c for c in components if c in TUNABLE_MODELS]
    share = 0.8 * seconds / max(len(tunable), 1)
    params: dict[str, dict[str, Any]] = {}
    trials = 0
    for name in tunable:
        found = tune_model(
            name, interactions, share, seed=seed, k=k, max_trials=max_trials,
            validation=validation,
        )  # fmt: skip
        params[name] = found.params[name]
        trials += found.trials

    def blend(settings: Mapping[str, Mapping[str, Any]]) -> tuple[float, dict[str, Any]]:
        hybrid = HybridModel(
            {c: build(c, settings.get(c, {}), seed) for c in components}, "tune", seed=seed, k=k
        )
        hybrid.tune(validation.train, validation.relevant, items)
        chosen = {
            "weights": dict(hybrid.weights),
            "half_life": hybrid.recency.half_life,
            "recent_items": hybrid.recency.recent_items,
            "recent_decay": hybrid.recency.recent_decay,
        }
        return float(hybrid.validation_ndcg or 0.0), chosen

    default, default_choice = blend({})
    best, choice = blend(params)
    if best < default:
        best, choice, params = default, default_choice, {c: {} for c in tunable}
    return TuneResult(
        {c: params.get(c, {}) for c in tunable},
        default,
        best,
        trials + 2,
        time.perf_counter() - started,
        hybrid=choice,
    )
