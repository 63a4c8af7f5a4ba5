from __future__ import annotations

import math
from dataclasses import replace
from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from loopwise.catalog.items import Item
from loopwise.events.schema import Event
from loopwise.profiles.model import Profile
from loopwise.profiles.reducer import (
    ADD_TO_CART_WEIGHT,
    ANONYMOUS_IDS_LIMIT,
    EVENT_NAMES_LIMIT,
    PAGE_NAMES_LIMIT,
    PAGE_PATHS_LIMIT,
    PURCHASE_WEIGHT,
    merge,
    reduce,
)
from loopwise.profiles.settings import ProfileSettings

from . import T0, ev
from .test_useragent import ANDROID_PHONE, CHROME_WINDOWS

SETTINGS = ProfileSettings()
CATALOG = {
    "sku-1": Item(id="sku-1", categories=("shoes",), tags=("red",), attributes={"price": 30}),
    "sku-2": Item(id="sku-2", categories=("shirts",), tags=("blue", "sale")),
}


def build(*events: Event, start: Profile | None = None, s: ProfileSettings = SETTINGS) -> Profile:
    profile = start or Profile.new("p_1", T0)
    for event in events:
        profile = reduce(profile, event, s, CATALOG)
    return profile


def track(name: str, at: float, **properties: Any) -> Event:
    return ev("track", name, at, properties=properties)


def at_end(profile: Profile) -> dict[str, Any]:
    return profile.attributes(profile.last_seen, SETTINGS)


# -- sessions and counters ------------------------------------------------------------------------
def test_first_event_starts_session_one_and_sets_times_exactly() -> None:
    profile = build(ev("page", at=5))
    assert (profile.sessions, profile.events, profile.page_views) == (1, 1, 1)
    assert profile.first_seen == profile.last_seen == T0 + timedelta(minutes=5)


def test_a_session_ends_after_the_timeout_of_inactivity() -> None:
    timeout = SETTINGS.session_timeout_minutes
    profile = build(ev("page", at=0), ev("page", at=timeout), ev("page", at=2 * timeout + 0.01))
    assert profile.sessions == 2
    assert profile.session_started_at == T0 + timedelta(minutes=2 * timeout + 0.01)


def test_traffic_source_is_classified_at_session_start_only() -> None:
    from_search = {"page": {"referrer": "https://www.google.com/", "url": "https://s.io/"}}
    internal = {"page": {"referrer": "https://s.io/", "url": "https://s.io/b"}}
    profile = build(ev("page", at=0, context=from_search), ev("page", at=1, context=internal))
    assert profile.traffic_source == "organic_search"
    emailed = {"page": {"url": "https://s.io/?utm_medium=email"}}
    assert build(ev("page", at=120, context=emailed), start=profile).traffic_source == "email"


def test_daily_counts_key_by_track_name_page_and_type() -> None:
    profile = build(
        ev("page", at=0),
        ev("screen", at=1),
        track("Signed Up", 2),
        ev("identify", at=3, user_id="u1"),
        ev("group", at=4),
        ev("alias", at=5, user_id="u1", previous_id="anon-0"),
    )
    assert at_end(profile)["events_7d"] == {
        "page": 2,
        "Signed Up": 1,
        "identify": 1,
        "group": 1,
        "alias": 1,
    }
    assert profile.events == 6 and profile.page_views == 2


def test_distinct_event_names_are_bounded_but_still_counted() -> None:
    events = [track(f"name-{i}", i / 100) for i in range(EVENT_NAMES_LIMIT + 5)]
    profile = build(*events)
    assert len(profile.daily_counts) == EVENT_NAMES_LIMIT
    assert profile.events == EVENT_NAMES_LIMIT + 5


def test_old_daily_counts_are_pruned() -> None:
    profile = build(ev("page", at=0), ev("page", at=60 * 24 * 45))
    assert list(profile.daily_counts["page"].values()) == [1]


