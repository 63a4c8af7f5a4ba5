"""Serving the sequence-aware models: the recent row comes from the live profile."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from loopwise.catalog.importer import read_items
from loopwise.models.serving import ModelStrategy
from tests.models.synthetic import SAMPLE_ITEMS, events_for, message, taste_messages
from tests.models.test_serving import T0, decide, new_engine, view


def test_transitions_are_served_and_follow_what_was_just_viewed(tmp_path: Path) -> None:
    engine, clock = new_engine(tmp_path, models=["hybrid", "transitions"])
    try:
        items = [i.id for i in read_items(SAMPLE_ITEMS)]
        engine.ingest(events_for(taste_messages(list(read_items(SAMPLE_ITEMS)), T0), T0))
        # a planted habit: many people view items[0] and then, a minute later, items[7]
        at = clock()
        for u in range(30):
            first, second = message(f"pair-{u}", items[0], at), message(f"pair-{u}", items[7], at)
            second["timestamp"] = (at.replace(second=30)).isoformat()
            engine.ingest(events_for([first, second], at))
        clock.advance(600)
        engine.train_models()
        strategy = engine.strategies.get("transitions")
        assert isinstance(strategy, ModelStrategy)
        bundle = strategy.bundle
        profile = {"recently_viewed": [items[0], "unknown-item"]}
        recent = bundle.recent_row(profile, "transitions")
        assert recent is not None and recent.nnz == 1
        scores = bundle.scores("transitions", bundle.row({items[0]: 1.0}), recent)
        assert int(np.argmax(scores)) == bundle.index[items[7]]
        hybrid_recent = bundle.recent_row(profile, "hybrid")
        assert hybrid_recent is not None and hybrid_recent.nnz == 1
        # end to end: a new visitor who just viewed items[0] gets items[7] from the hybrid
        view(engine, "newcomer", [items[0], items[1], items[2], items[3], items[4], items[0]])
        slot = decide(engine, "newcomer", n=5)
        assert slot["ai_influenced"] is True
        assert items[7] in [i["id"] for i in slot["items"]]
    finally:
        engine.close()
