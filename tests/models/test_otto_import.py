"""The OTTO sessions in ``../shared/data/otto`` as a real-format import for the sequence-aware
models (20 sessions: too few to measure quality, enough to prove the path end to end)."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopwise.models.datasets import read_otto
from loopwise.models.evaluate import evaluate
from loopwise.models.interactions import InteractionMatrix
from loopwise.models.sequence import TransitionModel

OTTO = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "otto" / "train.jsonl"


@pytest.mark.skipif(not OTTO.is_file(), reason=f"no OTTO sample at {OTTO}")
def test_otto_sessions_train_the_transitions_and_evaluate() -> None:
    interactions = read_otto(OTTO)
    assert len({it.user for it in interactions}) == 20
    matrix = InteractionMatrix.build(interactions)
    model = TransitionModel()
    model.fit(matrix)
    assert model.transitions is not None and model.transitions.nnz > 0
    result = evaluate(interactions, ["popularity", "transitions", "hybrid"])
    assert result["split"]["users"] > 0
    assert set(result["models"]) == {"popularity", "transitions", "hybrid"}
