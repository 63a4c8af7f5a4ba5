"""The training job: events in, trained models and metadata out."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from loopwise.catalog.importer import read_items
from loopwise.catalog.items import Item
from loopwise.config import TrainingSettings, parse_workspace
from loopwise.errors import ConfigError, ValidationFailed
from loopwise.models.hybrid import HybridModel
from loopwise.models.interactions import Interaction
from loopwise.models.training import NotEnoughData, model_names, train
from tests.models.synthetic import SAMPLE_ITEMS

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC).timestamp()


def synthetic(users: int = 40, per_user: int = 10) -> list[Interaction]:
    """Users in 4 taste groups over 40 items; each group looks at its own 10 items."""
    out = []
    for u in range(users):
        group = u % 4
        for k in range(per_user):
            item = f"i{group * 10 + (k * 3 + u) % 10}"
            event = "purchase" if k == per_user - 1 else "item_view"
            out.append(Interaction(f"u{u}", item, T0 + u * 60 + k, event))
    return out


@pytest.fixture(scope="module")
def items():  # type: ignore[no-untyped-def]
    return {item.id: item for item in read_items(SAMPLE_ITEMS)}


def test_hybrid_implies_its_components_and_metadata_describes_the_run() -> None:
    settings = TrainingSettings(min_interactions=10)
    trained = train(synthetic(), None, settings)
    assert set(trained.models) == {
        "popularity", "als", "ease", "item_knn", "transitions", "session_knn", "hybrid",
    }  # fmt: skip
    hybrid = trained.models["hybrid"]
    assert isinstance(hybrid, HybridModel)
    assert hybrid.components["als"] is trained.models["als"]  # fitted once, shared
    meta = trained.metadata
    window = meta["data_window"]
    assert window["events"] == 400 and window["users"] == 40 and window["items"] == 40
    assert window["first_event"] < window["last_event"]
    assert meta["event_weights"] == settings.event_weights
    assert meta["models"] == ["als", "ease", "item_knn", "transitions", "session_knn", "hybrid"]
    assert set(meta["metrics"]["models"]) == {
        "popularity", "als", "ease", "item_knn", "transitions", "session_knn", "hybrid",
    }  # fmt: skip
    assert meta["recency"]["half_life"] in (None, 24.0, 8.0, 3.0)
    assert meta["tuning"] is None
    assert meta["metrics"]["models"]["hybrid"]["ndcg@10"] > 0
    assert meta["parameters"]["als"]["factors"] == 32  # the tuned default
    assert "implicit" in meta["libraries"] and meta["training_seconds"] >= 0
    assert trained.strategy_names == [
        "als", "ease", "item_knn", "transitions", "session_knn", "hybrid",
    ]  # fmt: skip


def test_catalog_text_adds_the_content_model(items) -> None:  # type: ignore[no-untyped-def]
    ids = sorted(items)[:40]
    interactions = [
        Interaction(it.user, ids[int(it.item[1:])], it.timestamp, it.event) for it in synthetic()
    ]
    trained = train(
        interactions, items, TrainingSettings(min_interactions=10), evaluate_holdout=False
    )
    assert "content" in trained.models
    assert trained.item_ids == sorted(items)  # every catalog item is a column
    assert trained.item_users.sum() > 0 and (trained.item_users == 0).sum() == len(items) - 40
    assert trained.metadata["metrics"] == {}


def test_too_few_interactions_is_refused_with_the_threshold() -> None:
    with pytest.raises(NotEnoughData) as caught:
        train(synthetic(users=2, per_user=3), None, TrainingSettings(min_interactions=50))
    assert caught.value.status == 409
    assert "at least 50" in caught.value.detail
    assert caught.value.extra["interactions"] == 6


def test_content_without_catalog_text_is_a_clear_error() -> None:
    with pytest.raises(ValidationFailed, match="content model needs catalog items"):
        model_names(TrainingSettings(models=["content"]), None)


def test_single_models_train_without_the_hybrid() -> None:
    trained = train(synthetic(), None, TrainingSettings(models=["ease"], min_interactions=10))
    assert set(trained.models) == {"popularity", "ease"}


def test_event_weights_change_the_matrix() -> None:
    data = synthetic()
    heavy = train(
        data,
        None,
        TrainingSettings(
            models=["item_knn"], min_interactions=10, event_weights={"purchase": 50.0}
        ),
        evaluate_holdout=False,
    )
    light = train(
        data,
        None,
        TrainingSettings(models=["item_knn"], min_interactions=10),
        evaluate_holdout=False,
    )
    assert heavy.metadata["event_weights"] == {"purchase": 50.0}
    assert (heavy.models["item_knn"].similarity != light.models["item_knn"].similarity).nnz > 0  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("training", "field"),
    [
        ({"event_weights": {"page_view": 1}}, "training.event_weights.page_view"),
        ({"models": ["hybrid", "svd"]}, "training.models[1]"),
        ({"min_interactions": 0}, "training.min_interactions"),
        ({"retrain_every_minutes": -1}, "training.retrain_every_minutes"),
        # a period the retraining thread cannot wait for (it died with OverflowError)
        ({"retrain_every_minutes": float("inf")}, "training.retrain_every_minutes"),
        ({"retrain_every_minutes": 1e12}, "training.retrain_every_minutes"),
        # an infinite weight made every model's scores NaN (ModelFitError, a 500)
        ({"event_weights": {"purchase": float("inf")}}, "training.event_weights.purchase"),
        ({"half_life_days": float("nan")}, "training.half_life_days"),
    ],
)
def test_training_settings_are_validated(training: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_workspace({"training": training})
    assert caught.value.field == field


def test_progress_reports_every_step() -> None:
    steps: list[tuple[str, int, int]] = []
    train(
        synthetic(),
        None,
        TrainingSettings(models=["ease"], min_interactions=10),
        progress=lambda step, done, total: steps.append((step, done, total)),
    )
    assert [s[0] for s in steps] == ["matrix", "popularity", "ease", "holdout", "done"]
    assert steps[-1][1] == steps[-1][2]


def test_catalog_text_without_a_word_the_vectorizer_keeps_leaves_content_out() -> None:
    # one-letter titles: TF-IDF keeps no token, and the hybrid's training died with
    # "empty vocabulary" (a 500 from POST /v1/admin/train)
    letters = {
        f"i{k}": Item.from_record({"id": f"i{k}", "title": "ABCDEFGHIJ"[k % 10]}) for k in range(40)
    }
    trained = train(
        synthetic(), letters, TrainingSettings(min_interactions=10), evaluate_holdout=False
    )
    assert "hybrid" in trained.models and "content" not in trained.models
    with pytest.raises(ValidationFailed, match="content model"):
        train(synthetic(), letters, TrainingSettings(models=["content"], min_interactions=10))


def test_holdout_metrics_per_segment_cover_its_people_only() -> None:
    settings = TrainingSettings(min_interactions=10)
    # even users in "evens"; the first 20 users (5 per taste group) also in "early"; one person
    # in "tiny" (too few held-out people to show)
    segments = {f"u{u}": {"evens"} if u % 2 == 0 else set() for u in range(80)}
    for u in range(20):
        segments[f"u{u}"].add("early")
    segments["u1"].add("tiny")
    trained = train(synthetic(users=80), None, settings, segments_of=lambda p: segments[p])
    metrics = trained.metadata["metrics"]
    assert set(metrics["segments"]) == {"evens", "early"}
    assert metrics["segments"]["evens"]["users"] == 40
    assert metrics["segments"]["early"]["users"] == 20
    hybrid = metrics["segments"]["evens"]["hybrid"]
    assert 0 < hybrid["ndcg@10"] <= 1 and 0 < hybrid["recall@20"] <= 1
    assert "segments" not in train(synthetic(users=80), None, settings).metadata["metrics"]
