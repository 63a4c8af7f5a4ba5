"""K-Means segments: profiles grouped by behaviour and taste, published as ordinary segments.

Pure: attribute dicts (``Profile.attributes(now, settings)``) in, a :class:`ClusterModel` out. The
engine stores the model, adds ``profile.cluster`` (= :meth:`ClusterModel.assign`) whenever it
builds a profile's attributes, and registers :meth:`ClusterModel.segments` (condition
``{"profile.cluster": "cluster_<n>"}``) beside the built-in and workspace segments, so membership
follows the profile as it changes and entering/leaving is recorded like any segment's.

Features, one row per profile:

=================  =======================================================  ==========
feature            from the attributes                                      transform
=================  =======================================================  ==========
``recency_days``   ``days_since_last_seen``                                 ``log1p``
``sessions``       ``sessions`` (frequency)                                 ``log1p``
``item_views``     ``item_views`` (depth)                                   ``log1p``
``purchases``      ``purchases``                                            ``log1p``
``revenue``        ``revenue`` (monetary value)                             ``log1p``
``engagement``     ``engagement`` (0-100)                                   none
``category:<c>``   ``affinity.categories[c] / sum(affinity.categories)``    none
=================  =======================================================  ==========

The categories are the ``max_categories`` (8) with the largest summed share over the population
(ties by name), in name order. Every column is standardized, ``z = (x - mean) / std`` (scikit-learn
``StandardScaler``; a constant column keeps std 1), then the category block is multiplied by
``sqrt(category_weight / n_categories)``: taste weighs like ``category_weight`` (2) behavioural
features however many categories there are.

k: ``KMeans(k, n_init=4, random_state=seed)`` for every k in ``[k_min, k_max]`` (fitted on at
most 50,000 profiles sampled with the seed; all profiles are then assigned); the k with the highest
mean silhouette wins, ties to the smaller k. Silhouettes are computed on one sample of at most
5,000 profiles shared by every k (one float32 distance matrix, at most 100 MB), so the k are
compared on the same points.

Keys: ``cluster_1`` .. ``cluster_k``, largest cluster first. When a previous model over the same
features is given, each new cluster is matched to the nearest previous centroid (Hungarian
assignment, ``scipy.optimize.linear_sum_assignment``) and keeps its key, so rules that target
``cluster_2`` keep targeting the same kind of visitor after a refit; unmatched clusters take the
smallest unused numbers.

Names: a cluster's z-score on a feature is its centroid's distance from the population mean in
standard deviations (unweighted). Features with ``|z| >= 0.5`` are candidates, at most one per group
(recency, activity, monetary, engagement, taste); a category counts only when high. The name is
the most distinctive behaviour phrase and the most distinctive category ("High spenders,
running"), or the two most distinctive behaviour phrases when no category stands out ("Lapsed,
low engagement"); clusters whose names collide take their next phrase, then their number. A cluster
without a distinctive feature is "Typical visitors".

Assignment is the rule K-Means fitted with: the nearest centroid (squared Euclidean distance) in
the weighted standardized space; plain numpy, microseconds per profile.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from loopwise.errors import Conflict, ValidationFailed
from loopwise.segments.registry import SegmentDefinition

MODEL_VERSION = 1
MIN_PROFILES = 20
MAX_K = 20
DEFAULT_K_RANGE = (2, 8)
SILHOUETTE_SAMPLE = 5_000
FIT_SAMPLE = 50_000
N_INIT = 4
MAX_CATEGORIES = 8
CATEGORY_WEIGHT = 2.0
DISTINCTIVE_Z = 0.5  # |z| from which a feature names a cluster
SHOWN_FEATURES = 4  # distinctive features reported per cluster

CLUSTER_ATTRIBUTE = "cluster"  # profile.cluster
CLUSTER_KEY_PREFIX = "cluster_"
CLUSTER_KEY = re.compile(r"cluster_[1-9][0-9]*")
CATEGORY_PREFIX = "category:"

Matrix = npt.NDArray[np.float64]

# feature -> (attribute, log1p?, group, phrase when high, phrase when low)
_BEHAVIOUR: dict[str, tuple[str, bool, str, str, str | None]] = {
    "recency_days": ("days_since_last_seen", True, "recency", "lapsed", "recently active"),
    "sessions": ("sessions", True, "activity", "frequent visitors", "rare visitors"),
    "item_views": ("item_views", True, "activity", "heavy browsers", "light browsers"),
    "purchases": ("purchases", True, "monetary", "repeat buyers", "non-buyers"),
    "revenue": ("revenue", True, "monetary", "high spenders", "low spenders"),
    "engagement": ("engagement", False, "engagement", "highly engaged", "low engagement"),
}
BEHAVIOUR_FEATURES: tuple[str, ...] = tuple(_BEHAVIOUR)
_ATTRIBUTES: tuple[str, ...] = tuple(spec[0] for spec in _BEHAVIOUR.values())
_LOGGED = np.flatnonzero([spec[1] for spec in _BEHAVIOUR.values()])
_LOGGED_INDICES: tuple[int, ...] = tuple(int(i) for i in _LOGGED)


def is_cluster_key(key: str) -> bool:
    """``cluster_<n>`` (n >= 1): the keys reserved for published clusters."""
    return CLUSTER_KEY.fullmatch(key) is not None


def _number(value: Any) -> float:
    """A finite positive number, else 0 (missing, negative, NaN, bool or not a number)."""
    if type(value) is float:  # the common case, checked first: this runs on every decision
        return value if 0.0 < value < math.inf else 0.0
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    number = float(value)
    return number if 0.0 < number < math.inf else 0.0


def category_shares(attributes: Mapping[str, Any]) -> dict[str, float]:
    """Each category's share of the profile's (decayed) category affinity; sums to 1 or empty."""
    affinity = attributes.get("affinity")
    scores = affinity.get("categories") if isinstance(affinity, Mapping) else None
    if not isinstance(scores, Mapping):
        return {}
    values = {str(k): _number(v) for k, v in scores.items()}
    total = sum(values.values())
    return {k: v / total for k, v in values.items() if v > 0} if total > 0 else {}


def raw_features(attributes: Mapping[str, Any], categories: Sequence[str]) -> list[float]:
    """The untransformed feature row: behaviour in ``BEHAVIOUR_FEATURES`` order, then shares."""
    row = [_number(attributes.get(name)) for name in _ATTRIBUTES]
    affinity = attributes.get("affinity")
    scores = affinity.get("categories") if isinstance(affinity, Mapping) else None
    if not isinstance(scores, Mapping) or not scores:
        return row + [0.0] * len(categories)
    total = sum(_number(v) for v in scores.values())
    if total <= 0:
        return row + [0.0] * len(categories)
    return row + [_number(scores.get(c)) / total for c in categories]


def _transform(raw: Matrix) -> Matrix:
    """log1p on the count and money columns (heavy-tailed), the rest as is."""
    out = raw.copy()
    out[:, _LOGGED] = np.log1p(raw[:, _LOGGED])
    return out


def top_categories(rows: Sequence[Mapping[str, Any]], limit: int) -> list[str]:
    """The ``limit`` categories with the largest summed share over the population, in name
    order (so refits over the same categories have the same features, whatever their ranks)."""
    totals: dict[str, float] = {}
    for attributes in rows:
        for category, share in category_shares(attributes).items():
            totals[category] = totals.get(category, 0.0) + share
    ranked = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))
    return sorted(category for category, _ in ranked[:limit])


def feature_label(feature: str) -> str:
    return feature.removeprefix(CATEGORY_PREFIX)


def format_value(value: float) -> str:
    """For reading: whole numbers from 100 up (``1,180``), else three significant digits."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


