"""A synthetic catalog whose items have a hidden ("latent") position in taste space.

Each item gets a vector laid out as ``[categories | tags | free dims]``: a one-hot category, its
tags, and a few free Gaussian dimensions. The first two blocks are visible in the item's
metadata and text (so content models can learn them); the free dims are hidden structure that
only collaborative models can recover from behaviour. Titles and descriptions are drawn mostly
from the category's own vocabulary and name the tags, so TF-IDF models have real signal.
Prices are log-normal per category (books are cheap, electronics dear), as in real shops.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from loopwise.catalog.items import Item

DEFAULT_START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday; simulations start here by default


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """Words that make a category recognisable in text."""

    nouns: tuple[str, ...]
    words: tuple[str, ...]
    tags: tuple[str, ...]
    log_price: float  # mean of log(price) for the category


VOCABULARY: dict[str, Vocabulary] = {
    "electronics": Vocabulary(
        ("headphones", "speaker", "charger", "monitor", "keyboard", "camera"),
        ("battery", "bluetooth", "screen", "usb", "hdmi", "pixel", "audio", "power"),
        ("wireless", "gaming", "portable", "smart", "4k", "noise-cancelling"),
        5.0,
    ),
    "books": Vocabulary(
        ("novel", "cookbook", "biography", "atlas", "anthology", "guide"),
        ("chapter", "author", "paperback", "story", "edition", "pages", "reader", "hardcover"),
        ("fiction", "history", "science", "children", "poetry", "mystery"),
        2.8,
    ),
    "fashion": Vocabulary(
        ("jacket", "dress", "sneakers", "scarf", "jeans", "shirt"),
        ("cotton", "denim", "fit", "tailored", "leather", "wool", "collar", "sleeve"),
        ("casual", "formal", "vintage", "summer", "winter", "streetwear"),
        4.0,
    ),
    "home": Vocabulary(
        ("lamp", "rug", "cushion", "vase", "shelf", "blanket"),
        ("living", "room", "decor", "oak", "ceramic", "linen", "cosy", "interior"),
        ("kitchen", "bedroom", "garden", "minimalist", "rustic", "bathroom"),
        3.9,
    ),
    "sports": Vocabulary(
        ("racket", "dumbbell", "yoga-mat", "bottle", "backpack", "helmet"),
        ("training", "workout", "grip", "outdoor", "endurance", "gym", "sweat", "fitness"),
        ("running", "cycling", "tennis", "hiking", "swimming", "climbing"),
        3.7,
    ),
    "beauty": Vocabulary(
        ("serum", "moisturiser", "lipstick", "shampoo", "perfume", "cleanser"),
        ("skin", "glow", "fragrance", "hydrating", "vitamin", "gentle", "scent", "hair"),
        ("organic", "vegan", "sensitive", "anti-aging", "fragrance-free", "spf"),
        3.2,
    ),
    "toys": Vocabulary(
        ("puzzle", "robot", "doll", "blocks", "kite", "board-game"),
        ("play", "kids", "fun", "colourful", "imagination", "family", "build", "toddler"),
        ("educational", "outdoor-play", "plush", "stem", "creative", "wooden"),
        3.1,
    ),
    "grocery": Vocabulary(
        ("coffee", "tea", "chocolate", "olive-oil", "granola", "honey"),
        ("roast", "flavour", "fresh", "pantry", "blend", "harvest", "taste", "breakfast"),
        ("fair-trade", "gluten-free", "bio", "spicy", "sweet", "gourmet"),
        2.5,
    ),
}
DEFAULT_CATEGORIES: tuple[str, ...] = tuple(VOCABULARY)
ADJECTIVES = ("classic", "premium", "everyday", "essential", "deluxe", "compact", "bold", "soft")
GENERIC_WORDS = ("quality", "design", "great", "value", "new", "favourite", "perfect", "gift")
PRICE_SIGMA = 0.45  # spread of log(price) within a category
MIN_PRICE = 1.0


@dataclass(frozen=True)
class SimCatalog:
    """The items plus the ground truth the simulator (and only it) knows about them."""

    items: list[Item]
    item_vectors: np.ndarray  # (n_items, d): [categories | tags | free dims]
    quality: np.ndarray  # (n_items,) appeal every user shares
    price: np.ndarray  # (n_items,) > 0, equal to items[i].price
    category_index: np.ndarray  # (n_items,) int index into ``categories``
    categories: tuple[str, ...]
    tags: tuple[str, ...]  # all tag names; tag j belongs to category ``tag_category[j]``
    tag_category: np.ndarray  # (n_tags,) int
    free_dims: int
    ids: list[str] = field(init=False)
    index_of: dict[str, int] = field(init=False)
    reference_price: float = field(init=False)  # catalog median price: where price is neutral

    def __post_init__(self) -> None:
        ids = [item.id for item in self.items]
        object.__setattr__(self, "ids", ids)
        object.__setattr__(self, "index_of", {item_id: i for i, item_id in enumerate(ids)})
        object.__setattr__(self, "reference_price", float(np.median(self.price)))

    def __len__(self) -> int:
        return len(self.items)

    @property
    def dims(self) -> int:
        return int(self.item_vectors.shape[1])

    def items_in(self, categories: Sequence[int]) -> np.ndarray:
        """Indices of the items in any of the given category indices."""
        return np.flatnonzero(np.isin(self.category_index, np.asarray(categories, dtype=int)))


def vocabulary_for(category: str, tags_per_category: int) -> Vocabulary:
    """The built-in vocabulary, or made-up category words for a category we have none for."""
    known = VOCABULARY.get(category)
    if known is None:
        known = Vocabulary(
            tuple(f"{category}-{kind}" for kind in ("item", "set", "kit", "pack")),
            (category, *(f"{category}{k}" for k in range(5))),
            (),
            3.5,
        )
    tags = known.tags[:tags_per_category]
    extra = tuple(f"{category}-tag{k}" for k in range(len(tags), tags_per_category))
    return Vocabulary(known.nouns, known.words, tags + extra, known.log_price)


def generate_catalog(
    n_items: int,
    rng: np.random.Generator,
    categories: Sequence[str] = DEFAULT_CATEGORIES,
    tags_per_category: int = 4,
    *,
    free_dims: int = 4,
    quality_sd: float = 0.8,
    now: datetime = DEFAULT_START,
) -> SimCatalog:
    """``n_items`` items spread unevenly over ``categories`` (some categories are bigger).

    ``quality_sd`` sets how much appeal all users share: it is what makes popularity a fair
    baseline (popular items are good for most people), while tastes make personalization win."""
    if n_items < 1:
        raise ValueError("n_items must be at least 1")
    if not categories or len(set(categories)) != len(categories):
        raise ValueError("give at least one category, each once")
    if tags_per_category < 1:
        raise ValueError("tags_per_category must be at least 1")
    vocab = [vocabulary_for(c, tags_per_category) for c in categories]
    n_cat = len(categories)
    tags = tuple(tag for v in vocab for tag in v.tags)
    tag_category = np.repeat(np.arange(n_cat), tags_per_category)
    n_tags = len(tags)

    shares = rng.dirichlet(np.full(n_cat, 4.0))
    category_index = rng.choice(n_cat, size=n_items, p=shares)
    # every category gets at least one item when there is room, so every taste can be served
    if n_items >= n_cat:
        category_index[rng.permutation(n_items)[:n_cat]] = np.arange(n_cat)
    log_mu = np.array([v.log_price for v in vocab])[category_index]
    price = np.maximum(
        np.round(np.exp(rng.normal(log_mu, PRICE_SIGMA)), 2) - 0.01, MIN_PRICE
    ).round(2)
    quality = rng.normal(0.0, quality_sd, n_items)

    vectors = np.zeros((n_items, n_cat + n_tags + free_dims))
    vectors[np.arange(n_items), category_index] = 1.0
    vectors[:, n_cat + n_tags :] = rng.normal(0.0, 0.5, (n_items, free_dims))
    n_item_tags = rng.choice([1, 2], size=n_items, p=[0.4, 0.6])
    created = rng.integers(0, 365 * 86_400, n_items)  # seconds before ``now`` (wire precision)
    items: list[Item] = []
    for i in range(n_items):
        c = int(category_index[i])
        k = min(int(n_item_tags[i]), tags_per_category)
        own = rng.choice(tags_per_category, size=k, replace=False)
        tag_ids = c * tags_per_category + own
        vectors[i, n_cat + tag_ids] = 1.0
        item_tags = tuple(tags[t] for t in tag_ids)
        title, text = _describe(rng, categories[c], vocab[c], item_tags)
        item_id = f"item-{i + 1:05d}"
        items.append(
            Item(
                id=item_id,
                title=title,
                text=text,
                url=f"https://shop.example.com/p/{item_id}",
                image=f"https://shop.example.com/img/{item_id}.jpg",
                categories=(categories[c],),
                tags=item_tags,
                attributes={
                    "price": float(price[i]),
                    "currency": "USD",
                    "margin": round(float(rng.uniform(0.1, 0.5)), 2),
                    "in_stock": True,
                },
                created_at=now - timedelta(seconds=int(created[i])),
                updated_at=now - timedelta(seconds=int(created[i])),
            )
        )
    return SimCatalog(
        items=items,
        item_vectors=vectors,
        quality=quality,
        price=price.astype(float),
        category_index=category_index.astype(int),
        categories=tuple(categories),
        tags=tags,
        tag_category=tag_category,
        free_dims=free_dims,
    )


def _describe(
    rng: np.random.Generator, category: str, vocab: Vocabulary, tags: tuple[str, ...]
) -> tuple[str, str]:
    """Title and text: three category words, then five words that are 70% category, 30%
    generic filler; the tags are named. Enough signal for TF-IDF, not a giveaway."""
    noun = vocab.nouns[int(rng.integers(len(vocab.nouns)))]
    adjective = ADJECTIVES[int(rng.integers(len(ADJECTIVES)))]
    title = f"{adjective} {tags[0]} {noun}".replace("-", " ").title()
    words = [vocab.words[int(i)] for i in rng.integers(len(vocab.words), size=3)] + [
        vocab.words[int(rng.integers(len(vocab.words)))]
        if rng.random() < 0.7
        else GENERIC_WORDS[int(rng.integers(len(GENERIC_WORDS)))]
        for _ in range(5)
    ]
    text = f"{title}. Our {category} range: {noun}, {', '.join(tags)}. {' '.join(words)}."
    return title, text
