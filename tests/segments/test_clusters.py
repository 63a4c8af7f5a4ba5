"""K-Means segments, pure: features, choice of k, names, stable keys, JSON, assignment."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest
from sklearn.metrics import adjusted_rand_score

from loopwise.errors import Conflict, ValidationFailed
from loopwise.segments.clusters import (
    BEHAVIOUR_FEATURES,
    ClusterModel,
    _names,
    category_shares,
    fit_clusters,
    is_cluster_key,
    raw_features,
)


def person(kind: str, rng: np.random.Generator) -> dict[str, Any]:
    """Attribute dicts shaped like Profile.attributes(), for three well separated kinds."""
    if kind == "spender":
        return {
            "days_since_last_seen": rng.uniform(0, 3),
            "sessions": int(rng.integers(8, 15)),
            "item_views": int(rng.integers(30, 60)),
            "purchases": int(rng.integers(3, 8)),
            "revenue": rng.uniform(300, 900),
            "engagement": rng.uniform(70, 95),
            "affinity": {"categories": {"running": rng.uniform(3, 6), "yoga": rng.uniform(0, 1)}},
        }
    if kind == "lapsed":
        return {
            "days_since_last_seen": rng.uniform(60, 120),
            "sessions": int(rng.integers(1, 3)),
            "item_views": int(rng.integers(0, 4)),
            "purchases": 0,
            "revenue": 0.0,
            "engagement": rng.uniform(0, 10),
            "affinity": {"categories": {"hiking": rng.uniform(0.1, 0.5)}},
        }
    return {
        "days_since_last_seen": rng.uniform(0, 5),
        "sessions": int(rng.integers(2, 5)),
        "item_views": int(rng.integers(5, 15)),
        "purchases": 0,
        "revenue": 0.0,
        "engagement": rng.uniform(30, 50),
        "affinity": {"categories": {"yoga": rng.uniform(2, 4)}},
    }


def population(counts: dict[str, int], seed: int = 1) -> tuple[list[dict[str, Any]], list[str]]:
    rng = np.random.default_rng(seed)
    kinds = [kind for kind, n in counts.items() for _ in range(n)]
    return [person(kind, rng) for kind in kinds], kinds


@pytest.fixture(scope="module")
def fitted() -> tuple[ClusterModel, list[dict[str, Any]], list[str]]:
    rows, kinds = population({"spender": 40, "lapsed": 70, "browser": 90})
    return fit_clusters(rows, (2, 6), seed=3, fitted_at="2026-11-02T09:00:00.000Z"), rows, kinds


def by_kind(model: ClusterModel, rows: list[dict[str, Any]], kinds: list[str]) -> dict[str, str]:
    keys: dict[str, set[str]] = {}
    for row, kind in zip(rows, kinds, strict=True):
        keys.setdefault(kind, set()).add(model.assign(row))
    assert all(len(k) == 1 for k in keys.values()), keys
    return {kind: k.pop() for kind, k in keys.items()}


def test_separated_groups_are_recovered(fitted: Any) -> None:
    model, rows, kinds = fitted
    assigned = [model.assign(row) for row in rows]
    assert adjusted_rand_score(kinds, assigned) == 1.0
    assert sorted(c.size for c in model.clusters) == [40, 70, 90]
    assert [c.key for c in model.clusters] == ["cluster_1", "cluster_2", "cluster_3"]
    assert model.clusters[0].size == 90  # numbered by size, largest first


def test_k_is_the_best_silhouette_in_the_range(fitted: Any) -> None:
    model, _, _ = fitted
    assert set(model.silhouette_by_k) == {2, 3, 4, 5, 6}
    assert model.k == 3
    assert model.silhouette == max(model.silhouette_by_k.values())
    two, _ = population({"spender": 30, "lapsed": 30})
    assert fit_clusters(two, (2, 6), seed=0).k == 2


def test_names_mention_the_distinguishing_features(fitted: Any) -> None:
    model, rows, kinds = fitted
    keys = by_kind(model, rows, kinds)
    names = {c.key: c.name.lower() for c in model.clusters}
    assert "running" in names[keys["spender"]]
    assert "spenders" in names[keys["spender"]] or "buyers" in names[keys["spender"]]
    assert names[keys["lapsed"]].startswith("lapsed")
    assert "yoga" in names[keys["browser"]]
    assert len(set(names.values())) == 3
    spender = next(c for c in model.clusters if c.key == keys["spender"])
    top = {d["feature"] for d in spender.distinctive}
    assert top & {"revenue", "purchases", "category:running"}
    revenue = next(
        (d for d in spender.distinctive if d["feature"] == "revenue"), {"mean": 301, "z": 1}
    )
    assert revenue["mean"] > 300 and revenue["z"] > 0


def test_colliding_names_take_another_phrase_then_the_number() -> None:
    phrases = [
        [("lapsed", False), ("hiking", True), ("low engagement", False)],
        [("lapsed", False), ("hiking", True), ("rare visitors", False)],
        [("lapsed", False), ("hiking", True)],
        [],
    ]
    names = _names(phrases, ["cluster_1", "cluster_2", "cluster_3", "cluster_4"])
    assert names == [
        "Lapsed, low engagement, hiking",
        "Lapsed, rare visitors, hiking",
        "Lapsed, hiking",
        "Typical visitors",
    ]
    twins = _names([[("lapsed", False)], [("lapsed", False)]], ["cluster_1", "cluster_2"])
    assert twins == ["Lapsed (cluster 1)", "Lapsed (cluster 2)"]


def test_json_round_trip_assigns_the_same(fitted: Any) -> None:
    model, rows, _ = fitted
    document = orjson.loads(orjson.dumps(model.to_json()))
    loaded = ClusterModel.from_json(document)
    assert loaded.to_json() == model.to_json()
    assert [loaded.assign(r) for r in rows] == [model.assign(r) for r in rows]
    assert [s.key for s in loaded.segments()] == model.keys
    segment = loaded.segments()[0]
    assert segment.condition == {"profile.cluster": "cluster_1"}
    assert segment.name == model.clusters[0].name


def test_damaged_json_is_refused(fitted: Any) -> None:
    model, _, _ = fitted
    document = model.to_json()
    for damage in (
        {"centroids": [[1.0, 2.0]]},
        {"v": 99},
        {"categories": ["other"]},
        {"clusters": [{**document["clusters"][0], "key": "vip"}] * model.k},
    ):
        with pytest.raises(ValidationFailed, match="loopwise cluster"):
            ClusterModel.from_json({**document, **damage})


def test_assign_follows_the_profile_as_it_changes(fitted: Any) -> None:
    model, rows, kinds = fitted
    keys = by_kind(model, rows, kinds)
    browser = dict(rows[kinds.index("browser")])
    assert model.assign(browser) == keys["browser"]
    lapsed = {**browser, "days_since_last_seen": 100.0, "engagement": 3.0, "item_views": 1}
    lapsed["sessions"] = 1
    lapsed["affinity"] = {"categories": {"hiking": 0.2}}
    assert model.assign(lapsed) == keys["lapsed"]
    assert model.assign({}) in model.keys  # an empty profile still gets a cluster


def test_refit_keeps_keys_when_sizes_change() -> None:
    first_rows, first_kinds = population({"spender": 90, "lapsed": 60, "browser": 30}, seed=1)
    first = fit_clusters(first_rows, (3, 3), seed=0)
    rows, kinds = population({"spender": 30, "lapsed": 60, "browser": 90}, seed=2)
    fresh = fit_clusters(rows, (3, 3), seed=0)
    kept = fit_clusters(rows, (3, 3), seed=0, previous=first)
    assert by_kind(fresh, rows, kinds) != by_kind(first, first_rows, first_kinds)
    assert by_kind(kept, rows, kinds) == by_kind(first, first_rows, first_kinds)


def test_features_scale_and_share() -> None:
    attributes = {
        "days_since_last_seen": 2.5,
        "sessions": 3,
        "item_views": 7,
        "purchases": 1,
        "revenue": 40.0,
        "engagement": 55.0,
        "affinity": {"categories": {"running": 3.0, "yoga": 1.0}},
    }
    assert category_shares(attributes) == {"running": 0.75, "yoga": 0.25}
    row = raw_features(attributes, ["yoga", "hiking", "running"])
    assert row == [2.5, 3.0, 7.0, 1.0, 40.0, 55.0, 0.25, 0.0, 0.75]
    assert len(BEHAVIOUR_FEATURES) == 6
    assert raw_features({"sessions": "7", "revenue": float("nan")}, [])[1:5] == [0, 0, 0, 0]


def test_too_few_or_too_alike_profiles_are_refused() -> None:
    rows, _ = population({"browser": 19})
    with pytest.raises(Conflict, match="at least 20") as few:
        fit_clusters(rows, (2, 4))
    assert few.value.status == 409
    same = [{"sessions": 1, "engagement": 10.0}] * 30
    with pytest.raises(Conflict, match="too alike"):
        fit_clusters(same, (2, 4))


@pytest.mark.parametrize(
    ("k_range", "field"), [((1, 4), "k_min"), ((5, 3), "k_max"), ((2, 21), "k_max")]
)
def test_bad_k_range_names_the_field(k_range: tuple[int, int], field: str) -> None:
    rows, _ = population({"browser": 25})
    with pytest.raises(ValidationFailed) as error:
        fit_clusters(rows, k_range)
    assert error.value.field == field


def test_large_populations_are_sampled_for_the_silhouette() -> None:
    rows, kinds = population({"spender": 2000, "lapsed": 2000, "browser": 2000})
    model = fit_clusters(rows, (2, 4), seed=0, silhouette_sample=1000, fit_sample=3000)
    assert model.silhouette_sample == 1000
    assert model.profiles == 6000 and sum(c.size for c in model.clusters) == 6000
    assert adjusted_rand_score(kinds, [model.assign(r) for r in rows]) == 1.0


def test_cluster_keys() -> None:
    assert is_cluster_key("cluster_1") and is_cluster_key("cluster_12")
    assert not is_cluster_key("cluster_0") and not is_cluster_key("cluster_x")
    assert not is_cluster_key("my_cluster_1")


def test_two_distinct_kinds_of_profile_split_into_two_clusters() -> None:
    # 2 distinct rows separate perfectly into 2 clusters; the k bound said "too alike"
    rows = [{"sessions": 1, "engagement": 10.0}] * 15 + [{"sessions": 9, "engagement": 90.0}] * 15
    model = fit_clusters(rows, (2, 4))
    assert model.k == 2 and model.silhouette == 1.0
    assert sorted(c.size for c in model.clusters) == [15, 15]