# -- items and affinities -------------------------------------------------------------------------
def test_item_view_updates_recent_views_and_affinities_from_catalog_and_properties() -> None:
    profile = build(
        track("Product Viewed", 0, product_id="sku-1"),
        track("Product Viewed", 0, product_id="sku-9", category="hats", tags=["wool", "red"]),
        track("Product Viewed", 0, product_id="sku-1"),
    )
    attrs = at_end(profile)
    assert attrs["recently_viewed"] == ["sku-1", "sku-9"]
    assert attrs["item_views"] == 3
    assert attrs["affinity"] == {
        "items": {"sku-1": 2.0, "sku-9": 1.0},
        "categories": {"shoes": 2.0, "hats": 1.0},
        "tags": {"red": 3.0, "wool": 1.0},
    }


def test_cart_and_purchase_weights() -> None:
    profile = build(
        track("Product Added", 0, product_id="sku-2"),
        track("Order Completed", 0, products=[{"product_id": "sku-1"}], revenue=30),
    )
    affinity = at_end(profile)["affinity"]
    assert affinity["items"] == {"sku-1": PURCHASE_WEIGHT, "sku-2": ADD_TO_CART_WEIGHT}
    assert affinity["tags"] == {"red": 3.0, "blue": 2.0, "sale": 2.0}


def test_affinity_decays_between_events() -> None:
    days = SETTINGS.affinity_half_life_days
    profile = build(
        track("Product Viewed", 0, product_id="sku-1"),
        track("Product Viewed", 60 * 24 * days, product_id="sku-1"),
    )
    assert at_end(profile)["affinity"]["items"] == {"sku-1": 1.5}


def test_affinities_are_bounded_to_the_top_scores() -> None:
    s = ProfileSettings(affinity_limit=2)
    events = [track("Product Viewed", 0, product_id="a")] * 3
    events += [track("Product Viewed", 1, product_id=x) for x in ("b", "b", "c")]
    profile = build(*events, s=s)
    assert set(profile.affinity_items) == {"a", "b"}


def test_recently_viewed_is_bounded_and_newest_first() -> None:
    s = ProfileSettings(recently_viewed_limit=3)
    profile = build(*[track("Product Viewed", i, product_id=f"i{i}") for i in range(5)], s=s)
    assert profile.recently_viewed == ["i4", "i3", "i2"]


def test_cart_add_remove_and_purchase() -> None:
    profile = build(
        track("Product Added", 0, product_id="sku-1"),  # catalog price 30
        track("Product Added", 1, product_id="sku-2", price=12.5, quantity=2),
        track("Product Removed", 2, product_id="sku-1"),
    )
    assert at_end(profile)["cart"] == {"items": ["sku-2"], "value": 25.0, "abandoned": False}
    profile = build(
        track("Order Completed", 3, products=[{"id": "sku-2", "price": 12.5, "quantity": 2}]),
        start=profile,
    )
    attrs = at_end(profile)
    assert attrs["cart"] == {"items": [], "value": 0.0, "abandoned": False}
    assert (attrs["purchases"], attrs["revenue"], attrs["average_order_value"]) == (1, 25.0, 25.0)
    assert attrs["purchased_items"] == ["sku-2"]


def test_removing_an_item_not_in_the_cart_changes_nothing() -> None:
    profile = build(track("Product Added", 0, product_id="sku-1"))
    after = build(track("Product Removed", 1, product_id="zzz", price=30), start=profile)
    assert after.cart_items == ["sku-1"] and after.cart_value == 30.0


# -- identity, traits, context --------------------------------------------------------------------
def test_identify_sets_user_and_merges_traits() -> None:
    profile = build(
        ev("identify", at=0, user_id="u1", traits={"plan": "free", "name": "Ada"}),
        ev("identify", at=1, user_id="u1", traits={"plan": "pro"}),
        ev("group", at=2, traits={"plan": "enterprise", "employees": 50}),
    )
    attrs = at_end(profile)
    assert attrs["user_id"] == "u1" and attrs["known"] is True
    assert attrs["traits"] == {"plan": "pro", "name": "Ada"}
    assert attrs["anonymous_ids"] == ["anon-1"]


