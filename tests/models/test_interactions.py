from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from loopwise.events.schema import Event
from loopwise.models.interactions import Interaction, InteractionMatrix, interactions_from_events

DAY = 86_400.0


def test_build_sums_event_weights_per_user_and_item() -> None:
    m = InteractionMatrix.build(
        [
            Interaction("u1", "i1", 0.0, "view", 1.0),
            Interaction("u1", "i1", 1.0, "purchase", 1.0),
            Interaction("u1", "i2", 2.0, "add_to_cart", 2.0),
            Interaction("u2", "i2", 3.0, "something else", 1.0),
        ]
    )
    assert m.shape == (2, 2)
    assert m.matrix.dtype == np.float32
    u1, i1, i2 = m.user_index["u1"], m.item_index["i1"], m.item_index["i2"]
    assert m.matrix[u1, i1] == pytest.approx(1 + 5)
    assert m.matrix[u1, i2] == pytest.approx(3 * 2)
    assert m.matrix[m.user_index["u2"], i2] == pytest.approx(1)
    assert m.item_index.id_of(i2) == "i2"
    assert m.item_popularity().tolist() == [1, 2]


def test_custom_weights_and_extra_catalog_columns() -> None:
    m = InteractionMatrix.build(
        [Interaction("u", "i", 0.0, "view")], {"view": 2.5}, item_ids=["catalog-only"]
    )
    assert list(m.item_index.ids) == ["catalog-only", "i"]
    assert m.matrix.toarray().tolist() == [[0.0, 2.5]]


def test_half_life_decay_relative_to_now() -> None:
    its = [Interaction("u", "old", 0.0, "view"), Interaction("u", "new", 14 * DAY, "view")]
    m = InteractionMatrix.build(its, half_life_days=7, now=14 * DAY)
    row = m.matrix.toarray()[0]
    assert row[m.item_index["old"]] == pytest.approx(0.25)
    assert row[m.item_index["new"]] == pytest.approx(1.0)
    # default now = the newest interaction; the future is not boosted
    m2 = InteractionMatrix.build(its, half_life_days=14, now=0.0)
    assert m2.matrix.toarray()[0].tolist() == [1.0, 1.0]
    assert InteractionMatrix.build(its, half_life_days=14).matrix[0, 0] == pytest.approx(0.5)


def test_rows_for_new_users_drop_unknown_items() -> None:
    m = InteractionMatrix.build([Interaction("u", "i1", 0.0), Interaction("u", "i2", 0.0)])
    rows = m.rows_for([{"i2": 3.0, "unknown": 1.0}, {}])
    assert rows.shape == (2, 2)
    assert rows.toarray().tolist() == [[0.0, 3.0], [0.0, 0.0]]


def _event(kind: str, name: str | None, props: dict[str, object], **ids: str) -> Event:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return Event("m", kind, at, at, event=name, properties=props, **ids)  # type: ignore[arg-type]


def test_interactions_from_events_uses_kinds_and_item_ids() -> None:
    events = [
        _event("track", "Product Viewed", {"product_id": "p1"}, anonymous_id="anon"),
        _event("track", "Product Added", {"sku": "p2"}, user_id="known"),
        _event(
            "track",
            "Order Completed",
            {"products": [{"product_id": "p1"}, {"product_id": "p3"}]},
            user_id="known",
        ),
        _event("page", None, {"product_id": "p9"}, user_id="known"),  # pages are not interest
        _event("track", "Content Viewed", {"item_id": "p8"}, user_id="known"),  # impression
        _event("track", "Signed Up", {}, user_id="known"),
    ]
    profiles = {"anon": "profile-1", "known": "profile-1"}
    out = list(interactions_from_events(events, lambda e: profiles[e.identity]))
    assert [(i.user, i.item, i.event) for i in out] == [
        ("profile-1", "p1", "item_view"),
        ("profile-1", "p2", "add_to_cart"),
        ("profile-1", "p1", "purchase"),
        ("profile-1", "p3", "purchase"),
    ]
    assert out[0].timestamp == datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    matrix = InteractionMatrix.build(out)
    assert matrix.matrix[0, matrix.item_index["p1"]] == pytest.approx(1 + 5)
