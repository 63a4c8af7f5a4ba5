"""A weighted blend of recommenders, tuned on a validation split.

Each component's scores are normalised per user — min-max to [0, 1] or percentile rank — so
scales do not matter, then summed with the component weights. Rows where a component has no
opinion (all scores equal, e.g. ALS or EASE for a user with no history, content for items without
text) contribute 0, so popularity carries cold-start users and content carries new items.

Weights come from a coordinate search on a validation split carved from the training data (never
from the test set): start from the best single component (weight 1, others 0), then, for a few
passes, try each grid value for each component and keep it when validation nDCG@k improves; the
same from equal weights, and the better of the two is kept.

Order and recency (:mod:`loopwise.models.sequence`): when the training matrix carries its event
log, users are scored from *recency-weighted* rows (``recency.half_life``) and sequence-aware
components (the session :class:`~loopwise.models.sequence.TransitionModel`) from the *recent*
row of the user's last items. The tuning also chooses the fold-in half-life from
``half_life_grid`` (``None`` = plain rows): a weight search at each, the best kept, on the same
validation split.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
from scipy.sparse import csr_matrix

from loopwise.catalog.items import Item
from loopwise.models.base import BaseRecommender, Recommender, check_rows, top_k_indices
from loopwise.models.interactions import InteractionMatrix
from loopwise.models.metrics import hit_matrix, ndcg_batch
from loopwise.models.sequence import Recency, user_rows, uses_recent

Normalisation = Literal["minmax", "rank"]
DEFAULT_GRID: tuple[float, ...] = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0)
#: Items per component in the tuning's shortlist of each validation user (see ``_Candidates``).
SHORTLIST = 100
#: Fold-in half-lives (in interactions) the tuning tries; ``None`` = all history alike.
DEFAULT_HALF_LIFE_GRID: tuple[float | None, ...] = (None, 24.0, 8.0, 3.0)


def normalise_scores(scores: np.ndarray, how: Normalisation = "minmax") -> np.ndarray:
    """Per-row normalisation of scores (n_users, n_items) to [0, 1], float32; non-finite scores
    map to 0, rows with a single distinct finite value to all 0."""
    if how == "minmax":
        return _minmax(np.asarray(scores))
    s = np.asarray(scores, dtype=np.float64)
    finite = np.isfinite(s)
    low = np.where(finite, s, np.inf).min(axis=1, keepdims=True)
    high = np.where(finite, s, -np.inf).max(axis=1, keepdims=True)
    flat = ~(high > low)  # includes rows without any finite score
    if how == "minmax":
        span = np.where(flat, 1.0, high - low)
        out = (np.where(finite, s, low) - np.where(flat, 0.0, low)) / span
    elif how == "rank":
        from scipy.stats import rankdata  # imported on first use: ~0.7 s at start-up

        ranks = rankdata(np.where(finite, s, -np.inf), axis=1, method="average")
        out = (ranks - 1.0) / max(s.shape[1] - 1, 1)
        out = np.where(finite, out, 0.0)
    else:
        raise ValueError(f"normalisation must be 'minmax' or 'rank', not {how!r}")
    out = np.where(flat | ~finite, 0.0, out)
    return out.astype(np.float32)


def _minmax(scores: np.ndarray) -> np.ndarray:
    """Min-max rows to [0, 1] in float32 with few temporaries (the hybrid's hot path: a tuning
    normalises thousands x catalog-size matrices)."""
    if scores.ndim != 2:
        raise ValueError("scores must be 2-D (n_users, n_items)")
    out = np.array(scores, dtype=np.float32, copy=True)
    if out.shape[0] == 1 and out.size:  # one person (decide): a third of the numpy calls
        row = out[0]
        low32, high32 = row.min(), row.max()  # NaN or an infinity shows in one of them
        if np.isfinite(low32) and np.isfinite(high32):
            if high32 > low32:
                row -= low32
                row /= high32 - low32
            else:
                row[:] = 0.0
            return out
    finite = np.isfinite(out)
    all_finite = bool(finite.all())
    if all_finite:
        low = out.min(axis=1, keepdims=True) if out.size else np.zeros((out.shape[0], 1))
        high = out.max(axis=1, keepdims=True) if out.size else np.zeros((out.shape[0], 1))
    else:
        out[~finite] = np.inf
        low = out.min(axis=1, keepdims=True)
        out[~finite] = -np.inf
        high = out.max(axis=1, keepdims=True)
    flat = ~(high > low)
    span = np.where(flat, np.float32(1.0), high - low).astype(np.float32)
    out -= np.where(flat, np.float32(0.0), low).astype(np.float32)
    out /= span
    if not all_finite:
        out[~finite] = 0.0
    out[flat[:, 0]] = 0.0
    return out


class HybridModel(BaseRecommender):
    """Blend of ``components`` (name → recommender).

    ``weights`` is a name → weight mapping, or ``"tune"``: call :meth:`tune` with a validation
    split before :meth:`fit` (a hybrid fitted untuned uses equal weights; ``tuned`` says which).
    """

    name = "hybrid"

    def __init__(
        self,
        components: Mapping[str, Recommender],
        weights: Mapping[str, float] | Literal["tune"] = "tune",
        normalisation: Normalisation = "minmax",
        grid: Sequence[float] = DEFAULT_GRID,
        k: int = 10,
        passes: int = 2,
        max_tune_users: int = 1_000,
        seed: int = 0,
        recency: Recency | None = None,
        half_life_grid: Sequence[float | None] = DEFAULT_HALF_LIFE_GRID,
    ) -> None:
        if not components:
            raise ValueError("a hybrid needs at least one component")
        self.components = dict(components)
        if weights == "tune":
            self.weights = {name: 1.0 for name in self.components}
            self.tuned = False
        else:
            unknown = set(weights) - set(self.components)
            if unknown:
                raise ValueError(f"weights for unknown components: {sorted(unknown)}")
            self.weights = {name: float(weights.get(name, 0.0)) for name in self.components}
            self.tuned = True
        self.normalisation: Normalisation = normalisation
        self.grid = tuple(grid)
        self.k = k
        self.passes = passes
        self.max_tune_users = max_tune_users
        self.seed = seed
        self.recency = recency if recency is not None else Recency()
        self.half_life_grid = tuple(half_life_grid)
        self.validation_ndcg: float | None = None
        #: False: :meth:`fit` after tuning skips components of weight 0 (offline evaluation);
        #: the served hybrid fits all, since its components are also served alone.
        self.fit_unweighted = True

    def fit(self, matrix: InteractionMatrix, items: Mapping[str, Item] | None = None) -> None:
        """Fit the components on ``matrix``; a tuned hybrid with ``fit_unweighted`` False skips
        the components it gave weight 0 (they would not change a score)."""
        for name, component in self.components.items():
            if self.tuned and not self.fit_unweighted and not self.weights.get(name, 0.0):
                continue
            component.fit(matrix, items)
        self.n_items = matrix.matrix.shape[1]

    def user_rows(self, matrix: InteractionMatrix) -> tuple[csr_matrix, csr_matrix | None]:
        """``(rows, recent)`` for every user of ``matrix``: recency-weighted fold-in rows and
        recent rows from its event log, or the plain matrix and ``None`` without a log."""
        if matrix.log is None:
            return csr_matrix(matrix.matrix, dtype=np.float32), None
        return user_rows(matrix.log, matrix.matrix.shape, self.recency)

    def _component_scores(
        self, name: str, rows: csr_matrix, recent: csr_matrix | None
    ) -> np.ndarray:
        component = self.components[name]
        if uses_recent(component):
            return np.asarray(component.score_users(rows, recent=recent))  # type: ignore[call-arg]
        return np.asarray(component.score_users(rows))

    def _normalised(self, rows: csr_matrix, recent: csr_matrix | None) -> dict[str, np.ndarray]:
        return {
            name: normalise_scores(self._component_scores(name, rows, recent), self.normalisation)
            for name in self.components
            if self.weights.get(name, 0.0) != 0.0
        }

    @staticmethod
    def _blend(parts: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
        first = next(iter(parts.values()))
        out = np.zeros(first.shape, dtype=np.float32)
        for name, part in parts.items():
            w = weights.get(name, 0.0)
            if w:
                out += np.float32(w) * part
        return out

    def score_users(self, user_items: csr_matrix, recent: csr_matrix | None = None) -> np.ndarray:
        """Blended scores; ``recent`` (same shape) feeds the sequence-aware components (they
        read ``user_items`` without it)."""
        rows = check_rows(user_items, self.n_items)
        if recent is not None:
            recent = check_rows(recent, self.n_items)
        if not any(self.weights.values()):
            return np.zeros((rows.shape[0], self.n_items), dtype=np.float32)
        return self._blend(self._normalised(rows, recent), self.weights)

    def similar_items(self, item_index: int, n: int = 10) -> list[tuple[int, float]]:
        """Items the blend recommends to a user whose only interaction is ``item_index``."""
        row = csr_matrix(
            (np.ones(1, dtype=np.float32), ([0], [item_index])), shape=(1, self.n_items)
        )
        return self._similar_from(self.score_users(row)[0], item_index, n)

    def tune(
        self,
        train: InteractionMatrix,
        validation: csr_matrix,
        items: Mapping[str, Item] | None = None,
    ) -> dict[str, float]:
        """Fit the components on ``train`` and choose weights maximising nDCG@k on
        ``validation`` (csr, shape of ``train.matrix``: non-zero where an item is relevant for a
        user; users without relevant items are ignored). Returns and keeps the weights; fit
        again on the full training data afterwards."""
        self.tuned = False
        self.fit(train, items)
        relevant = csr_matrix(validation)
        if relevant.shape != train.matrix.shape:
            raise ValueError("validation must have the shape of the training matrix")
        users = np.flatnonzero(np.diff(relevant.indptr))
        if users.size > self.max_tune_users:
            rng = np.random.default_rng(self.seed)
            users = np.sort(rng.choice(users, self.max_tune_users, replace=False))
        if users.size == 0:
            self.tuned = False
            return dict(self.weights)
        relevant = relevant[users]
        n_relevant = np.diff(relevant.indptr)
        seen = csr_matrix(train.matrix[users]).toarray() > 0
        fixed: dict[str, np.ndarray] = {}  # components whose scores do not depend on the rows

        def parts_for(half_life: float | None) -> dict[str, np.ndarray]:
            recency = Recency(half_life, self.recency.recent_items, self.recency.recent_decay)
            if train.log is not None:
                all_rows, all_recent = user_rows(train.log, train.matrix.shape, recency)
                rows, recent = all_rows[users], all_recent[users]
            else:
                rows, recent = csr_matrix(train.matrix[users], dtype=np.float32), None
            parts: dict[str, np.ndarray] = {}
            for name, component in self.components.items():
                if name in fixed:
                    parts[name] = fixed[name]
                    continue
                scores = self._component_scores(name, rows, recent)
                parts[name] = normalise_scores(scores, self.normalisation)
                if uses_recent(component) or getattr(component, "ignores_rows", False):
                    fixed[name] = parts[name]
            return parts

        # a weight search at each half-life, the best on validation kept: the best weights
        # differ with the half-life, so a half-life tried with weights found for another can
        # look worse than it is
        half_life = self.recency.half_life
        shortlist = _Candidates(parts_for(half_life), seen, self.k)
        weights, best = self._search(shortlist, relevant, n_relevant)
        if train.log is not None:
            for candidate in dict.fromkeys(self.half_life_grid):
                if candidate == half_life:
                    continue
                shortlist = _Candidates(parts_for(candidate), seen, self.k)
                found, found_best = self._search(shortlist, relevant, n_relevant)
                if found_best > best + 1e-9:
                    weights, best, half_life = found, found_best, candidate
        self.recency = Recency(half_life, self.recency.recent_items, self.recency.recent_decay)
        self.weights, self.tuned, self.validation_ndcg = weights, True, best
        return dict(weights)

    def _search(
        self,
        candidates: _Candidates,
        relevant: csr_matrix,
        n_relevant: np.ndarray,
        start: Mapping[str, float] | None = None,
    ) -> tuple[dict[str, float], float]:
        """Coordinate search of blend weights over the components' normalised scores on the
        validation shortlist (see the module docstring), from ``start`` or the best single
        component: the best weights and their validation nDCG@k."""
        parts = candidates.values

        def objective(weights: Mapping[str, float]) -> float:
            return candidates.ndcg(weights, relevant, n_relevant)

        if start is None:
            # from the best single component and from equal weights, the better result kept:
            # the search is greedy, and from the best single one alone it can stop at a local
            # optimum (a strong sequence component shadowing the content model's cold items)
            singles = {name: objective({name: 1.0}) for name in parts}
            best_name = max(parts, key=lambda name: (singles[name], name == "popularity"))
            found = [
                self._search(candidates, relevant, n_relevant, {best_name: 1.0}),
                self._search(candidates, relevant, n_relevant, dict.fromkeys(parts, 1.0)),
            ]
            return max(found, key=lambda pair: pair[1])  # ties: the best single's
        weights = {name: float(start.get(name, 0.0)) for name in parts}
        best = objective(weights)
        for _ in range(self.passes):
            improved = False
            for name in parts:
                for value in self.grid:
                    if value == weights[name]:
                        continue
                    trial = {**weights, name: value}
                    if not any(trial.values()):
                        continue
                    score = objective(trial)
                    if score > best + 1e-9:
                        best, weights, improved = score, trial, True
            if not improved:
                break
        return weights, best


class _Candidates:
    """The tuning's shortlist: per validation user, the union of every component's top
    :data:`SHORTLIST` unseen items, with each component's normalised score there. An item in no
    component's shortlist cannot reach a blend's top k unless it is near the top of several,
    so the search ranks these few hundred items per user instead of the whole catalog."""

    def __init__(self, parts: Mapping[str, np.ndarray], seen: np.ndarray, k: int) -> None:
        self.k = k
        picks = []
        for part in parts.values():
            masked = np.where(seen, -np.inf, part)
            picks.append(top_k_indices(masked, min(SHORTLIST, part.shape[1])))
        cand = np.sort(np.concatenate(picks, axis=1), axis=1)
        duplicate = np.zeros(cand.shape, dtype=bool)
        duplicate[:, 1:] = cand[:, 1:] == cand[:, :-1]
        rows = np.arange(cand.shape[0])[:, None]
        self.items = cand
        self.invalid = duplicate | seen[rows, cand]
        self.values = {name: part[rows, cand] for name, part in parts.items()}

    def ndcg(
        self, weights: Mapping[str, float], relevant: csr_matrix, n_relevant: np.ndarray
    ) -> float:
        blended = np.zeros(self.items.shape, dtype=np.float32)
        for name, values in self.values.items():
            w = weights.get(name, 0.0)
            if w:
                blended += np.float32(w) * values
        blended[self.invalid] = -np.inf
        top = top_k_indices(blended, self.k)
        chosen = np.take_along_axis(self.items, top, axis=1)
        chosen[~np.isfinite(np.take_along_axis(blended, top, axis=1))] = -1
        return float(ndcg_batch(hit_matrix(chosen, relevant), n_relevant, self.k).mean())