def test_alias_keeps_the_previous_id() -> None:
    profile = build(ev("alias", at=0, user_id="u1", anonymous_id=None, previous_id="old-anon"))
    assert profile.anonymous_ids == ["old-anon"] and profile.user_id == "u1"


def test_anonymous_ids_are_bounded() -> None:
    events = [ev("page", at=i / 100, anonymous_id=f"a{i}") for i in range(ANONYMOUS_IDS_LIMIT + 3)]
    profile = build(*events)
    assert len(profile.anonymous_ids) == ANONYMOUS_IDS_LIMIT
    assert profile.anonymous_ids[-1] == f"a{ANONYMOUS_IDS_LIMIT + 2}"


def test_last_context_keeps_known_pieces() -> None:
    profile = build(
        ev(
            "page",
            at=0,
            context={
                "userAgent": ANDROID_PHONE,
                "location": {"country": "de", "region": "Berlin"},
                "locale": "de-DE",
                "timezone": "Europe/Berlin",
            },
        ),
        track("Server Side Thing", 1),  # no context: nothing forgotten
        ev("page", at=2, context={"userAgent": CHROME_WINDOWS}),
    )
    attrs = at_end(profile)
    assert attrs["device"] == {"type": "desktop", "os": "Windows", "browser": "Chrome"}
    assert (attrs["country"], attrs["region"]) == ("DE", "Berlin")
    assert (attrs["locale"], attrs["timezone"]) == ("de-DE", "Europe/Berlin")


# -- out of order, purity, determinism ------------------------------------------------------------
def test_late_events_count_but_do_not_move_sessions_or_context() -> None:
    profile = build(
        ev("page", at=600, context={"location": {"country": "fr"}}),
        ev("page", at=0, context={"location": {"country": "us"}}),
        ev("identify", at=1, traits={"plan": "old"}, user_id="u0"),
    )
    assert profile.sessions == 1
    assert profile.first_seen == T0 and profile.last_seen == T0 + timedelta(minutes=600)
    assert profile.country == "FR" and profile.page_views == 2
    later = build(ev("identify", at=700, traits={"plan": "new"}, user_id="u1"), start=profile)
    stale = build(ev("identify", at=2, traits={"plan": "older"}), start=later)
    assert stale.traits == {"plan": "new"} and stale.user_id == "u1"


def test_late_view_is_placed_by_its_time() -> None:
    profile = build(
        track("Product Viewed", 10, product_id="b"),
        track("Product Viewed", 0, product_id="a"),
        track("Product Viewed", 5, product_id="b"),  # older than the view already kept
    )
    assert profile.recently_viewed == ["b", "a"]
    assert profile.recently_viewed_at[0] == T0 + timedelta(minutes=10)


def test_late_add_before_the_last_order_does_not_refill_the_cart() -> None:
    profile = build(
        track("Order Completed", 10, product_id="sku-1"),
        track("Product Added", 5, product_id="sku-1"),
    )
    assert profile.cart_items == [] and profile.purchases == 1


def test_reduce_does_not_mutate_its_input() -> None:
    profile = build(
        ev("identify", at=0, user_id="u1", traits={"tags": ["a"]}),
        track("Product Added", 1, product_id="sku-1"),
        track("Product Viewed", 2, product_id="sku-2"),
    )
    before = profile.to_record()
    build(
        track("Product Viewed", 3, product_id="sku-1"),
        track("Order Completed", 4, product_id="sku-1"),
        ev("identify", at=5, user_id="u1", traits={"tags": ["b"]}),
        start=profile,
    )
    assert profile.to_record() == before


