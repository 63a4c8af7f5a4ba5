from __future__ import annotations

import numpy as np
import pytest

from loopwise.catalog.validate import parse_item
from loopwise.sim.catalog import DEFAULT_CATEGORIES, VOCABULARY, SimCatalog, generate_catalog


@pytest.fixture(scope="module")
def catalog() -> SimCatalog:
    return generate_catalog(400, np.random.default_rng(3))


def test_prices_are_positive_and_match_the_items(catalog: SimCatalog) -> None:
    assert (catalog.price > 0).all()
    assert [item.price for item in catalog.items] == catalog.price.tolist()


def test_prices_follow_the_category_price_levels(catalog: SimCatalog) -> None:
    def median_price(category: str) -> float:
        index = catalog.categories.index(category)
        return float(np.median(catalog.price[catalog.category_index == index]))

    assert median_price("electronics") > 3 * median_price("grocery")


def test_every_category_has_items_and_vectors_encode_category_and_tags(
    catalog: SimCatalog,
) -> None:
    n_cat, n_tags = len(catalog.categories), len(catalog.tags)
    assert set(catalog.category_index.tolist()) == set(range(n_cat))
    assert catalog.item_vectors.shape == (400, n_cat + n_tags + catalog.free_dims)
    for i, item in enumerate(catalog.items):
        row = catalog.item_vectors[i]
        assert np.flatnonzero(row[:n_cat]).tolist() == [catalog.category_index[i]]
        assert item.categories == (catalog.categories[catalog.category_index[i]],)
        tag_names = {catalog.tags[j] for j in np.flatnonzero(row[n_cat : n_cat + n_tags])}
        assert tag_names == set(item.tags)
        assert all(
            catalog.tag_category[catalog.tags.index(t)] == row[:n_cat].argmax() for t in tag_names
        )


def test_text_carries_category_words_for_content_models(catalog: SimCatalog) -> None:
    for item in catalog.items:
        category = item.categories[0]
        vocab = VOCABULARY[category]
        words = item.text.lower().replace(",", " ").replace(".", " ").split()
        assert category in words
        assert all(tag in item.text for tag in item.tags)
        own = sum(word in vocab.words for word in words)
        other = sum(
            word in VOCABULARY[c].words
            for c in DEFAULT_CATEGORIES
            if c != category
            for word in words
        )
        assert own >= 3 and own > other, item.text


def test_items_pass_the_catalog_validator(catalog: SimCatalog) -> None:
    for item in catalog.items[:50]:
        assert parse_item(item.to_record()) == item


def test_same_rng_seed_same_catalog_other_seed_differs() -> None:
    def records(seed: int) -> list[dict[str, object]]:
        return [
            item.to_record() for item in generate_catalog(60, np.random.default_rng(seed)).items
        ]

    assert records(5) == records(5)
    assert records(5) != records(6)


def test_unknown_categories_and_many_tags_get_generated_words() -> None:
    catalog = generate_catalog(30, np.random.default_rng(1), ("garden", "pets"), 7)
    assert len(catalog.tags) == 14
    assert len(set(catalog.tags)) == 14
    for item in catalog.items:
        assert item.categories[0] in item.text


@pytest.mark.parametrize(
    ("n_items", "categories", "tags"), [(0, DEFAULT_CATEGORIES, 4), (5, (), 4), (5, ("a", "a"), 4)]
)
def test_bad_arguments_are_refused(n_items: int, categories: tuple[str, ...], tags: int) -> None:
    with pytest.raises(ValueError):
        generate_catalog(n_items, np.random.default_rng(0), categories, tags)
