"""Trained models as decide strategies, with real-time fold-in and cold start.

A :class:`ModelStrategy` serves one trained model (``hybrid``, ``als``, ``ease``, ``item_knn``,
``content``) of one loaded :class:`ModelBundle`. At decide time it reads the user's *current*
interactions from the profile — ``affinity.items`` (decayed, event-weighted item scores kept by
the profile reducer), ``recently_viewed``, ``cart.items`` and ``purchased_items`` — builds their
item row and scores it with the model's fold-in (ALS recomputes the user factors from the row,
EASE multiplies the row by its item-item matrix, item-kNN sums the neighbours of the row's
items), so events since the last training change the very next decision.

Cold start, said in each decision's reasons:

- no interactions → popularity within the visitor's most specific segment (segments include the
  request's context), marked as a fallback (not AI-influenced);
- fewer than ``training.few_events`` distinct items (hybrid only) → content-based + item-kNN;
- otherwise → the model itself (the hybrid blend for ``hybrid``);
- items the model has no interactions for (new items, also catalog items added after training)
  are scored by content similarity to the user's items, when a content model was trained;
- items the model scores 0 after normalisation (no evidence relating them to the user's) are
  not its picks: popular items fill the rest of the list, marked as a fallback.

The hybrid's 0-1 scores are blended with popularity within the person's categories
(``strategy_params.category_popularity``, default :data:`CATEGORY_POPULARITY` of the score;
0 for the single models): ``category_affinity``'s score, decayed popularity times the affinity
of the item's category among the person's top 3, over the best. The models know which items go
with the person's; popularity knows which of those most people like (quality, price), which the
fold-in of a short history does not. An item popular in the person's categories is a model pick
even where the model alone has no evidence for it.

Strategies never return items ``ctx.eligible`` rejects — the slot's filters, which by default
drop what the user bought (``exclude_purchased``) and can drop what they viewed
(``exclude_seen``). Items the user already interacted with stay candidates at
``strategy_params.seen_weight`` (default :data:`SEEN_DISCOUNT`) of their score — new finds
first — except the items of the person's *previous visit*, which keep
``strategy_params.previous_visit_weight`` (default :data:`PREVIOUS_VISIT_WEIGHT`): people come
back to what they were considering last time and move on from what they looked at and set
aside before. The previous visit is ``profile.viewed_last_visit`` (the profile's recent views
split where two are more than ``session_timeout_minutes`` apart); the visit in progress
(``viewed_this_visit``) keeps ``seen_weight``: it is in front of them.

Measured on the simulator (``loopwise demo --in-process --users 2000 --days 14 --strategy
hybrid --train-every 3``: the ground truth of the personalized arm on days 1-13, CTR over both
list slots; seeds 7 / 11 / 13; "after" measured with the view times handed to the strategy by
the experiment's script, which ``profile.viewed_last_visit`` now carries — seed 7 through it:
7.50%, 0.276, 3.72% over all 14 days):

=========================  =====================  =====================  =====================
personalized arm           CTR                    bounce                 visits with an order
=========================  =====================  =====================  =====================
hybrid, before             5.64% / 5.13% / 5.95%  0.319 / 0.329 / 0.301  2.81% / 2.25% / 3.31%
``category_affinity``      6.67% / 6.07% / 6.97%  0.275 / 0.278 / 0.268  3.77% / 2.92% / 3.66%
hybrid, after              7.52% / 7.03% / 7.86%  0.275 / 0.284 / 0.274  3.86% / 2.97% / 3.62%
no previous-visit weight   5.87% / 5.72% / 6.23%  0.294 / 0.293 / 0.294  3.22% / 2.25% / 3.31%
=========================  =====================  =====================  =====================

Before, the hybrid's home-page list held 86% items the person had never viewed, 10% from the
previous visit and 5% from older visits (``category_affinity``: 62%, 20%, 17%), though items of
the previous visit were clicked 22-28% of the times shown against 8% for new ones and 6% for
older ones, and the true utility of what it showed was lower (mean 2.14 above the person's
average, ``category_affinity`` 2.66). ``seen_weight`` 1 alone (seed 7: 7.35%, 0.271, 3.40%;
seed 11: 6.84%, 0.280, 3.10%) brings the old items back too; with the blend and no previous-visit
weight it gives 7.01% / 6.59% / 7.32%, 0.272 / 0.269 / 0.262, 3.81% / 2.88% / 3.62%; the
previous-visit weight without the popularity blend gives 7.57%, 0.295, 3.45% (seed 7): more
clicks, more bounces (the older items it drops were good ones for the person; the blend puts
good ones in their place). Runs of one seed vary by about ±0.25 points of CTR and ±0.2 of
conversion (training and time budgets are not deterministic); a fifth of the arm's visits are
first visits (popular items, as with ``category_affinity``). Offline evaluation still ranks
without train items, as its protocol says. Scoring reads one item row: a dense score vector
per model and ``numpy.argpartition`` for the top.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix

from loopwise.catalog.items import Item
from loopwise.config import TRAINABLE_MODELS
from loopwise.decide import explain
from loopwise.decide.request import ReasonKind
from loopwise.decide.strategies import (
    PopularStrategy,
    ScoredItem,
    StrategyContext,
    category_weights,
    popular_instead,
    popular_items,
    profile_ids,
    profile_value,
)
from loopwise.models.als import ALSModel
from loopwise.models.content import ContentModel, item_text
from loopwise.models.ease import EASEModel
from loopwise.models.hybrid import HybridModel, normalise_scores
from loopwise.models.sequence import Recency, recent_row_from_ids, uses_recent
from loopwise.models.training import TrainedModels

#: Strategy names a slot may use before any model is trained.
MODEL_STRATEGIES: tuple[str, ...] = TRAINABLE_MODELS
#: Components of the few-events (cold start) blend.
FEW_EVENTS_COMPONENTS: tuple[str, ...] = ("content", "item_knn")


#: In-session intent: the newest recently viewed item counts ``1 + RECENCY_BOOST`` times a view,
#: the next ``RECENCY_DECAY`` less of the boost, and so on, so the latest views steer the next
#: decision even against a long history (the trained models weigh all history alike).
RECENCY_BOOST = 2.0
RECENCY_DECAY = 0.7
#: Items the user already interacted with keep this share of their (0-1 normalised) score.
SEEN_DISCOUNT = 0.5
#: Items viewed in the person's previous visit keep this share instead (``previous_visit_weight``).
PREVIOUS_VISIT_WEIGHT = 1.0
#: Share of the hybrid's (0-1 normalised) score that is popularity within the person's
#: categories (``category_popularity``, 0 for the other models; :meth:`ModelBundle.
#: category_popularity`).
CATEGORY_POPULARITY = 0.5


def user_history(profile: Mapping[str, Any], weights: Mapping[str, float]) -> dict[str, float]:
    """The user's item weights now: ``affinity.items`` where present, else the event weight of
    the list the item is in (purchase > cart > view; ``weights`` by event kind); recently viewed
    items get the in-session boost (:data:`RECENCY_BOOST`)."""
    history: dict[str, float] = {}
    affinity = profile_value(profile, "affinity.items")
    if isinstance(affinity, Mapping):
        for key, value in affinity.items():
            if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
                history[str(key)] = float(value)
    for path, event in (
        ("recently_viewed", "item_view"),
        ("cart.items", "add_to_cart"),
        ("purchased_items", "purchase"),
    ):
        weight = float(weights.get(event, 1.0)) or 1.0
        for rank, item_id in enumerate(profile_ids(profile, path)):
            boost = 1.0 + RECENCY_BOOST * RECENCY_DECAY**rank if path == "recently_viewed" else 1.0
            history[item_id] = max(history.get(item_id, 0.0), weight * boost)
    return history


def seen_weight(params: Mapping[str, Any]) -> float:
    """``strategy_params.seen_weight`` clamped to [0, 1], else :data:`SEEN_DISCOUNT`."""
    value = params.get("seen_weight", SEEN_DISCOUNT)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:  # NaN
        return SEEN_DISCOUNT
    return min(1.0, max(0.0, float(value)))


def _weight_param(params: Mapping[str, Any], key: str, default: float) -> float:
    value = params.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:  # NaN
        return default
    return min(1.0, max(0.0, float(value)))


def last_visit_items(profile: Mapping[str, Any]) -> list[str]:
    """The items the person viewed in their previous visit (``profile.viewed_last_visit``, see
    ``Profile.visit_views``); empty for a mapping without it."""
    return profile_ids(profile, "viewed_last_visit")


class ModelBundle:
    """One loaded model version, ready to score single users. Immutable once built (except the
    cache of catalog items added after training), shared by the strategies of the version."""

    def __init__(self, trained: TrainedModels, version: str) -> None:
        self.trained = trained
        self.version = version
        self.models = trained.models
        self.item_ids = list(trained.item_ids)
        self.n_items = len(self.item_ids)
        self.index = {item_id: i for i, item_id in enumerate(self.item_ids)}
        self.cold = np.asarray(trained.item_users, dtype=np.int64) == 0
        self.cold_items = bool(self.cold.any())
        self.few_events = trained.settings.few_events
        self.event_weights = dict(trained.settings.event_weights)
        content = trained.models.get("content")
        self.content = content if isinstance(content, ContentModel) else None
        self._lock = threading.Lock()
        self._als_items: dict[str, np.ndarray] = {}
        self._extra: tuple[Mapping[str, Item] | None, int, list[str], csr_matrix | None] = (
            None,
            -1,
            [],
            None,
        )
        self._by_category: tuple[Mapping[str, Item] | None, int, dict[str, np.ndarray]] = (
            None,
            -1,
            {},
        )
        self._warm_up()

    def _warm_up(self) -> None:
        """Prepare for single-user scoring before the first request: ALS folds one row in per
        call, where implicit's OpenMP threads only add start-up cost (milliseconds per call),
        EASE's item-item matrix is made C-contiguous, and every model scores once so lazy state
        (implicit's ``YtY``) is built now."""
        for name, model in self.models.items():
            if isinstance(model, ALSModel) and model.model is not None:
                model.model.num_threads = 1
                self._als_items[name] = np.ascontiguousarray(model.item_factors, np.float32)
            if isinstance(model, EASEModel) and model.weights is not None:
                # scipy's inverse comes back in Fortran order; a sparse row times a
                # non-contiguous dense matrix copies the whole matrix on every call
                model.weights = np.ascontiguousarray(model.weights)
        if self.n_items:
            row = self.row({self.item_ids[0]: 1.0})
            for name in self.models:
                self.scores(name, row)

    def row(self, history: Mapping[str, float]) -> csr_matrix:
        cols = [self.index[i] for i in history if i in self.index]
        vals = [history[self.item_ids[c]] for c in cols]
        return csr_matrix(
            (np.asarray(vals, dtype=np.float32), (np.zeros(len(cols), dtype=np.int64), cols)),
            shape=(1, self.n_items),
        )

    def recent_row(self, profile: Mapping[str, Any], name: str) -> csr_matrix | None:
        """The user's recent row (newest ``recently_viewed`` first, then the cart) for the
        sequence-aware models, with model ``name``'s recency settings (the hybrid's own, else
        the default); None when no served model reads one."""
        model = self.models.get(name)
        if not (uses_recent(model) or isinstance(model, HybridModel)):
            return None
        # a hybrid pickled before sequence-awareness has no recency: the defaults
        recency = getattr(model, "recency", None) or Recency()
        ids = profile_ids(profile, "recently_viewed") + profile_ids(profile, "cart.items")
        return recent_row_from_ids(ids, self.index, self.n_items, recency)

    def scores(self, name: str, row: csr_matrix, recent: csr_matrix | None = None) -> np.ndarray:
        """One user's scores from model ``name`` (float32, (n_items,)); the hybrid blends its
        components' min-max normalised scores with its tuned weights. ``recent`` (the recent
        row, :meth:`recent_row`) feeds the session transitions model."""
        model = self.models[name]
        if isinstance(model, HybridModel):
            parts = {
                component: normalise_scores(self.scores(component, row, recent)[None, :])[0]
                for component, weight in model.weights.items()
                if weight
            }
            return self.blend(parts, model.weights)
        if uses_recent(model):
            scored = model.score_users(row, recent=recent)  # type: ignore[call-arg]
            return np.asarray(scored[0], dtype=np.float32)
        if isinstance(model, ALSModel) and model.model is not None:
            # implicit's exact fold-in; skips ALSModel's per-call BLAS thread limit (one row)
            factors = np.ravel(model.model.recalculate_user(0, row)).astype(np.float32)
            # einsum, not BLAS: a threaded gemv for one user costs more in thread hand-offs
            return np.einsum("ij,j->i", self._als_items[name], factors)
        if isinstance(model, ContentModel):
            content = self.content_scores(row)
            return content if content is not None else np.zeros(self.n_items, dtype=np.float32)
        return np.asarray(model.score_users(row)[0], dtype=np.float32)

    def blend(self, parts: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
        out = np.zeros(self.n_items, dtype=np.float32)
        for component, part in parts.items():
            out += np.float32(weights.get(component, 0.0)) * part
        return out

    def few_events_scores(self, row: csr_matrix) -> np.ndarray:
        parts = {
            c: normalise_scores(self.scores(c, row)[None, :])[0]
            for c in FEW_EVENTS_COMPONENTS
            if c in self.models
        }
        return self.blend(parts, dict.fromkeys(parts, 1.0 / max(len(parts), 1)))

    def content_profile(self, row: csr_matrix) -> np.ndarray | None:
        """The user's L2-normalised TF-IDF profile (dense over terms): ``ContentModel``'s
        weighted mean of their items' rows, or None without text."""
        if self.content is None or self.content.vectors is None or row.nnz == 0:
            return None
        profile = np.asarray((row @ self.content.vectors).toarray(), dtype=np.float32).ravel()
        norm = float(np.linalg.norm(profile))
        return profile / norm if norm > 0 else None

    def content_scores(self, row: csr_matrix) -> np.ndarray | None:
        """Cosine of every item's TF-IDF to the user's profile (``ContentModel.score_users``
        as one sparse mat-vec), or None without a content model or textual history."""
        profile = self.content_profile(row)
        if profile is None or self.content is None or self.content.vectors is None:
            return None
        return np.asarray(self.content.vectors @ profile, dtype=np.float32)

    def category_positions(self, catalog: Mapping[str, Item]) -> dict[str, np.ndarray]:
        """Category -> positions of the model's items in it (cached per catalog)."""
        source, size, found = self._by_category
        if source is catalog and size == len(catalog):
            return found
        with self._lock:
            lists: dict[str, list[int]] = {}
            for position, item_id in enumerate(self.item_ids):
                item = catalog.get(item_id)
                for category in item.categories if item is not None else ():
                    lists.setdefault(category, []).append(position)
            found = {c: np.asarray(p, dtype=np.int64) for c, p in lists.items()}
            self._by_category = (catalog, len(catalog), found)
        return found

    def category_popularity(
        self, ctx: StrategyContext, weights: Mapping[str, float] | None = None
    ) -> np.ndarray | None:
        """Popularity within the person's categories, 0-1 over the model's items: decayed
        popularity times the weight of the item's strongest category among the person's top 3
        (:func:`category_weights`; ``category_affinity``'s score), over the best such item; None
        without category interests or activity in them."""
        if weights is None:
            weights = category_weights(ctx.profile)
        if not weights:
            return None
        by_category = self.category_positions(ctx.catalog)
        weight = np.zeros(self.n_items, dtype=np.float32)
        for category, w in weights.items():
            positions = by_category.get(category)
            if positions is not None:
                weight[positions] = np.maximum(weight[positions], np.float32(w))
        pool = np.flatnonzero(weight)
        if pool.size == 0:
            return None
        ids = [self.item_ids[p] for p in pool]
        popularity = ctx.stats.scores(ids, ctx.now)
        values = np.fromiter((popularity[i] for i in ids), dtype=np.float32, count=len(ids))
        values *= weight[pool]
        high = float(values.max())
        if not high > 0:
            return None
        out = np.zeros(self.n_items, dtype=np.float32)
        out[pool] = values / np.float32(high)
        return out

    def extra_items(self, catalog: Mapping[str, Item]) -> tuple[list[str], csr_matrix | None]:
        """Catalog items added after training and their TF-IDF rows (cached per catalog)."""
        source, size, ids, vectors = self._extra
        if source is catalog and size == len(catalog):
            return ids, vectors
        with self._lock:
            ids = [i for i in catalog if i not in self.index]
            vectors = None
            if ids and self.content is not None and self.content.vectorizer is not None:
                texts = [item_text(catalog[i], self.content.fields) for i in ids]
                vectors = csr_matrix(
                    _normalize(self.content.vectorizer.transform(texts)), dtype=np.float32
                )
            self._extra = (catalog, len(catalog), ids, vectors)
        return ids, vectors

    def extra_scores(self, catalog: Mapping[str, Item], row: csr_matrix) -> tuple[list[str], Any]:
        ids, vectors = self.extra_items(catalog)
        profile = self.content_profile(row) if ids and vectors is not None else None
        if profile is None or vectors is None:
            return [], np.zeros(0, dtype=np.float32)
        return ids, np.asarray(vectors @ profile, dtype=np.float32)


def on_model_scale(
    cold_content: np.ndarray, warm_content: np.ndarray, warm_scores: np.ndarray
) -> np.ndarray:
    """Content scores of cold items mapped onto the model's scale by quantile: a cold item
    whose content similarity beats a fraction q of the warm items' gets the model score that
    beats the same fraction q of warm items. So a new item ranks where an equally similar
    known item would, whatever the scales of the two models."""
    finite = np.isfinite(warm_scores)
    reference_content = np.sort(warm_content[finite])
    reference_scores = np.sort(warm_scores[finite])
    if reference_scores.size == 0:
        return cold_content.astype(np.float32)
    q = np.searchsorted(reference_content, cold_content, side="right") / reference_content.size
    positions = np.clip(np.ceil(q * reference_scores.size).astype(np.int64) - 1, 0, None)
    out = reference_scores[positions]
    return np.where(q > 0, out, reference_scores[0] - 1e-6).astype(np.float32)


def top_eligible(
    scores: np.ndarray, ctx: StrategyContext, ids: list[str], n: int
) -> list[tuple[str, float, int]]:
    """Best ``n`` ``(id, score, position)`` with finite scores that ``ctx.eligible`` accepts.
    Takes the top by ``argpartition`` and widens only when filters reject too many."""
    finite = np.flatnonzero(np.isfinite(scores))
    if finite.size == 0 or n <= 0:
        return []
    values = scores[finite]
    want = min(finite.size, max(4 * n, 32))
    out: list[tuple[str, float, int]] = []
    while True:
        if want < finite.size:
            part = np.argpartition(-values, want - 1)[:want]
        else:
            part = np.arange(finite.size)
        order = part[np.lexsort((finite[part], -values[part]))]
        out = []
        for j in order:
            position = int(finite[j])
            item_id = ids[position]
            if ctx.eligible(item_id):
                out.append((item_id, float(values[j]), position))
                if len(out) >= n:
                    return out
        if want >= finite.size:
            return out
        want = min(finite.size, want * 4)


class ModelStrategy:
    """Serves model ``name`` of ``bundle`` (see the module docstring)."""

    personal = True
    trained = True

    def __init__(self, name: str, bundle: ModelBundle) -> None:
        if name not in bundle.models:
            raise ValueError(f"model {name!r} is not in version {bundle.version}")
        self.name = name
        self.bundle = bundle

    def recommend(self, ctx: StrategyContext, n: int) -> list[ScoredItem]:
        bundle = self.bundle
        history = user_history(ctx.profile, bundle.event_weights)
        row = bundle.row(history)
        if not history:
            return self._new_visitor(ctx, n)
        if row.nnz == 0:
            # the model knows none of the user's items (all added after training)
            return self._new_visitor(ctx, n, known_items=False)
        if self.name == "hybrid" and len(history) < bundle.few_events:
            scores = bundle.few_events_scores(row)
            text = explain.model_few_events(len(history), bundle.few_events)
            kind: ReasonKind = "cold_start"
        else:
            scores = bundle.scores(self.name, row, bundle.recent_row(ctx.profile, self.name))
            text, kind = explain.model_personal(self.name, bundle.version, len(history)), "model"
        scores = normalise_scores(scores[None, :])[0]
        default = CATEGORY_POPULARITY if self.name == "hybrid" else 0.0
        share = _weight_param(ctx.params, "category_popularity", default)
        weights = category_weights(ctx.profile) if share > 0 else {}
        prior = bundle.category_popularity(ctx, weights) if weights else None
        if prior is not None:  # within the person's categories, what many people like
            scores = np.float32(1.0 - share) * scores + np.float32(share) * prior
            text = explain.with_category_popularity(text, list(weights), share)
        # new finds first; known items may return, those of the previous visit at their own weight
        previous = [bundle.index[i] for i in last_visit_items(ctx.profile) if i in bundle.index]
        kept = scores[previous].copy()
        scores[row.indices] *= seen_weight(ctx.params)
        if previous:
            weight = _weight_param(ctx.params, "previous_visit_weight", PREVIOUS_VISIT_WEIGHT)
            scores[previous] = kept * weight
        ids = bundle.item_ids
        cold = np.zeros(bundle.n_items, dtype=bool)
        content = None
        if bundle.cold_items or bundle.extra_items(ctx.catalog)[0]:
            content = bundle.content_scores(row)
        if content is not None:
            extra_ids, extra = bundle.extra_scores(ctx.catalog, row)
            cold = bundle.cold.copy()
            cold[row.indices] = False
            if extra_ids:
                ids = ids + extra_ids
                content = np.concatenate([content, extra])
                scores = np.concatenate([scores, np.zeros(len(extra_ids), dtype=np.float32)])
                cold = np.concatenate([cold, np.ones(len(extra_ids), dtype=bool)])
            if cold.any():
                scores[cold] = on_model_scale(content[cold], content[~cold], scores[~cold])
        # a normalised score of 0 is no evidence (the lowest score, or an item unrelated to the
        # user's): such items are not the model's picks; popular ones fill the list instead
        picked = [p for p in top_eligible(scores, ctx, ids, n) if p[1] > 0]
        new_item = explain.MODEL_NEW_ITEM
        out = [
            ScoredItem(
                item_id,
                score,
                reason=new_item if cold[position] else text,
                reason_kind="cold_start" if cold[position] else kind,
            )
            for item_id, score, position in picked
        ]
        if len(out) < n:
            skip = [item.item_id for item in out]
            more = popular_instead(ctx, n - len(out), explain.MODEL_NO_MORE_EVIDENCE, skip)
            out += [dataclasses.replace(item, reason_kind="cold_start") for item in more]
        return out

    def _new_visitor(
        self, ctx: StrategyContext, n: int, known_items: bool = True
    ) -> list[ScoredItem]:
        """Context- and segment-aware popularity (not AI: marked as a fallback)."""
        per_segment = dataclasses.replace(ctx, params={**ctx.params, "per_segment": True})
        segment = PopularStrategy._segment(per_segment, n)
        text = explain.model_new_visitor(segment, known_items)
        if segment is None:
            items = popular_items(ctx, n)
        else:
            items = popular_items(ctx, n, segment=segment, fill_catalog=False)
            items += popular_items(ctx, n - len(items), skip=[i.item_id for i in items])
        return [
            dataclasses.replace(item, reason=text, fallback=True, reason_kind="cold_start")
            for item in items
        ]


class UntrainedModelStrategy:
    """Stands in for a model strategy before it was trained: popular items, saying so."""

    personal = True
    trained = False

    def __init__(self, name: str) -> None:
        self.name = name

    def recommend(self, ctx: StrategyContext, n: int) -> list[ScoredItem]:
        why = explain.model_not_trained(self.name)
        return [dataclasses.replace(i, reason_kind="model") for i in popular_instead(ctx, n, why)]


def strategies_for(bundle: ModelBundle) -> list[ModelStrategy]:
    """A strategy per trained model of ``bundle`` (popularity stays the built-in ``popular``)."""
    return [ModelStrategy(name, bundle) for name in MODEL_STRATEGIES if name in bundle.models]


def _normalize(matrix: Any) -> Any:
    from sklearn.preprocessing import normalize  # imported on first use: ~0.4 s at start-up

    return normalize(matrix)