# -- merge ----------------------------------------------------------------------------------------
def test_merge_unites_both_histories() -> None:
    anon = build(
        ev("page", at=0, anonymous_id="a1", context={"location": {"country": "gb"}}),
        track("Product Viewed", 1, product_id="sku-1"),
        track("Product Added", 2, product_id="sku-1"),
    )
    known = build(
        ev("identify", at=60 * 24, user_id="u1", anonymous_id=None, traits={"plan": "pro"}),
        track("Product Viewed", 60 * 24 + 1, product_id="sku-2"),
        track("Order Completed", 60 * 24 + 2, product_id="sku-2", revenue=10),
        start=Profile.new("p_u1", T0),
    )
    merged = merge(known, anon, SETTINGS)
    assert merged.id == "p_u1" and merged.user_id == "u1"
    assert merged.anonymous_ids == ["anon-1", "a1"]
    assert (merged.events, merged.sessions, merged.item_views) == (6, 2, 2)
    assert (merged.first_seen, merged.last_seen) == (anon.first_seen, known.last_seen)
    assert merged.recently_viewed == ["sku-2", "sku-1"]
    assert merged.cart_items == ["sku-1"] and merged.purchases == 1
    assert merged.country == "GB" and merged.traits == {"plan": "pro"}
    one_day = 0.5 ** (1 / SETTINGS.affinity_half_life_days)
    items = merged.attributes(merged.last_seen, SETTINGS)["affinity"]["items"]
    assert items["sku-1"] == round((1 * 0.5 ** (1 / 24 / 60 / 14) + 2) * one_day, 6)
    counts = merged.attributes(merged.last_seen, SETTINGS)["events_7d"]
    assert counts["Product Viewed"] == 2 and counts["page"] == 1


def test_merge_with_a_new_profile_keeps_everything() -> None:
    profile = build(ev("page", at=0), track("Product Viewed", 1, product_id="sku-1"))
    merged = merge(profile, Profile.new("p_x", T0 - timedelta(days=9)), SETTINGS)
    assert merged == profile
    reverse = merge(Profile.new("p_x", T0 + timedelta(days=9)), profile, SETTINGS)
    assert reverse.first_seen == profile.first_seen and reverse.events == profile.events


def test_merge_traits_primary_wins_and_inputs_unchanged() -> None:
    a = build(ev("identify", at=0, user_id="u1", traits={"plan": "pro", "x": 1}))
    b = build(ev("identify", at=1, traits={"plan": "free", "y": 2}))
    before = (a.to_record(), b.to_record())
    merged = merge(a, b, SETTINGS)
    assert merged.traits == {"plan": "pro", "x": 1, "y": 2}
    assert (a.to_record(), b.to_record()) == before


# -- properties -----------------------------------------------------------------------------------
ITEMS = st.sampled_from(["sku-1", "sku-2", "sku-3", "sku-4"])
PROPS = st.fixed_dictionaries(
    {"product_id": ITEMS},
    optional={
        "price": st.one_of(st.floats(0, 500, allow_nan=False), st.integers(0, 9), st.text()),
        "quantity": st.integers(-2, 5),
        "category": st.sampled_from(["a", "b", 3, None]),
        "tags": st.lists(st.sampled_from(["t1", "t2", "t3"]), max_size=3),
        "revenue": st.floats(0, 1e6, allow_nan=False),
        "products": st.lists(st.fixed_dictionaries({"id": ITEMS}), max_size=3),
    },
)
CONTEXTS: st.SearchStrategy[dict[str, Any]] = st.sampled_from(
    [
        {},
        {"userAgent": ANDROID_PHONE, "location": {"country": "de"}},
        {"page": {"referrer": "https://www.google.com/", "url": "https://s.io/"}},
        {"page": 5, "location": "x", "userAgent": 7},
    ]
)
TRACK_NAMES = st.sampled_from(
    [
        "Product Viewed",
        "Product Added",
        "Product Removed",
        "Order Completed",
        "Signed Up",
        "Product Clicked",
        "Content Viewed",
    ]
)


