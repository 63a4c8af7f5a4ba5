"""Features are the profile's attributes as numbers, one definition for training and serving."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from loopwise.profiles.model import Profile
from loopwise.profiles.reducer import reduce
from loopwise.profiles.settings import ProfileSettings
from loopwise.scores.features import BASE, FeatureSpec, describe, fit_spec, scoring_attributes
from tests.scores.events import event as _event

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def _profile() -> Profile:
    settings = ProfileSettings()
    profile = Profile.new("p1", T0)
    events = [
        _event("page", T0),
        _event("Product Viewed", T0 + timedelta(minutes=1), product_id="i1", category="shoes"),
        _event("Product Added", T0 + timedelta(minutes=2), product_id="i1", price=50.0),
        _event("Product Viewed", T0 + timedelta(days=2), product_id="i2", category="hats"),
        _event("Order Completed", T0 + timedelta(days=2, minutes=3), revenue=80.0,
               products=[{"product_id": "i2", "price": 80.0}]),
    ]  # fmt: skip
    for event in events:
        profile = reduce(profile, event, settings, {})
    return profile


def test_fast_vector_equals_the_column_definitions() -> None:
    settings = ProfileSettings()
    attributes = scoring_attributes(_profile(), settings)
    spec = fit_spec([attributes])
    assert "Product Viewed" in spec.event_names
    assert set(spec.categories) == {"shoes", "hats"}
    fast, slow = spec.vector(attributes), spec.vector_by_name(attributes)
    assert fast.shape == (len(spec),) == slow.shape
    assert np.array_equal(fast, slow)
    names = spec.names
    assert fast[names.index("purchases")] == 1.0
    assert fast[names.index("revenue")] == 80.0
    assert fast[names.index("lifecycle=customer")] == 1.0
    assert fast[names.index("events_30d.Product Viewed")] == 2.0
    assert fast[names.index("last_seen.hour")] == 10.0
    empty = spec.vector({})
    assert np.array_equal(empty, spec.vector_by_name({}))
    assert not np.isnan(empty).any()


def test_scoring_attributes_are_the_profile_at_its_last_event() -> None:
    profile = _profile()
    settings = ProfileSettings()
    later = profile.attributes(profile.last_seen, settings)
    assert scoring_attributes(profile, settings)["events_7d"] == later["events_7d"]
    assert scoring_attributes(profile, settings)["days_since_last_seen"] == 0.0


def test_spec_round_trips_and_describes_its_columns() -> None:
    spec = FeatureSpec(("page", "Order Completed"), ("shoes",))
    assert FeatureSpec.from_json(spec.to_json()) == spec
    assert len(spec) == len(BASE) + 2 * 2 + 1
    assert describe("cart.items") == "items in your cart"
    assert describe("events_7d.page") == "pages viewed in the last 7 days"
    assert describe("events_30d.Order Completed") == '"Order Completed" events in the last 30 days'
    assert describe("affinity.categories.shoes") == 'your interest in "shoes"'
