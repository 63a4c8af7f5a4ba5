"""The sentence-embedding content model (the optional ``loopwise[embeddings]`` extra)."""

from __future__ import annotations

import numpy as np
import pytest

from loopwise.catalog.items import Item
from loopwise.errors import ConfigError
from loopwise.models import embeddings
from loopwise.models.embeddings import EmbeddingContentModel, embeddings_available
from loopwise.models.evaluate import evaluate
from loopwise.models.interactions import Interaction, InteractionMatrix
from tests.models import catalog, planted

needs_extra = pytest.mark.skipif(
    not embeddings_available(),
    reason="the embeddings extra is not installed (pip install 'loopwise[embeddings]'); "
    "scripts/install installs it",
)

SHOP = {
    "sax": Item(id="sax", title="Tenor saxophone", text="A brass instrument for jazz players"),
    "trumpet": Item(id="trumpet", title="Jazz trumpet", text="Brass horn for swing bands"),
    "hose": Item(id="hose", title="Garden hose", text="Water your lawn and flower beds"),
    "mower": Item(id="mower", title="Lawn mower", text="Cut the grass in your garden"),
    "blank": Item(id="blank", title=""),
}


def _matrix() -> InteractionMatrix:
    rows = [Interaction("u1", "sax", 1.0), Interaction("u2", "hose", 2.0)]
    return InteractionMatrix.build(rows, item_ids=list(SHOP))


def _bag_of_words(texts: list[str]) -> np.ndarray:
    """A stand-in encoder: one dimension per vocabulary word."""
    vocab = sorted({w for t in texts for w in t.lower().split()})
    out = np.zeros((len(texts), len(vocab)), dtype=np.float32)
    for r, text in enumerate(texts):
        for word in text.lower().split():
            out[r, vocab.index(word)] += 1.0
    return out


@needs_extra
def test_packaged_model_puts_related_items_together() -> None:
    model = EmbeddingContentModel()
    matrix = _matrix()
    model.fit(matrix, SHOP)
    assert model.vectors is not None and model.vectors.shape == (5, 384)
    col = matrix.item_index
    # semantic neighbours, with no word in common between "saxophone" and "trumpet" titles
    assert model.similar_items(col["sax"], 1)[0][0] == col["trumpet"]
    assert model.similar_items(col["hose"], 1)[0][0] == col["mower"]
    # a user who played the saxophone gets the trumpet before garden tools
    row = matrix.rows_for([{"sax": 1.0}])
    ranked = [i for i, _ in model.recommend(row, 3, exclude=np.array([col["sax"]]))]
    assert ranked[0] == col["trumpet"]
    # the item without text scores 0 for everyone
    assert model.score_user(row)[col["blank"]] == 0.0


@needs_extra
def test_evaluate_runs_content_embeddings_by_name() -> None:
    out = evaluate(planted(), models=["popularity", "content_embeddings"], items=catalog())
    assert list(out["models"]) == ["popularity", "content_embeddings"]
    assert out["models"]["content_embeddings"]["ndcg@10"] > out["models"]["popularity"]["ndcg@10"]


def test_injected_encoder_gives_the_same_contract() -> None:
    model = EmbeddingContentModel(encoder=_bag_of_words)
    matrix = _matrix()
    model.fit(matrix, SHOP)
    col = matrix.item_index
    assert model.similar_items(col["mower"], 1)[0][0] == col["hose"]  # "garden", "lawn"
    rows = matrix.rows_for([{"sax": 1.0}, {}])
    scores = model.score_users(rows)
    assert scores.shape == (2, 5) and scores.dtype == np.float32
    assert np.all(scores[1] == 0.0)  # no history, no opinion
    with pytest.raises(ValueError, match="needs catalog items with text"):
        EmbeddingContentModel(encoder=_bag_of_words).fit(matrix, {"blank": SHOP["blank"]})


def test_missing_extra_is_a_clear_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embeddings, "embeddings_available", lambda: False)
    with pytest.raises(ConfigError, match=r"loopwise\[embeddings\]") as err:
        EmbeddingContentModel()
    assert err.value.field == "models"
    with pytest.raises(ConfigError, match="embeddings extra"):
        evaluate(planted(), models=["content_embeddings"], items=catalog())
