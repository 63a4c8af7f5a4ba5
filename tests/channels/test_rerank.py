"""Search results in personal order: the blend, unknown ids in place, consent and holdout,
weights from the workspace, the trained model's share, the decision log."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from loopwise.channels.rerank import RerankRequest
from loopwise.clock import FixedClock
from loopwise.config import parse_workspace
from loopwise.engine import Engine
from loopwise.errors import ValidationFailed
from loopwise.experiments.assignment import in_holdout
from loopwise.profiles.identity import profile_id_for
from tests.channels.conftest import category, channel_document, consent, view


def rerank(engine: Engine, user: str, candidates: list[tuple[str, float]]) -> dict[str, Any]:
    request = RerankRequest.model_validate(
        {"user": {"user_id": user}, "candidates": [{"id": i, "score": s} for i, s in candidates]}
    )
    return engine.rerank(request)


def ids(result: dict[str, Any]) -> list[str]:
    return [item["id"] for item in result["items"]]


def only(engine: Engine, name: str) -> list[str]:
    """Items of that category and no other."""
    items = {i.id: i for i in engine.list_items(0, 10_000)[0]}
    return [i for i in category(engine, name) if items[i].categories == (name,)]


def search_results(engine: Engine) -> list[tuple[str, float]]:
    """Hiking items scoring a little higher than running ones, as a search engine might."""
    hiking, running = only(engine, "hiking")[:3], only(engine, "running")[:3]
    return [(i, 10.0 - 0.2 * k) for k, i in enumerate(hiking)] + [
        (i, 9.4 - 0.2 * k) for k, i in enumerate(running)
    ]


def test_a_runner_sees_running_items_first_and_unknown_ids_keep_their_place(
    engine: Engine, clock: FixedClock
) -> None:
    view(engine, clock, "runner", only(engine, "running")[3:8])
    candidates = search_results(engine)
    candidates.insert(1, ("not-in-catalog", 9.5))
    result = rerank(engine, "runner", candidates)
    order = ids(result)
    assert order[1] == "not-in-catalog"
    running = set(category(engine, "running"))
    assert order[0] in running and order[2] in running  # interests beat the search score
    assert sorted(order) == sorted(i for i, _ in candidates)  # nothing lost, nothing added
    first = result["items"][0]
    assert first["known"] is True and first["search_position"] >= 4
    assert first["signals"]["affinity"] == 1.0
    assert 'interest in "running"' in first["reasons"][0]
    unknown = result["items"][1]
    assert unknown["known"] is False and unknown["score"] is None
    assert result["personalized"] is True and result["ai_influenced"] is True


def test_where_interests_say_nothing_the_search_order_holds(
    engine: Engine, clock: FixedClock
) -> None:
    view(engine, clock, "runner", only(engine, "running")[3:8])
    hiking = [(i, 10.0 - k) for k, i in enumerate(only(engine, "hiking")[:4])]
    result = rerank(engine, "runner", hiking)
    assert ids(result) == [i for i, _ in hiking]
    assert result["ai_influenced"] is False


def test_without_personalization_consent_the_order_is_unchanged(
    engine: Engine, clock: FixedClock
) -> None:
    consent(engine, "private", personalization=False)
    view(engine, clock, "private", category(engine, "running")[3:8])
    candidates = search_results(engine)
    result = rerank(engine, "private", candidates)
    assert ids(result) == [i for i, _ in candidates]
    assert result["personalized"] is False
    assert result["reasons"][0]["kind"] == "consent"


def test_a_stranger_gets_the_search_order(engine: Engine) -> None:
    candidates = search_results(engine)
    result = rerank(engine, "nobody-yet", candidates)
    assert ids(result) == [i for i, _ in candidates]
    assert result["reasons"][0]["kind"] == "cold_start"


def test_the_holdout_gets_the_search_order(
    make_engine: Callable[..., Engine], clock: FixedClock
) -> None:
    engine = make_engine()
    document = channel_document()
    document["holdout"] = {"percent": 50}
    engine.replace_workspace(document)
    spec = engine.workspace.holdout.spec
    held = next(u for u in (f"u{k}" for k in range(100)) if in_holdout(spec, profile_id_for(u)))
    view(engine, clock, held, only(engine, "running")[3:8])
    candidates = search_results(engine)
    result = rerank(engine, held, candidates)
    assert ids(result) == [i for i, _ in candidates]
    assert result["reasons"][0]["kind"] == "holdout"


def test_weights_come_from_the_workspace(
    make_engine: Callable[..., Engine], clock: FixedClock
) -> None:
    engine = make_engine(rerank={"weights": {"search": 1.0, "affinity": 0.0, "model": 0.0}})
    view(engine, clock, "runner", only(engine, "running")[3:8])
    candidates = search_results(engine)
    result = rerank(engine, "runner", candidates)
    assert ids(result) == [i for i, _ in candidates]
    assert "(the search order already fit)" in result["reasons"][0]["text"]
    assert result["ai_influenced"] is False


def test_the_rerank_is_logged_as_a_decision(engine: Engine, clock: FixedClock) -> None:
    consent(engine, "runner", analytics=True)
    view(engine, clock, "runner", only(engine, "running")[3:8])
    result = rerank(engine, "runner", search_results(engine))
    logged = engine.get_decision(result["decision_id"])
    assert logged is not None and logged["channel"] == "search"
    assert logged["profile_id"] == result["profile_id"]
    assert [i["id"] for i in logged["slots"][0]["items"]] == ids(result)


def test_too_many_candidates_for_the_workspace_is_a_400_naming_the_field(
    make_engine: Callable[..., Engine],
) -> None:
    engine = make_engine(rerank={"max_candidates": 2})
    with pytest.raises(ValidationFailed) as error:
        rerank(engine, "a", [("a", 1.0), ("b", 2.0), ("c", 3.0)])
    assert error.value.field == "candidates"


def test_duplicate_candidates_and_non_finite_scores_are_refused() -> None:
    with pytest.raises(ValueError, match="already at candidates"):
        RerankRequest.model_validate(
            {
                "user": {"user_id": "u"},
                "candidates": [{"id": "a", "score": 1}, {"id": "a", "score": 2}],
            }
        )
    with pytest.raises(ValueError, match="finite"):
        RerankRequest.model_validate(
            {"user": {"user_id": "u"}, "candidates": [{"id": "a", "score": float("inf")}]}
        )


def test_the_trained_model_blends_in(clock: FixedClock, tmp_path: Path) -> None:
    from loopwise.catalog.importer import read_items
    from loopwise.config import SAMPLE_WORKSPACE
    from loopwise.storage.memory import MemoryStorage

    document = channel_document(
        rerank={"model": "item_knn", "weights": {"search": 0.0, "affinity": 0.0, "model": 1.0}}
    )
    document["training"] = {"models": ["item_knn"], "min_interactions": 10}
    engine = Engine(
        parse_workspace(document), MemoryStorage(), clock=clock, seed=1, data_dir=tmp_path
    )
    engine.put_items(list(read_items(SAMPLE_WORKSPACE.parent / "items.jsonl")))
    running, hiking = category(engine, "running"), category(engine, "hiking")
    # people who view running items view these two together
    for k in range(12):
        view(engine, clock, f"trainer{k}", [running[0], running[1], hiking[k % 5]])
    engine.train_models(wait=True)
    view(engine, clock, "fan", [running[0]])
    result = rerank(engine, "fan", [(hiking[6], 3.0), (running[1], 1.0), (hiking[7], 2.0)])
    assert ids(result)[0] == running[1]
    assert any("item_knn model" in r for r in result["items"][0]["reasons"])
    assert result["items"][0]["signals"]["model"] == 1.0