@dataclass(frozen=True, slots=True)
class Cluster:
    """One published cluster: its key, generated name, size and what sets it apart."""

    key: str
    name: str
    size: int
    share: float  # of the profiles the model was fitted on
    # most distinctive first: {"feature", "z", "mean" (cluster, raw units), "overall" (population)}
    distinctive: tuple[dict[str, Any], ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "size": self.size,
            "share": self.share,
            "distinctive": [dict(d) for d in self.distinctive],
        }

    def segment(self, k: int, fitted_at: str) -> SegmentDefinition:
        shown = ", ".join(
            f"{feature_label(d['feature'])} {format_value(d['mean'])} vs "
            f"{format_value(d['overall'])}"
            for d in self.distinctive[:3]
        )
        return SegmentDefinition(
            key=self.key,
            name=self.name,
            description=f"K-Means cluster ({k} clusters, fitted {fitted_at}); cluster mean vs "
            f"all profiles: {shown}.",
            condition={f"profile.{CLUSTER_ATTRIBUTE}": self.key},
        )


@dataclass(frozen=True, eq=False)
class ClusterModel:
    """A fitted clustering: enough to assign any profile and to describe every cluster."""

    features: tuple[str, ...]
    categories: tuple[str, ...]
    mean: Matrix  # per feature, of the transformed values
    scale: Matrix  # per feature standard deviation (1 for constant features)
    weights: Matrix  # per feature: 1, or sqrt(category_weight / n_categories) for categories
    centroids: Matrix  # (k, features) in the weighted standardized space
    clusters: tuple[Cluster, ...]  # parallel to centroids
    silhouette: float
    silhouette_by_k: dict[int, float]
    profiles: int
    silhouette_sample: int
    seed: int
    fitted_at: str
    _factor: Matrix = field(init=False, repr=False)
    _offset: Matrix = field(init=False, repr=False)
    _half_norms: Matrix = field(init=False, repr=False)
    _keys: list[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # assign() runs on every ingest and decision: fold the scaling into one multiply-add and
        # the distance into one matrix-vector product (argmin |c - z|^2 = argmin |c|^2/2 - c.z)
        factor = self.weights / self.scale
        object.__setattr__(self, "_factor", factor)
        object.__setattr__(self, "_offset", self.mean * factor)
        object.__setattr__(self, "_half_norms", (self.centroids**2).sum(axis=1) / 2.0)
        object.__setattr__(self, "_keys", [c.key for c in self.clusters])

    @property
    def k(self) -> int:
        return len(self.clusters)

    @property
    def keys(self) -> list[str]:
        return [c.key for c in self.clusters]

    def embed(self, raw: Matrix) -> Matrix:
        """Raw feature rows -> the weighted standardized space the centroids live in."""
        return np.asarray((_transform(raw) - self.mean) / self.scale * self.weights)

    def assign(self, attributes: Mapping[str, Any]) -> str:
        """The key of the nearest centroid to this profile's features."""
        values = raw_features(attributes, self.categories)
        for i in _LOGGED_INDICES:
            values[i] = math.log1p(values[i])
        z = np.array(values) * self._factor - self._offset
        return self._keys[int(np.argmin(self._half_norms - self.centroids @ z))]

    def assign_many(self, raw: Matrix) -> npt.NDArray[np.intp]:
        """Cluster index (into ``clusters``) per raw feature row."""
        z = self.embed(raw)
        distances = (
            (z**2).sum(axis=1)[:, None]
            - 2.0 * z @ self.centroids.T
            + (self.centroids**2).sum(axis=1)[None, :]
        )
        return np.asarray(np.argmin(distances, axis=1))

    def segments(self) -> list[SegmentDefinition]:
        return [c.segment(self.k, self.fitted_at) for c in self.clusters]

    def summary(self) -> dict[str, Any]:
        """What a person reads: k, silhouettes and the clusters (no centroids)."""
        return {
            "k": self.k,
            "silhouette": self.silhouette,
            "silhouette_by_k": {str(k): s for k, s in sorted(self.silhouette_by_k.items())},
            "profiles": self.profiles,
            "silhouette_sample": self.silhouette_sample,
            "seed": self.seed,
            "fitted_at": self.fitted_at,
            "features": list(self.features),
            "clusters": [c.to_json() for c in self.clusters],
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "v": MODEL_VERSION,
            **self.summary(),
            "categories": list(self.categories),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "weights": self.weights.tolist(),
            "centroids": self.centroids.tolist(),
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> ClusterModel:
        """Inverse of :meth:`to_json`; ``ValidationFailed`` when the document is damaged."""
        try:
            model = cls._from_json(document)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValidationFailed(
                f"The stored cluster model is damaged ({exc!r}); run `loopwise cluster` again.",
                field="clusters",
            ) from exc
        return model

    @classmethod
    def _from_json(cls, d: Mapping[str, Any]) -> ClusterModel:
        if d.get("v") != MODEL_VERSION:
            raise ValueError(f"unknown model version {d.get('v')!r}")
        features = tuple(str(f) for f in d["features"])
        categories = tuple(str(c) for c in d["categories"])
        if features != BEHAVIOUR_FEATURES + tuple(CATEGORY_PREFIX + c for c in categories):
            raise ValueError("features do not match the categories")
        n = len(features)
        arrays = {
            name: np.array(d[name], dtype=np.float64) for name in ("mean", "scale", "weights")
        }
        centroids = np.array(d["centroids"], dtype=np.float64).reshape(-1, n)
        clusters = tuple(
            Cluster(
                key=str(c["key"]),
                name=str(c["name"]),
                size=int(c["size"]),
                share=float(c["share"]),
                distinctive=tuple(dict(x) for x in c["distinctive"]),
            )
            for c in d["clusters"]
        )
        if any(a.shape != (n,) for a in arrays.values()) or len(clusters) != len(centroids):
            raise ValueError("array shapes do not match the features and clusters")
        if not clusters or not all(is_cluster_key(c.key) for c in clusters):
            raise ValueError("cluster keys must be cluster_<n>")
        return cls(
            features=features,
            categories=categories,
            mean=arrays["mean"],
            scale=arrays["scale"],
            weights=arrays["weights"],
            centroids=centroids,
            clusters=clusters,
            silhouette=float(d["silhouette"]),
            silhouette_by_k={int(k): float(s) for k, s in d["silhouette_by_k"].items()},
            profiles=int(d["profiles"]),
            silhouette_sample=int(d["silhouette_sample"]),
            seed=int(d["seed"]),
            fitted_at=str(d["fitted_at"]),
        )


def check_k_range(k_range: tuple[int, int]) -> None:
    k_min, k_max = k_range
    if k_min < 2:
        raise ValidationFailed(f"k_min must be at least 2, got {k_min}.", field="k_min")
    if k_max < k_min:
        raise ValidationFailed(f"k_max ({k_max}) must be at least k_min ({k_min}).", field="k_max")
    if k_max > MAX_K:
        raise ValidationFailed(f"k_max must be at most {MAX_K}, got {k_max}.", field="k_max")


def fit_clusters(
    profiles: Sequence[Mapping[str, Any]],
    k_range: tuple[int, int] = DEFAULT_K_RANGE,
    seed: int = 0,
    *,
    fitted_at: str = "",
    previous: ClusterModel | None = None,
    max_categories: int = MAX_CATEGORIES,
    category_weight: float = CATEGORY_WEIGHT,
    silhouette_sample: int = SILHOUETTE_SAMPLE,
    fit_sample: int = FIT_SAMPLE,
) -> ClusterModel:
    """Fit K-Means on the profiles' attribute dicts for every k in ``k_range`` and keep the k
    with the best silhouette (see the module docstring for features, keys and names)."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import pairwise_distances, silhouette_score
    from sklearn.preprocessing import StandardScaler

    check_k_range(k_range)
    n = len(profiles)
    if n < MIN_PROFILES:
        raise Conflict(
            f"Only {n} profiles; clustering needs at least {MIN_PROFILES}. Ingest more events "
            "first.",
            field="profiles",
            profiles=n,
        )
    categories = top_categories(profiles, max_categories)
    features = BEHAVIOUR_FEATURES + tuple(CATEGORY_PREFIX + c for c in categories)
    raw = np.array([raw_features(p, categories) for p in profiles], dtype=np.float64)
    scaler = StandardScaler().fit(_transform(raw))
    weights = np.ones(len(features))
    if categories:
        weights[len(BEHAVIOUR_FEATURES) :] = math.sqrt(category_weight / len(categories))
    mean = np.asarray(scaler.mean_, dtype=np.float64)
    scale = np.asarray(scaler.scale_, dtype=np.float64)
    points = (_transform(raw) - mean) / scale * weights

    rng = np.random.default_rng(seed)
    fit_rows = np.sort(rng.choice(n, fit_sample, replace=False)) if n > fit_sample else None
    score_rows = (
        np.sort(rng.choice(n, silhouette_sample, replace=False)) if n > silhouette_sample else None
    )
    fit_points = points if fit_rows is None else points[fit_rows]
    score_points = points if score_rows is None else points[score_rows]
    distinct = len(np.unique(fit_points, axis=0))
    # one distance matrix for every k (float32: 100 MB at 5,000 profiles) instead of one per k
    score_distances = pairwise_distances(score_points.astype(np.float32))
    k_min, k_max = k_range
    scores: dict[int, float] = {}
    fitted: dict[int, Matrix] = {}
    # k distinct rows split into k clusters; the silhouette needs fewer clusters than points
    for k in range(k_min, min(k_max, distinct, len(score_points) - 1) + 1):
        kmeans = KMeans(n_clusters=k, n_init=N_INIT, random_state=seed).fit(fit_points)
        labels = kmeans.predict(score_points)
        if len(np.unique(labels)) < 2:
            continue
        silhouette = silhouette_score(score_distances, labels, metric="precomputed")
        scores[k] = round(float(silhouette), 4)
        fitted[k] = np.asarray(kmeans.cluster_centers_, dtype=np.float64)
    if not scores:
        raise Conflict(
            f"The {n} profiles are too alike to split into {k_min} or more clusters (only "
            f"{distinct} distinct feature rows). Ingest more varied events first.",
            field="profiles",
            profiles=n,
        )
    best = max(scores, key=lambda k: (scores[k], -k))
    centroids = fitted[best]
    draft = ClusterModel(
        features=features,
        categories=tuple(categories),
        mean=mean,
        scale=scale,
        weights=weights,
        centroids=centroids,
        clusters=tuple(
            Cluster(f"{CLUSTER_KEY_PREFIX}{i + 1}", "", 0, 0.0, ()) for i in range(best)
        ),
        silhouette=scores[best],
        silhouette_by_k=scores,
        profiles=n,
        silhouette_sample=len(score_points),
        seed=seed,
        fitted_at=fitted_at,
    )
    labels = draft.assign_many(raw)
    sizes = np.bincount(labels, minlength=best)
    keys = _keys(centroids, sizes, draft, previous)
    order = sorted(range(best), key=lambda i: int(keys[i].removeprefix(CLUSTER_KEY_PREFIX)))
    z_scores = centroids / weights  # unweighted: std devs from the population mean
    phrases = [_phrases(features, z_scores[i]) for i in range(best)]
    names = _names([phrases[i] for i in order], [keys[i] for i in order])
    overall = raw.mean(axis=0)
    clusters = []
    for position, i in enumerate(order):
        members = raw[labels == i]
        means = members.mean(axis=0) if len(members) else overall
        ranked = sorted(range(len(features)), key=lambda f: (-abs(z_scores[i, f]), f))
        clusters.append(
            Cluster(
                key=keys[i],
                name=names[position],
                size=int(sizes[i]),
                share=round(float(sizes[i]) / n, 4),
                distinctive=tuple(
                    {
                        "feature": features[f],
                        "z": round(float(z_scores[i, f]), 3),
                        "mean": _round(float(means[f])),
                        "overall": _round(float(overall[f])),
                    }
                    for f in ranked[:SHOWN_FEATURES]
                ),
            )
        )
    return ClusterModel(
        features=features,
        categories=tuple(categories),
        mean=mean,
        scale=scale,
        weights=weights,
        centroids=centroids[order],
        clusters=tuple(clusters),
        silhouette=scores[best],
        silhouette_by_k=scores,
        profiles=n,
        silhouette_sample=len(score_points),
        seed=seed,
        fitted_at=fitted_at,
    )


def _round(value: float) -> float:
    """Three significant decimals for display, whatever the magnitude."""
    return round(value, 3) if abs(value) < 100 else round(value, 1)


def _keys(
    centroids: Matrix,
    sizes: npt.NDArray[np.intp],
    model: ClusterModel,
    previous: ClusterModel | None,
) -> list[str]:
    """Stable keys: match to the previous model's centroids when it has the same features,
    else number the clusters by size, largest first (ties by index)."""
    k = len(centroids)
    keys: list[str | None] = [None] * k
    if previous is not None and previous.features == model.features:
        from scipy.optimize import linear_sum_assignment

        # previous centroids back to transformed feature values, then into this model's space
        old = previous.centroids / previous.weights * previous.scale + previous.mean
        old_here = (old - model.mean) / model.scale * model.weights
        cost = ((centroids[:, None, :] - old_here[None, :, :]) ** 2).sum(axis=2)
        for new_index, old_index in zip(*linear_sum_assignment(cost), strict=True):
            keys[int(new_index)] = previous.clusters[int(old_index)].key
    taken = {key for key in keys if key is not None}
    numbers = (n for n in range(1, 2 * MAX_K + 2) if f"{CLUSTER_KEY_PREFIX}{n}" not in taken)
    for i in sorted(range(k), key=lambda i: (-int(sizes[i]), i)):
        if keys[i] is None:
            keys[i] = f"{CLUSTER_KEY_PREFIX}{next(numbers)}"
    return [key for key in keys if key is not None]


def _phrases(features: Sequence[str], z: Matrix) -> list[tuple[str, bool]]:
    """Naming phrases (text, is a category), one per group: the most distinctive behaviour and
    taste phrases first, then the others, most distinctive first."""
    used: set[str] = set()
    phrases: list[tuple[str, bool]] = []
    for f in sorted(range(len(features)), key=lambda f: (-abs(z[f]), f)):
        value = float(z[f])
        if abs(value) < DISTINCTIVE_Z:
            break
        feature = features[f]
        taste = feature.startswith(CATEGORY_PREFIX)
        if taste:
            group, phrase = "taste", feature_label(feature) if value > 0 else None
        else:
            _, _, group, high, low = _BEHAVIOUR[feature]
            phrase = high if value > 0 else low
        if phrase is None or group in used:
            continue
        used.add(group)
        phrases.append((phrase, taste))
    # lead with what they do and what they like: the top behaviour and the top taste phrase
    lead = [next((p for p in phrases if p[1] is taste), None) for taste in (False, True)]
    first = [p for p in lead if p is not None]
    return first + [p for p in phrases if p not in first]


def _names(phrases: Sequence[list[tuple[str, bool]]], keys: Sequence[str]) -> list[str]:
    """Two phrases each, behaviour before taste ("High spenders, running"); names that collide
    take one more phrase, and only when none is left, their cluster number."""
    lengths = [2] * len(phrases)
    numbered: set[int] = set()

    def name(i: int) -> str:
        chosen = sorted(phrases[i][: lengths[i]], key=lambda p: p[1])  # stable: keeps rank
        text = ", ".join(p[0] for p in chosen) or "typical visitors"
        if i in numbered:
            text += f" ({keys[i].replace('_', ' ')})"
        return text[0].upper() + text[1:]

    while True:
        names = [name(i) for i in range(len(phrases))]
        clashes: dict[str, list[int]] = {}
        for i, text in enumerate(names):
            clashes.setdefault(text, []).append(i)
        groups = [group for group in clashes.values() if len(group) > 1]
        if not groups:
            return names
        for group in groups:
            longer = [i for i in group if lengths[i] < len(phrases[i])]
            for i in longer:
                lengths[i] += 1
            if not longer:
                numbered.update(group)
