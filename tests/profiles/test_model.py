from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from loopwise.catalog.items import Item
from loopwise.errors import ConfigError, ValidationFailed
from loopwise.profiles.model import Profile, day_number
from loopwise.profiles.reducer import reduce
from loopwise.profiles.settings import EngagementWeights, ProfileSettings

from . import T0, ev

SETTINGS = ProfileSettings()
CATALOG = {"sku-1": Item(id="sku-1", categories=("shoes",), tags=("red",))}

PROFILE_KEYS = {
    "city",
    "pages_7d",
    "pages_30d",
    "page_paths_7d",
    "page_paths_30d",
    "campaign",
    "campaigns",
    "id",
    "user_id",
    "anonymous_ids",
    "known",
    "first_seen",
    "last_seen",
    "days_since_first_seen",
    "days_since_last_seen",
    "sessions",
    "page_views",
    "events",
    "events_7d",
    "events_30d",
    "is_returning",
    "recently_viewed",
    "item_views",
    "viewed_this_visit",
    "viewed_last_visit",
    "affinity",
    "top_category",
    "top_categories",
    "purchases",
    "revenue",
    "average_order_value",
    "purchased_items",
    "cart",
    "device",
    "country",
    "region",
    "locale",
    "timezone",
    "traffic_source",
    "traits",
    "lifecycle",
    "engagement",
}


def build(*events: Any, settings: ProfileSettings = SETTINGS) -> Profile:
    profile = Profile.new("p_1", T0)
    for event in events:
        profile = reduce(profile, event, settings, CATALOG)
    return profile


def view(at: float, item: str = "sku-1") -> Any:
    return ev("track", "Product Viewed", at, properties={"product_id": item})


def test_new_profile_is_empty_and_attributes_are_complete() -> None:
    profile = Profile.new("p_1", T0)
    attrs = profile.attributes(T0, SETTINGS)
    assert set(attrs) == PROFILE_KEYS
    assert attrs["sessions"] == 0 and attrs["events"] == 0 and attrs["known"] is False
    assert attrs["lifecycle"] == "prospect" and attrs["engagement"] == 0.0
    assert attrs["affinity"] == {"items": {}, "categories": {}, "tags": {}}
    assert attrs["cart"] == {"items": [], "value": 0.0, "abandoned": False}
    assert attrs["device"] == {"type": None, "os": None, "browser": None}


def test_new_truncates_to_milliseconds_so_records_round_trip() -> None:
    profile = Profile.new("p_1", T0.replace(microsecond=123_456))
    assert profile.first_seen.microsecond == 123_000
    assert Profile.from_record(profile.to_record()) == profile


def test_record_is_json_safe_compact_and_round_trips() -> None:
    context = {"userAgent": "curl/8", "location": {"country": "de"}, "locale": "de-DE"}
    profile = build(
        ev("identify", at=0, user_id="u1", traits={"plan": {"tier": "pro"}}, context=context),
        ev("page", at=1, context={"page": {"referrer": "https://t.co/x"}}),
        view(2),
        ev("track", "Product Added", 3, properties={"product_id": "sku-1", "price": 9.5}),
        ev("track", "Order Completed", 4, properties={"products": [{"id": "sku-1"}], "total": 9.5}),
        view(5, "sku-2"),
    )
    record = profile.to_record()
    encoded = json.dumps(record, allow_nan=False)
    assert Profile.from_record(json.loads(encoded)) == profile
    assert Profile.from_record(record) == profile
    empty = Profile.new("p_2", T0).to_record()
    assert set(empty) == {"v", "id", "first_seen", "last_seen"}


def test_damaged_record_raises_validation_failed_naming_the_profile() -> None:
    record = build(view(0)).to_record()
    record["last_seen"] = "yesterday-ish"
    with pytest.raises(ValidationFailed) as info:
        Profile.from_record(record)
    assert info.value.field == "last_seen" and "replay" in info.value.detail
    with pytest.raises(ValidationFailed) as info:
        Profile.from_record({"id": "p_9"})
    assert info.value.field == "profiles['p_9']"


