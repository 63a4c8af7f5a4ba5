"""Trained models as decide strategies: hot swap, rollback, fold-in, cold start, new items."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from loopwise.catalog.importer import read_items
from loopwise.catalog.items import Item
from loopwise.clock import FixedClock
from loopwise.config import load_workspace_file
from loopwise.decide.request import DecideRequest
from loopwise.engine import Engine
from loopwise.models.serving import ModelStrategy, UntrainedModelStrategy, user_history
from loopwise.storage.memory import MemoryStorage
from tests.models.synthetic import (
    SAMPLE_ITEMS,
    events_for,
    message,
    taste_messages,
    write_workspace,
)

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def new_engine(tmp_path: Path, **training: object) -> tuple[Engine, FixedClock]:
    clock = FixedClock(T0)
    workspace = load_workspace_file(write_workspace(tmp_path, **training))
    engine = Engine(workspace, MemoryStorage(), clock=clock, seed=1, data_dir=tmp_path)
    engine.put_items(list(read_items(SAMPLE_ITEMS)))
    return engine, clock


@pytest.fixture()
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine, clock = new_engine(tmp_path)
    items = list(read_items(SAMPLE_ITEMS))
    engine.ingest(events_for(taste_messages(items, T0), T0))
    clock.advance(3 * 3600)
    yield engine
    engine.close()


def decide(engine: Engine, user: str, n: int = 5) -> dict[str, Any]:
    request = DecideRequest.model_validate(
        {"user": {"anonymous_id": user}, "slots": [{"slot": "recs", "n": n}]}
    )
    slot: dict[str, Any] = engine.decide(request).model_dump(mode="json")["slots"][0]
    return slot


def view(engine: Engine, user: str, item_ids: list[str], kind: str = "view") -> None:
    at = engine.clock()
    engine.ingest(events_for([message(user, i, at, kind) for i in item_ids], at))


def category(item: Item) -> str:
    return item.categories[0]


def categories_of(engine: Engine, ids: list[str]) -> list[str]:
    return [category(engine.get_item(i)) for i in ids]  # type: ignore[arg-type]


def test_before_training_a_model_slot_answers_with_popular_and_says_why(engine: Engine) -> None:
    assert isinstance(engine.strategies.get("hybrid"), UntrainedModelStrategy)
    slot = decide(engine, "user-1")
    assert slot["strategy"] == "hybrid" and len(slot["items"]) == 5
    assert slot["ai_influenced"] is False
    texts = [r["text"] for r in slot["reasons"]]
    assert any("not trained yet" in t for t in texts)
    assert any(r["kind"] == "model" for r in slot["reasons"])


def test_training_hot_swaps_the_strategies_and_the_user_gets_the_model(engine: Engine) -> None:
    meta = engine.train_models()
    strategy = engine.strategies.get("hybrid")
    assert isinstance(strategy, ModelStrategy) and strategy.bundle.version == meta["version"]
    for name in ("als", "ease", "item_knn", "content"):
        assert isinstance(engine.strategies.get(name), ModelStrategy)
    slot = decide(engine, "user-0")  # 12 views of mostly one category
    assert slot["ai_influenced"] is True and slot["fallback"] is False
    model_reasons = [r for r in slot["reasons"] if r["kind"] == "model"]
    assert model_reasons and meta["version"] in model_reasons[0]["text"]
    assert "hybrid" in model_reasons[0]["text"]
    # the user's own category dominates what the model recommends
    items = list(read_items(SAMPLE_ITEMS))
    favourite = sorted({category(i) for i in items})[0]
    assert categories_of(engine, [i["id"] for i in slot["items"]]).count(favourite) >= 3


def test_recommendations_shift_after_three_views_without_retraining(engine: Engine) -> None:
    engine.train_models()
    version = engine.model_versions()["current"]
    catalog = list(read_items(SAMPLE_ITEMS))
    # user-1 likes the second category; three views in another category shift their next decision
    favourite = sorted({category(i) for i in catalog})[1]
    other = next(c for c in sorted({category(i) for i in catalog}) if c != favourite)
    before = decide(engine, "user-1", n=10)
    before_ids = [i["id"] for i in before["items"]]
    fresh = [i.id for i in catalog if category(i) == other and i.id not in before_ids][:3]
    view(engine, "user-1", fresh)
    after = decide(engine, "user-1", n=10)
    after_ids = [i["id"] for i in after["items"]]
    assert engine.model_versions()["current"] == version  # no retraining happened
    assert after_ids != before_ids
    assert categories_of(engine, after_ids).count(other) > categories_of(engine, before_ids).count(
        other
    )
    assert not set(fresh) & set(after_ids)  # what they just viewed is not recommended back


def test_cold_start_tiers_are_named_in_the_reasons(engine: Engine) -> None:
    engine.train_models()
    new = decide(engine, "someone-new")
    assert new["ai_influenced"] is False
    kinds = [r["kind"] for r in new["reasons"]]
    assert kinds.count("cold_start") == 1
    assert "new visitor" in next(r["text"] for r in new["reasons"] if r["kind"] == "cold_start")

    catalog = list(read_items(SAMPLE_ITEMS))
    view(engine, "few-events", [catalog[0].id, catalog[1].id])
    few = decide(engine, "few-events")
    cold = [r for r in few["reasons"] if r["kind"] == "cold_start"]
    assert cold and "content" in cold[0]["text"] and "item-kNN" in cold[0]["text"]
    assert few["ai_influenced"] is True

    history = decide(engine, "user-2")
    assert any(r["kind"] == "model" for r in history["reasons"])


def test_purchased_items_are_not_recommended(engine: Engine) -> None:
    engine.train_models()
    first = decide(engine, "user-3")["items"][0]["id"]
    view(engine, "user-3", [first], "purchase")
    assert first not in [i["id"] for i in decide(engine, "user-3", n=10)["items"]]


def test_items_added_after_training_get_content_similarity(engine: Engine) -> None:
    engine.train_models()
    catalog = list(read_items(SAMPLE_ITEMS))
    base = catalog[0]
    twin = replace(base, id="brand-new-twin")  # same text, no interactions
    engine.put_items([twin])
    view(engine, "twin-fan", [base.id, catalog[1].id, catalog[2].id, base.id])
    slot = decide(engine, "twin-fan", n=10)
    ids = [i["id"] for i in slot["items"]]
    assert "brand-new-twin" in ids
    assert any(r["kind"] == "cold_start" and "new item" in r["text"] for r in slot["reasons"])


def test_rollback_serves_the_previous_version_and_a_retrain_the_new_one(
    engine: Engine,
) -> None:
    first = engine.train_models()["version"]
    view(engine, "late-user", [i.id for i in list(read_items(SAMPLE_ITEMS))[:6]])
    second = engine.train_models()["version"]
    assert first != second
    listing = engine.model_versions()
    assert listing["current"] == second and len(listing["versions"]) == 2
    assert "hybrid" in decide(engine, "user-4")["reasons"][0]["ref"]
    engine.rollback_models()
    assert engine.strategies.get("hybrid").bundle.version == first  # type: ignore[attr-defined]
    model = [r for r in decide(engine, "user-4")["reasons"] if r["kind"] == "model"]
    assert first in model[0]["text"]
    engine.rollback_models(second)
    assert engine.model_versions()["current"] == second


def test_a_reopened_engine_loads_the_current_version(tmp_path: Path) -> None:
    workspace = write_workspace(tmp_path)
    data_dir = tmp_path / "data"
    engine, _ = Engine.open(data_dir, workspace, clock=FixedClock(T0))
    items = list(read_items(SAMPLE_ITEMS))
    engine.ingest(events_for(taste_messages(items, T0, users=20), T0))
    version = engine.train_models()["version"]
    engine.close()
    reopened, _ = Engine.open(data_dir, workspace, clock=FixedClock(T0))
    try:
        assert reopened.model_versions()["current"] == version
        assert isinstance(reopened.strategies.get("hybrid"), ModelStrategy)
    finally:
        reopened.close()


def test_user_history_merges_affinity_and_lists() -> None:
    profile = {
        "affinity": {"items": {"a": 2.5, "b": 0.5}},
        "recently_viewed": ["b", "c"],
        "cart": {"items": ["d"]},
        "purchased_items": ["a"],
    }
    weights = {"item_view": 1.0, "add_to_cart": 3.0, "purchase": 5.0}
    # recently viewed: the newest view counts 1 + 2 = 3 views, the next 1 + 2 * 0.7 = 2.4
    assert user_history(profile, weights) == {"a": 5.0, "b": 3.0, "c": 2.4, "d": 3.0}


def test_seen_weight_param_reads_and_clamps() -> None:
    from loopwise.models.serving import SEEN_DISCOUNT, seen_weight

    assert seen_weight({}) == SEEN_DISCOUNT
    assert seen_weight({"seen_weight": 0}) == 0.0
    assert seen_weight({"seen_weight": 3}) == 1.0
    assert seen_weight({"seen_weight": "all"}) == SEEN_DISCOUNT
    # NaN (YAML .nan) is no number in [0, 1]: the default, not 0 (which hid every seen item)
    assert seen_weight({"seen_weight": float("nan")}) == SEEN_DISCOUNT


def test_seen_weights_of_zero_hide_what_the_user_already_viewed(engine: Engine) -> None:
    engine.train_models()
    viewed = set(engine.profile_view("user-1")["profile"]["recently_viewed"])  # type: ignore[index]
    document = engine.workspace_document()
    slot = next(s for s in document["slots"] if s["key"] == "recs")
    slot["strategy_params"] = {"seen_weight": 0, "previous_visit_weight": 0}
    engine.replace_workspace(document)
    shown = {i["id"] for i in decide(engine, "user-1", n=10)["items"]}
    assert shown and not shown & viewed


def test_items_the_model_has_no_evidence_for_are_popular_fallbacks_not_model_picks() -> None:
    # "lonely" was only ever viewed alone: item-kNN has no neighbour for it, so every other
    # item scored 0 and the strategy showed catalog-order items as the model's picks
    from loopwise.config import TrainingSettings
    from loopwise.decide.item_stats import ItemStats
    from loopwise.decide.strategies import StrategyContext
    from loopwise.models.interactions import Interaction
    from loopwise.models.serving import ModelBundle
    from loopwise.models.training import train
    from tests.models.test_training import T0 as STAMP
    from tests.models.test_training import synthetic

    lonely = [Interaction(f"solo{k}", "lonely", STAMP + k, "item_view") for k in range(3)]
    trained = train(
        synthetic() + lonely, None, TrainingSettings(min_interactions=10), evaluate_holdout=False
    )
    bundle = ModelBundle(trained, "v1")
    catalog = {i: Item.from_record({"id": i}) for i in trained.item_ids}
    stats = ItemStats()
    stats.observe("item_view", ["i17"], T0)
    for name in ("item_knn", "hybrid"):
        ctx = StrategyContext(
            profile={"recently_viewed": ["lonely"]},
            context={},
            segments=[],
            catalog=catalog,
            stats=stats,
            now=T0,
        )
        picked = ModelStrategy(name, bundle).recommend(ctx, 5)
        assert len(picked) == 5
        evidence = [p for p in picked if not p.fallback]
        assert all(p.score > 0 for p in evidence), name
        assert picked[len(evidence)].item_id == "i17"  # the top-up is by popularity


def test_the_previous_visits_items_keep_their_score_and_older_ones_are_discounted() -> None:

    from loopwise.config import TrainingSettings
    from loopwise.decide.item_stats import ItemStats
    from loopwise.decide.strategies import StrategyContext
    from loopwise.models.serving import SEEN_DISCOUNT, ModelBundle
    from loopwise.models.training import train
    from tests.models.test_training import synthetic

    settings = TrainingSettings(min_interactions=10)
    trained = train(synthetic(), None, settings, evaluate_holdout=False)
    bundle = ModelBundle(trained, "v1")
    catalog = {i: Item.from_record({"id": i}) for i in trained.item_ids}
    viewed = ["i1", "i2", "i3", "i4", "i5", "i6"]  # one taste group's items, newest first
    # the first three are the previous visit's, the others a visit days before it

    def scores(**params: float) -> dict[str, float]:
        ctx = StrategyContext(
            profile={
                "recently_viewed": viewed,
                "viewed_this_visit": [],
                "viewed_last_visit": viewed[:3],
            },
            context={},
            segments=[],
            catalog=catalog,
            stats=ItemStats(),
            now=T0,
            params=params,
        )
        picked = ModelStrategy("hybrid", bundle).recommend(ctx, len(catalog))
        return {p.item_id: p.score for p in picked if not p.fallback}

    whole = scores(seen_weight=1.0)
    served = scores()
    for item_id in viewed[:3]:  # the previous visit: what the person was considering
        assert served[item_id] == pytest.approx(whole[item_id])
    for item_id in viewed[3:]:  # set aside days ago
        if whole.get(item_id, 0.0) > 0:
            assert served[item_id] == pytest.approx(SEEN_DISCOUNT * whole[item_id])
    assert any(whole.get(i, 0.0) > 0 for i in viewed[3:])
    # previous_visit_weight discounts them like any seen item when asked to
    same = scores(previous_visit_weight=SEEN_DISCOUNT)
    assert all(same[i] == pytest.approx(SEEN_DISCOUNT * whole[i]) for i in viewed[:3])


def test_the_hybrid_blends_in_popularity_within_the_persons_categories() -> None:
    from loopwise.config import TrainingSettings
    from loopwise.decide.item_stats import ItemStats
    from loopwise.decide.strategies import StrategyContext
    from loopwise.models.serving import CATEGORY_POPULARITY, ModelBundle
    from loopwise.models.training import train
    from tests.models.test_training import synthetic

    settings = TrainingSettings(min_interactions=10)
    trained = train(synthetic(), None, settings, evaluate_holdout=False)
    bundle = ModelBundle(trained, "v1")
    # the synthetic taste groups are categories: i0-i9 in g0, i10-i19 in g1, ...
    catalog = {
        i: Item.from_record({"id": i, "categories": [f"g{int(i[1:]) // 10}"]})
        for i in trained.item_ids
    }
    stats = ItemStats()
    stats.observe("item_view", ["i7"], T0)  # popular in the person's top category
    for _ in range(4):
        stats.observe("item_view", ["i15"], T0)  # more popular, in their second one (half)
    stats.observe("purchase", ["i25"], T0)  # popular outside their categories
    profile = {
        "recently_viewed": ["i1", "i2", "i3", "i4", "i5"],
        "affinity": {"categories": {"g0": 2.0, "g1": 1.0}},
    }

    def context(**params: float) -> StrategyContext:
        return StrategyContext(
            profile=profile, context={}, segments=[], catalog=catalog, stats=stats, now=T0,
            params=params,
        )  # fmt: skip

    prior = bundle.category_popularity(context())
    assert prior is not None
    by_id = dict(zip(bundle.item_ids, prior.tolist(), strict=True))
    # popularity x category weight (g0: 1, g1: 0.5), over the best: i15 4 x 0.5 = 2, i7 1 x 1
    assert by_id["i15"] == pytest.approx(1.0) and by_id["i7"] == pytest.approx(0.5)
    assert by_id["i25"] == 0.0 and by_id["i8"] == 0.0  # outside their categories; no activity

    def scores(**params: float) -> dict[str, float]:
        picked = ModelStrategy("hybrid", bundle).recommend(context(**params), len(catalog))
        return {p.item_id: p.score for p in picked if not p.fallback}

    alone, served = scores(category_popularity=0.0), scores()
    share = CATEGORY_POPULARITY
    for item_id in ("i7", "i15", "i8"):  # not seen: the blend, undiscounted
        expected = (1 - share) * alone.get(item_id, 0.0) + share * by_id[item_id]
        assert served.get(item_id, 0.0) == pytest.approx(expected, abs=1e-6)
    assert served["i15"] > alone.get("i15", 0.0)
    # the reason says so (the person's top categories, strongest first)
    reasons = {p.reason for p in ModelStrategy("hybrid", bundle).recommend(context(), 5)}
    assert any(
        r.endswith("50% weighed by what is popular in your top categories (g0, g1)")
        for r in reasons
    )
    unblended = ModelStrategy("hybrid", bundle).recommend(context(category_popularity=0.0), 5)
    assert not any("popular in your" in p.reason for p in unblended)
    # the single models serve their own scores unless asked to blend
    als = ModelStrategy("als", bundle).recommend(context(), len(catalog))
    als_alone = ModelStrategy("als", bundle).recommend(context(category_popularity=0.0), 40)
    assert [(p.item_id, p.score) for p in als] == [(p.item_id, p.score) for p in als_alone]
    # without category interests there is nothing to blend
    no_interests = replace(context(), profile={"recently_viewed": ["i1"]})
    assert bundle.category_popularity(no_interests) is None
