"""``/ui/models``: the holdout metrics per model and per segment, as training stores them."""

from __future__ import annotations

from loopwise.console.page_models import _metric_rows, _segment_rows

METRICS = {
    "models": {"als": {"ndcg@10": 0.1, "recall@20": 0.2}, "hybrid": {"ndcg@10": 0.15}},
    "split": {"users": 40, "test_interactions": 80},
    "segments": {"vip": {"users": 25, "hybrid": {"ndcg@10": 0.3, "recall@20": 0.4}}},
}


def test_model_rows_come_from_the_models_not_the_split() -> None:
    assert _metric_rows(METRICS) == [
        ("als", "ndcg@10", 0.1),
        ("als", "recall@20", 0.2),
        ("hybrid", "ndcg@10", 0.15),
    ]
    assert _metric_rows({"als": {"ndcg@10": 0.1}}) == [("als", "ndcg@10", 0.1)]  # older shape


def test_segment_rows_name_the_segment_its_people_and_the_model() -> None:
    assert _segment_rows(METRICS) == [
        {"segment": "vip", "users": 25, "model": "hybrid", "ndcg@10": 0.3, "recall@20": 0.4}
    ]
    assert _segment_rows({"models": {}}) == []