def test_affinity_halves_after_one_half_life_and_is_rounded() -> None:
    profile = build(view(0))
    now = T0 + timedelta(days=SETTINGS.affinity_half_life_days)
    affinity = profile.attributes(now, SETTINGS)["affinity"]
    assert affinity == {"items": {"sku-1": 0.5}, "categories": {"shoes": 0.5}, "tags": {"red": 0.5}}
    third = profile.attributes(T0 + timedelta(days=1), SETTINGS)["affinity"]["items"]["sku-1"]
    assert third == round(0.5 ** (1 / 14), 6)


def test_attributes_before_the_as_of_time_do_not_inflate_scores() -> None:
    profile = build(view(0))
    earlier = T0 - timedelta(days=3)
    assert profile.attributes(earlier, SETTINGS)["affinity"]["items"] == {"sku-1": 1.0}


def test_top_categories_ranked_by_decayed_score() -> None:
    events = [
        ev("track", "Product Viewed", i, properties={"product_id": f"x{i}", "category": cat})
        for i, cat in enumerate(["a", "b", "b", "c", "c", "c", "d"])
    ]
    attrs = build(*events).attributes(T0, SETTINGS)
    assert attrs["top_category"] == "c"
    # a and d have one view each: the later one is worth more at the time of the last event
    assert attrs["top_categories"] == ["c", "b", "d"]


def test_event_windows_are_relative_to_now() -> None:
    profile = build(
        ev("page", at=timedelta(days=0) + T0),
        view(60 * 24 * 10),  # day 10
        view(60 * 24 * 12),  # day 12
    )
    at_day_12 = profile.attributes(T0 + timedelta(days=12), SETTINGS)
    assert at_day_12["events_7d"] == {"Product Viewed": 2}
    assert at_day_12["events_30d"] == {"Product Viewed": 2, "page": 1}
    at_day_40 = profile.attributes(T0 + timedelta(days=40), SETTINGS)
    assert at_day_40["events_7d"] == {} and at_day_40["events_30d"] == {"Product Viewed": 1}


def test_this_visits_and_the_last_visits_views_are_split_at_the_session_timeout() -> None:
    def viewed(item: str, minute: float) -> Any:
        return ev("track", "Product Viewed", minute, properties={"product_id": item})

    # a visit at 0-10 min, one at 200-205 min, and one at 300 min: 30-minute timeout
    profile = build(
        viewed("old", 0), viewed("seen-twice", 10), viewed("prev1", 200),
        viewed("prev2", 205), viewed("seen-twice", 206), viewed("now1", 300),
    )  # fmt: skip
    at = T0 + timedelta(minutes=310)
    attrs = profile.attributes(at, SETTINGS)
    assert attrs["viewed_this_visit"] == ["now1"]
    # an item viewed in two visits counts in the later one
    assert attrs["viewed_last_visit"] == ["seen-twice", "prev2", "prev1"]
    # 40 minutes after the last view nothing is in progress: that visit is the last one
    later = profile.attributes(T0 + timedelta(minutes=340), SETTINGS)
    assert later["viewed_this_visit"] == [] and later["viewed_last_visit"] == ["now1"]
    hour = ProfileSettings(session_timeout_minutes=120)  # 95 minutes apart: one visit
    assert profile.attributes(at, hour)["viewed_this_visit"] == [
        "now1",
        "seen-twice",
        "prev2",
        "prev1",
    ]
    assert profile.attributes(at, hour)["viewed_last_visit"] == ["old"]
    assert Profile.new("nobody", T0).attributes(at, SETTINGS)["viewed_last_visit"] == []


def test_cart_abandoned_only_after_the_timeout_without_purchase() -> None:
    add = ev("track", "Product Added", 0, properties={"product_id": "sku-1", "price": 20})
    profile = build(add)
    minutes = SETTINGS.cart_abandon_after_minutes
    assert profile.attributes(T0 + timedelta(minutes=minutes - 1), SETTINGS)["cart"] == {
        "items": ["sku-1"],
        "value": 20.0,
        "abandoned": False,
    }
    assert profile.attributes(T0 + timedelta(minutes=minutes), SETTINGS)["cart"]["abandoned"]
    bought = build(add, ev("track", "Order Completed", 5, properties={"product_id": "sku-1"}))
    assert not bought.attributes(T0 + timedelta(days=2), SETTINGS)["cart"]["abandoned"]