@st.composite
def events(draw: st.DrawFn) -> Event:
    kind = draw(
        st.sampled_from(["track", "track", "track", "page", "screen", "identify", "alias", "group"])
    )
    minutes = draw(st.floats(-60 * 24 * 40, 60 * 24 * 40, allow_nan=False))
    return ev(
        kind,
        draw(TRACK_NAMES) if kind == "track" else None,
        minutes,
        user_id=draw(st.sampled_from([None, "u1", "u2"])),
        anonymous_id=draw(st.sampled_from([None, "a1", "a2"])),
        properties=draw(PROPS),
        traits=draw(st.dictionaries(st.sampled_from(["plan", "age"]), st.integers(), max_size=2)),
        context=draw(CONTEXTS),
        previous_id=draw(st.sampled_from([None, "a3"])),
    )


SMALL = ProfileSettings(recently_viewed_limit=3, affinity_limit=2, purchased_items_limit=2)


def check_invariants(profile: Profile) -> None:
    assert profile.sessions >= 1
    for count in (profile.events, profile.page_views, profile.item_views, profile.purchases):
        assert count >= 0
    assert profile.revenue >= 0 and profile.cart_value >= 0
    assert len(profile.recently_viewed) <= SMALL.recently_viewed_limit
    assert len(set(profile.recently_viewed)) == len(profile.recently_viewed)
    assert profile.recently_viewed_at == sorted(profile.recently_viewed_at, reverse=True)
    assert len(profile.purchased_items) <= SMALL.purchased_items_limit
    for table in ("items", "categories", "tags"):
        assert len(profile.affinity(table)) <= SMALL.affinity_limit
        assert all(score > 0 for score in profile.affinity(table).values())
    assert profile.first_seen <= profile.last_seen
    assert all(c > 0 for days in profile.daily_counts.values() for c in days.values())
    assert sum(sum(d.values()) for d in profile.daily_counts.values()) <= profile.events
    assert Profile.from_record(profile.to_record()) == profile


@settings(max_examples=60, deadline=None)
@given(st.lists(events(), min_size=1, max_size=25))
def test_reducer_invariants_hold_for_any_event_sequence(sequence: list[Event]) -> None:
    profile = Profile.new("p_h", T0)
    for event in sequence:
        before = profile.to_record()
        following = reduce(profile, event, SMALL, CATALOG)
        assert profile.to_record() == before  # the input is never mutated
        profile = following
        check_invariants(profile)
    assert profile.events == len(sequence)
    replay = Profile.new("p_h", T0)
    for event in sequence:
        replay = reduce(replay, event, SMALL, CATALOG)
    assert replay == profile  # deterministic
    attrs = profile.attributes(profile.last_seen, SMALL)
    assert 0 <= attrs["engagement"] <= 100
    assert merge(profile, Profile.new("p_n", T0), SMALL) == profile


@settings(max_examples=40, deadline=None)
@given(st.lists(events(), min_size=1, max_size=12), st.lists(events(), min_size=1, max_size=12))
def test_merge_adds_counters_and_keeps_invariants(first: list[Event], second: list[Event]) -> None:
    a = build(*first, s=SMALL)
    b = build(*second, start=Profile.new("p_b", T0), s=SMALL)
    merged = merge(a, b, SMALL)
    assert merged.id == a.id
    assert merged.events == a.events + b.events
    assert merged.sessions == a.sessions + b.sessions
    assert merged.purchases == a.purchases + b.purchases
    assert merged.first_seen == min(a.first_seen, b.first_seen)
    assert merged.last_seen == max(a.last_seen, b.last_seen)
    check_invariants(merged)


# -- pages by name and path, campaigns per session ------------------------------------------------
def page(name: str | None, path: str | None, at: float, **context: Any) -> Event:
    properties = {"path": path} if path else {}
    return replace(ev("page", at=at, properties=properties, context=context), name=name)


DAY = 24 * 60.0


