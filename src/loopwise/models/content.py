"""Content-based recommendations: TF-IDF over item text (scikit-learn's ``TfidfVectorizer``).

Each item becomes an L2-normalised TF-IDF row built from its title, text, categories and tags. A
user's profile is the interaction-weighted mean of the rows of their items; scores are the cosine
between profile and item rows. Items need no interactions — a new catalog item is scored as soon
as it has text — which is what makes this the cold-start component of a hybrid.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
from scipy.sparse import csr_matrix

from loopwise.catalog.items import Item
from loopwise.models.base import BaseRecommender, check_rows, products
from loopwise.models.interactions import InteractionMatrix

FIELDS: tuple[str, ...] = ("title", "text", "categories", "tags")
#: A token ``TfidfVectorizer`` keeps (its default ``token_pattern``: two or more word characters).
if TYPE_CHECKING:
    from sklearn.feature_extraction.text import TfidfVectorizer

_WORD = re.compile(r"(?u)\b\w\w+\b")


def item_text(item: Item, fields: Sequence[str] = FIELDS) -> str:
    """The text of ``item`` the vectorizer sees: the chosen fields joined by spaces."""
    parts: list[str] = []
    for name in fields:
        value = getattr(item, name)
        if isinstance(value, str):
            parts.append(value)
        else:
            parts.extend(str(v) for v in value)
    return " ".join(p for p in parts if p)


def has_text(items: Mapping[str, Item] | None, fields: Sequence[str] = FIELDS) -> bool:
    """Whether any item has a word in ``fields`` that TF-IDF keeps (the content model can be
    fitted: one-letter text alone leaves the vectorizer an empty vocabulary)."""
    if not items:
        return False
    return any(_WORD.search(item_text(item, fields)) for item in items.values())


class ContentModel(BaseRecommender):
    """TF-IDF content model. ``fit`` needs ``items`` (catalog by id); matrix columns without a
    catalog item or without text get an all-zero row (score 0 for everyone)."""

    name = "content"

    def __init__(
        self,
        fields: Sequence[str] = FIELDS,
        max_features: int | None = 50_000,
        ngram_range: tuple[int, int] = (1, 2),
        min_df: int = 1,
    ) -> None:
        unknown = set(fields) - set(FIELDS)
        if unknown:
            raise ValueError(f"unknown item fields {sorted(unknown)}; use some of {FIELDS}")
        self.fields = tuple(fields)
        self.max_features = max_features
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.vectors: csr_matrix | None = None  # (n_items, n_terms), rows L2-normalised
        self.vectorizer: TfidfVectorizer | None = None  # set by fit

    def fit(self, matrix: InteractionMatrix, items: Mapping[str, Item] | None = None) -> None:
        if not has_text(items, self.fields):
            raise ValueError("ContentModel needs catalog items with text (title, text, ...)")
        assert items is not None
        texts = []
        for item_id in matrix.item_index.ids:
            item = items.get(item_id)
            texts.append(item_text(item, self.fields) if item is not None else "")
        from sklearn.feature_extraction.text import TfidfVectorizer  # ~0.4 s to import

        vectorizer = TfidfVectorizer(
            max_features=self.max_features,
            ngram_range=self.ngram_range,
            min_df=self.min_df,
            sublinear_tf=True,
            dtype=np.float32,
        )
        self.vectors = csr_matrix(vectorizer.fit_transform(texts), dtype=np.float32)
        self.vectorizer = vectorizer
        self.n_items = matrix.matrix.shape[1]

    def user_profiles(self, user_items: csr_matrix) -> csr_matrix:
        """L2-normalised profiles, shape (n_users, n_terms): the weighted mean of the user's item
        rows (normalising makes mean and sum equivalent for cosine)."""
        self._require_fitted(self.vectors)
        assert self.vectors is not None
        rows = check_rows(user_items, self.n_items)
        from sklearn.preprocessing import normalize

        return csr_matrix(normalize(rows @ self.vectors), dtype=np.float32)

    def score_users(self, user_items: csr_matrix) -> np.ndarray:
        if user_items.shape[0] == 1:
            return self._score_one(user_items)
        profiles = self.user_profiles(user_items)
        assert self.vectors is not None
        return np.asarray((profiles @ self.vectors.T).toarray(), dtype=np.float32)

    def _score_one(self, user_items: csr_matrix) -> np.ndarray:
        """One person (decide's fold-in): the same scores from a dense profile — a sparse
        matrix times a dense vector, several times faster than the sparse products and the
        validation of ``normalize`` for a single row."""
        self._require_fitted(self.vectors)
        assert self.vectors is not None
        rows = check_rows(user_items, self.n_items)
        profile = products(rows, self.vectors).ravel()
        norm = float(np.linalg.norm(profile))
        scores = np.asarray(self.vectors @ profile, dtype=np.float32)
        if norm > 0:
            scores /= norm
        return scores.reshape(1, -1)

    def similar_items(self, item_index: int, n: int = 10) -> list[tuple[int, float]]:
        self._require_fitted(self.vectors)
        assert self.vectors is not None
        scores = np.asarray((self.vectors @ self.vectors[item_index].T).toarray()).ravel()
        return self._similar_from(scores, item_index, n)