@pytest.mark.parametrize(
    ("orders", "sessions", "days_later", "expected"),
    [
        (0, 1, 1, "prospect"),
        (1, 1, 1, "customer"),
        (2, 1, 1, "repeat_customer"),
        (1, 1, 90, "churned"),
        (0, 2, 90, "churned"),
        (0, 1, 200, "prospect"),  # one visit, never bought: not churned, just gone
        (2, 1, 89, "repeat_customer"),
    ],
)
def test_lifecycle(orders: int, sessions: int, days_later: int, expected: str) -> None:
    events = [ev("page", at=i * 120) for i in range(sessions)]
    events += [
        ev("track", "Order Completed", 1 + i, properties={"total": 5}) for i in range(orders)
    ]
    profile = build(*sorted(events, key=lambda e: e.timestamp))
    now = profile.last_seen + timedelta(days=days_later)
    assert profile.attributes(now, SETTINGS)["lifecycle"] == expected


def test_engagement_is_bounded_and_rewards_each_component() -> None:
    base = build(ev("page", at=0))
    score = base.engagement(T0, SETTINGS)
    assert 0 < score < 100
    deeper = build(ev("page", at=0), ev("page", at=1), view(2))
    assert deeper.engagement(T0, SETTINGS) > score
    buyer = build(ev("page", at=0), ev("track", "Order Completed", 1))
    assert buyer.engagement(T0, SETTINGS) > score
    assert base.engagement(T0 + timedelta(days=30), SETTINGS) < score
    pages = [ev("page", at=session * 31 + i / 10) for session in range(40) for i in range(10)]
    orders = [ev("track", "Order Completed", 40 * 31 + i) for i in range(10)]
    heavy = build(*pages, *orders)
    assert 95 < heavy.engagement(heavy.last_seen, SETTINGS) <= 100


def test_engagement_follows_the_weights() -> None:
    only_recency = ProfileSettings(
        engagement_weights=EngagementWeights(recency=1, frequency=0, depth=0, conversion=0)
    )
    profile = build(ev("page", at=0))
    assert profile.engagement(T0, only_recency) == 100.0
    assert profile.engagement(T0 + timedelta(days=7), only_recency) == 50.0


def test_days_since_and_iso_times() -> None:
    attrs = build(ev("page", at=0)).attributes(T0 + timedelta(hours=36), SETTINGS)
    assert attrs["first_seen"] == "2026-03-02T12:00:00.000Z"
    assert attrs["days_since_last_seen"] == 1.5 and attrs["days_since_first_seen"] == 1.5


def test_context_attributes_have_the_context_shape() -> None:
    profile = build(ev("page", at=0, context={"location": {"country": "fr"}, "locale": "fr"}))
    assert profile.context_attributes() == {
        "country": "FR",
        "locale": "fr",
        "traffic_source": "direct",
    }


def test_day_number_is_the_utc_day() -> None:
    late = datetime(2026, 3, 2, 23, 30, tzinfo=UTC)
    assert day_number(late) + 1 == day_number(late + timedelta(hours=1))


def test_settings_validate_ranges_with_config_errors() -> None:
    with pytest.raises(ConfigError) as info:
        ProfileSettings.parse({"affinity_half_life_days": 0})
    assert info.value.field == "profiles.affinity_half_life_days"
    with pytest.raises(ConfigError) as info:
        ProfileSettings.parse(
            {"engagement_weights": {"recency": 0, "frequency": 0, "depth": 0, "conversion": 0}}
        )
    assert info.value.field == "profiles.engagement_weights"
    with pytest.raises(ConfigError):
        ProfileSettings.parse({"session_timeout": 30})  # a typo is not silently ignored
    assert ProfileSettings.parse(None) == ProfileSettings()


def test_copy_carries_every_field_and_shares_no_containers() -> None:
    profile = build(
        ev("identify", at=0, user_id="u1", traits={"plan": "pro"}, context={"locale": "en"}),
        view(1),
        ev("track", "Product Added", 2, properties={"product_id": "sku-1"}),
        ev("track", "Order Completed", 3, properties={"product_id": "sku-9", "total": 4}),
    )
    clone = profile.copy()
    assert clone == profile
    for name in Profile.__dataclass_fields__:
        value = getattr(profile, name)
        if isinstance(value, list | dict) and value:
            assert getattr(clone, name) is not value, name