def test_page_views_count_by_name_and_path_in_rolling_windows() -> None:
    profile = build(
        page("Pricing", "/pricing", 0),
        page("Home", "/", 1),
        page("Pricing", "/pricing", 10 * DAY),
        page(None, None, 10 * DAY + 1, page={"url": "https://shop.test/pricing?x=1"}),
        page("Blog", "/blog/a", 25 * DAY),
    )
    attrs = at_end(profile)
    assert attrs["pages_30d"] == {"Pricing": 2, "Home": 1, "Blog": 1}
    assert attrs["page_paths_30d"] == {"/pricing": 3, "/": 1, "/blog/a": 1}
    assert attrs["page_paths_7d"] == {"/blog/a": 1}
    later = profile.attributes(T0 + timedelta(days=35), SETTINGS)
    assert later["page_paths_30d"] == {"/pricing": 2, "/blog/a": 1}  # day 0 left the window
    pruned = build(page("Home", "/", 45 * DAY), start=profile)
    assert set(pruned.path_daily) == {"/blog/a", "/"}  # days beyond the window are dropped
    assert Profile.from_record(pruned.to_record()) == pruned


def test_the_pricing_page_twice_in_30_days_is_a_plain_condition() -> None:
    from loopwise.segments.conditions import compile_condition

    twice = compile_condition({"profile.page_paths_30d./pricing": {"$gte": 2}})
    once = build(page("Pricing", "/pricing", 0))
    assert not twice({"profile": at_end(once)})
    assert twice({"profile": at_end(build(page("Pricing", "/pricing", DAY), start=once))})


def test_distinct_pages_and_paths_are_bounded() -> None:
    profile = build(*(page(f"P{i}", f"/p/{i}", i * 0.01) for i in range(PAGE_PATHS_LIMIT + 20)))
    assert len(profile.page_daily) == PAGE_NAMES_LIMIT
    assert len(profile.path_daily) == PAGE_PATHS_LIMIT
    assert profile.page_views == PAGE_PATHS_LIMIT + 20


def test_utm_campaign_and_content_are_kept_per_session() -> None:
    timeout = SETTINGS.session_timeout_minutes
    summer = {"url": "https://shop.test/?utm_campaign=summer&utm_content=hero-a&utm_source=news"}
    profile = build(page("Home", "/", 0, page=summer), page("Shoes", "/shoes", 1))
    assert at_end(profile)["campaign"] == {"name": "summer", "content": "hero-a", "source": "news"}
    profile = build(page("Home", "/", 2 * timeout), start=profile)  # a new session, no UTM
    assert at_end(profile)["campaign"] == {}
    profile = build(
        page("Home", "/", 4 * timeout, campaign={"name": "winter", "content": "b"}), start=profile
    )
    attrs = at_end(profile)
    assert attrs["campaign"] == {"name": "winter", "content": "b"}
    assert attrs["campaigns"] == ["winter", "summer"]
    assert Profile.from_record(profile.to_record()) == profile


def test_merging_adds_page_counts_and_keeps_the_newer_session_campaign() -> None:
    a = build(page("Pricing", "/pricing", 0, campaign={"name": "old"}))
    b = build(page("Pricing", "/pricing", 60, campaign={"name": "new"}))
    merged = merge(a, b, SETTINGS)
    attrs = at_end(merged)
    assert attrs["pages_30d"] == {"Pricing": 2} and attrs["page_paths_30d"] == {"/pricing": 2}
    assert attrs["campaign"] == {"name": "new"} and attrs["campaigns"] == ["new", "old"]


def test_sums_stay_finite_even_for_an_absurd_stored_event() -> None:
    """Events stored before amounts were bounded may still carry 1e308: a replay of them must
    give a profile that stores and reloads, never infinity (stored as JSON null)."""
    profile = build(
        track("Product Added", 1, product_id="sku-1", price=1e308, quantity=10),
        track("Product Added", 2, product_id="sku-2", price=1e308, quantity=10),
        track("Order Completed", 3, revenue=1e308),
        track("Order Completed", 4, revenue=1e308),
    )
    assert math.isfinite(profile.cart_value) and math.isfinite(profile.revenue)
    assert Profile.from_record(profile.to_record()).revenue == profile.revenue