def test_every_attribute_has_a_group() -> None:
    from loopwise.profiles.model import ATTRIBUTE_GROUP

    assert set(ATTRIBUTE_GROUP) == PROFILE_KEYS


@pytest.mark.parametrize(
    "keys",
    [
        frozenset({"purchases"}),
        frozenset({"cart", "engagement", "lifecycle"}),
        frozenset({"affinity", "traits", "events_7d", "device", "sessions"}),
        frozenset({"unknown_attribute"}),
        frozenset(PROFILE_KEYS),
    ],
)
def test_attributes_limited_to_keys_are_the_full_values(keys: frozenset[str]) -> None:
    profile = build(
        view(0),
        ev("track", "Product Added", 60, properties={"product_id": "sku-1", "price": 5}),
        ev("identify", None, 120, traits={"plan": "pro"}),
    )
    now = T0 + timedelta(days=3)
    full = profile.attributes(now, SETTINGS)
    limited = profile.attributes(now, SETTINGS, keys=keys)
    assert set(keys) & PROFILE_KEYS <= set(limited)
    assert {k: full[k] for k in limited} == limited


def test_a_record_decodes_to_the_profile_the_constructor_makes() -> None:
    """from_record sets the fields on a bare instance: the same profile, every field set (a
    field added to Profile without a decode would fail here), derived memos fresh."""
    context = {"userAgent": "curl/8", "location": {"country": "de", "city": "Bonn"}}
    profile = build(
        ev("identify", at=0, user_id="u1", traits={"plan": "pro"}, context=context),
        ev("page", at=1, context={"page": {"url": "https://x.test/a?utm_campaign=spring"}}),
        view(2),
        ev("track", "Product Added", 3, properties={"product_id": "sku-1", "price": 9.5}),
        ev("track", "Order Completed", 4, properties={"products": [{"id": "sku-1"}], "total": 9.5}),
        view(5, "sku-2"),
    )
    record = json.loads(json.dumps(profile.to_record()))
    decoded = Profile.from_record(record)
    expected = Profile(**{name: getattr(profile, name) for name in Profile.__dataclass_fields__})
    assert decoded == expected == profile
    for name in Profile.__dataclass_fields__:
        assert getattr(decoded, name) == getattr(expected, name), name
    assert decoded.scores_memo is None
    version_1 = {**record, "first_seen": "2026-11-01T10:00:00.000Z"}
    assert Profile.from_record(version_1).first_seen == datetime(2026, 11, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    "keys",
    [
        frozenset({"purchases"}),
        frozenset({"lifecycle", "engagement", "cart"}),
        frozenset({"events_7d"}),
        frozenset({"recently_viewed"}),
        frozenset({"affinity", "top_category"}),
        *(frozenset({key}) for key in sorted(PROFILE_KEYS)),
    ],
)
def test_a_record_decoded_for_some_attributes_gives_them_as_the_whole_record(
    keys: frozenset[str],
) -> None:
    """A segment audience decodes the record tables its condition reads (record_tables); the
    attributes it reads are those of the whole profile, and the tables read later complete it."""
    from loopwise.profiles.model import RECORD_TABLES, record_tables

    profile = build(
        view(0),
        ev("track", "Product Added", 60, properties={"product_id": "sku-1", "price": 5}),
        ev("track", "Order Completed", 90, properties={"products": [{"id": "sku-1"}], "total": 5}),
        view(100, "sku-2"),
        ev("identify", None, 120, traits={"plan": "pro"}),
    )
    record = json.loads(json.dumps(profile.to_record()))
    now = T0 + timedelta(days=3)
    tables = record_tables(keys)
    assert tables < RECORD_TABLES or keys & {"affinity", "events_7d", "recently_viewed"}
    partial = Profile.from_record(record, tables)
    assert partial.attributes(now, SETTINGS, keys=keys) == profile.attributes(
        now, SETTINGS, keys=keys
    )
    partial.read_tables(record, RECORD_TABLES - tables)
    assert partial == profile
    assert record_tables(None) == RECORD_TABLES
    assert Profile.from_record(record, frozenset()) != profile  # the tables were left out
