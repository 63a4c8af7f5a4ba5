from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from rudderstack.analytics import Client as RudderClient
from segment.analytics import Client as SegmentClient

from loopwise.errors import LimitExceeded, LoopwiseError, ValidationFailed
from loopwise.events.limits import MAX_BATCH_EVENTS, MAX_EVENT_BYTES
from loopwise.events.normalize import (
    parse_message,
    parse_request,
    truncate_ip,
    write_key_from_body,
)
from loopwise.events.schema import Event

RECEIVED = datetime(2024, 5, 1, 12, 0, 10, tzinfo=UTC)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def one(body: dict[str, Any], kind: str = "batch") -> Event:
    events = parse_request(body, kind=kind, received_at=RECEIVED)
    assert len(events) == 1
    return events[0]


def segment_client() -> SegmentClient:
    return SegmentClient("wk_segment", send=False, sync_mode=True)


def rudder_client() -> RudderClient:
    return RudderClient("wk_rudder", send=False, sync_mode=True)


def sdk_body(*messages: dict[str, Any], sent_at: str, write_key: str) -> dict[str, Any]:
    """What segment/rudder ``request.post`` sends: batch + sentAt + writeKey."""
    return {"batch": list(messages), "sentAt": sent_at, "writeKey": write_key}


# --- happy paths with payloads built by the real client libraries -----------------------------


def test_segment_python_track_with_skew_correction() -> None:
    # The client's clock runs 1 hour fast: it stamped 13:00:00 and sent at 13:00:05.
    _, msg = segment_client().track(
        user_id=42,
        event="Product Viewed",
        properties={"product_id": "sku-1", "price": 9.5},
        context={"ip": "203.0.113.77", "locale": "en-US"},
        timestamp=datetime(2024, 5, 1, 13, 0, 0, tzinfo=UTC),
        message_id="m-1",
        integrations={"Amplitude": False},
    )
    body = sdk_body(msg, sent_at="2024-05-01T13:00:05.250000+00:00", write_key="wk_segment")
    event = one(body)
    assert event.type == "track"
    assert event.message_id == "m-1"
    assert event.user_id == "42"  # the library stringifies numeric ids
    assert event.anonymous_id is None
    assert event.event == "Product Viewed"
    assert event.properties == {"product_id": "sku-1", "price": 9.5}
    assert event.timestamp == datetime(2024, 5, 1, 12, 0, 4, 750000, tzinfo=UTC)
    assert event.original_timestamp == at("2024-05-01T13:00:00+00:00")
    assert event.sent_at == at("2024-05-01T13:00:05.25+00:00")
    assert event.received_at == RECEIVED
    assert event.context == {
        "ip": "203.0.113.0",
        "locale": "en-US",
        "library": {"name": "analytics-python", "version": "2.4.0"},
    }
    assert write_key_from_body(body) == "wk_segment"


def test_segment_python_every_call_type_in_one_batch() -> None:
    client = segment_client()
    ts = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    messages = [
        client.identify(user_id="u1", traits={"plan": "pro"}, timestamp=ts, message_id="i")[1],
        client.page(user_id="u1", category="Docs", name="Install", timestamp=ts, message_id="p")[1],
        client.screen(user_id="u1", name="Home", timestamp=ts, message_id="s")[1],
        client.group(user_id="u1", group_id=7, traits={"seats": 5}, timestamp=ts, message_id="g")[
            1
        ],
        client.alias(previous_id="anon-1", user_id="u1", timestamp=ts, message_id="a")[1],
        client.track(anonymous_id="anon-1", event="Signed Up", timestamp=ts, message_id="t")[1],
    ]
    body = sdk_body(*messages, sent_at="2024-05-01T12:00:00+00:00", write_key="wk")
    events = parse_request(body, kind="batch", received_at=RECEIVED)
    assert [e.type for e in events] == ["identify", "page", "screen", "group", "alias", "track"]
    assert [e.message_id for e in events] == ["i", "p", "s", "g", "a", "t"]
    identify, page, screen, group, alias, track = events
    assert identify.traits == {"plan": "pro"}
    assert (page.name, page.properties) == ("Install", {"category": "Docs"})
    assert screen.name == "Home"
    assert (group.group_id, group.traits) == ("7", {"seats": 5})
    assert (alias.previous_id, alias.user_id) == ("anon-1", "u1")
    assert (track.anonymous_id, track.user_id, track.event) == ("anon-1", None, "Signed Up")
    # sentAt == client timestamp: no skew, so every event happened at receipt time minus 0 s.
    assert {e.timestamp for e in events} == {RECEIVED}


def test_rudder_python_identify_traits_come_from_context_traits() -> None:
    _, msg = rudder_client().identify(
        user_id="u-9",
        traits={"email": "ada@example.com", "plan": "free"},
        timestamp=datetime(2024, 5, 1, 11, 59, 0, tzinfo=UTC),
        message_id="r-1",
    )
    assert msg["channel"] == "server" and "traits" not in msg  # what the library really sends
    event = one(sdk_body(msg, sent_at="2024-05-01T11:59:30+00:00", write_key="wk_rudder"))
    assert event.traits == {"email": "ada@example.com", "plan": "free"}
    assert event.user_id == "u-9"
    assert event.timestamp == datetime(2024, 5, 1, 11, 59, 40, tzinfo=UTC)  # 10:00 - 30 s


def test_rudder_js_style_original_timestamp_wins_over_timestamp() -> None:
    message = {
        "type": "track",
        "event": "Order Completed",
        "anonymousId": "anon-7",
        "rudderId": "b1c2-ignored",
        "channel": "web",
        "originalTimestamp": "2024-05-01T11:58:00.000Z",
        "timestamp": "2024-05-01T11:00:00.000Z",
        "sentAt": "2024-05-01T11:58:02.500Z",
        "receivedAt": "1999-01-01T00:00:00Z",
        "properties": {"revenue": 30, "writeKey": "leaked"},
        "context": {"traits": {"name": "Ada"}, "writeKey": "leaked", "library": {"name": "x"}},
        "messageId": "r-2",
    }
    event = one(message, kind="track")
    assert event.timestamp == datetime(2024, 5, 1, 12, 0, 7, 500000, tzinfo=UTC)
    assert event.original_timestamp == datetime(2024, 5, 1, 11, 58, tzinfo=UTC)
    assert event.received_at == RECEIVED  # a client's receivedAt is ignored
    assert event.properties == {"revenue": 30}
    assert event.context == {"traits": {"name": "Ada"}, "library": {"name": "x"}}
    assert event.traits == {"name": "Ada"}  # non-identify calls carry context.traits


@pytest.mark.parametrize(
    ("times", "expected", "original"),
    [
        ({"timestamp": "2024-05-01T08:00:00Z"}, "08:00:00", "08:00:00"),
        ({"originalTimestamp": "2024-05-01T08:00:00Z"}, "08:00:00", "08:00:00"),
        ({"sentAt": "2024-05-01T08:00:00Z"}, "12:00:10", None),
        ({}, "12:00:10", None),
        (
            {"timestamp": "2024-05-01T09:00:00+02:00", "sentAt": "2024-05-01T07:00:30Z"},
            "11:59:40",
            "07:00:00",
        ),
    ],
)
def test_time_rules(times: dict[str, str], expected: str, original: str | None) -> None:
    """Skew-correct only with both times; a lone client time is used as is; else receipt time."""
    event = one({"type": "track", "event": "E", "userId": "u", **times}, kind="track")
    assert event.timestamp == at(f"2024-05-01T{expected}+00:00")
    assert event.original_timestamp == (at(f"2024-05-01T{original}+00:00") if original else None)
    assert event.sent_at == (at(times["sentAt"]) if "sentAt" in times else None)


def test_naive_received_at_is_taken_as_utc() -> None:
    naive = datetime(2024, 5, 1, 12, 0, 10)
    [event] = parse_request({"userId": "u", "event": "E"}, kind="track", received_at=naive)
    assert event.received_at == RECEIVED and event.timestamp == RECEIVED


def test_identify_merges_context_traits_under_traits() -> None:
    body = {
        "userId": "u1",
        "traits": {"plan": "pro", "email": "new@example.com"},
        "context": {"traits": {"email": "old@example.com", "country": "DE"}},
    }
    assert one(body, kind="identify").traits == {
        "plan": "pro",
        "email": "new@example.com",
        "country": "DE",
    }


def test_group_traits_are_the_group_traits_only() -> None:
    body = {
        "userId": "u1",
        "groupId": "acme",
        "traits": {"employees": 50},
        "context": {"traits": {"email": "u1@example.com"}},
    }
    event = one(body, kind="group")
    assert (event.group_id, event.traits) == ("acme", {"employees": 50})


def test_page_category_does_not_override_properties_category() -> None:
    body = {"anonymousId": "a", "category": "Docs", "properties": {"category": "Blog"}}
    assert one(body, kind="page").properties == {"category": "Blog"}


# --- batch ------------------------------------------------------------------------------------


def test_batch_context_is_deep_merged_item_wins() -> None:
    body = {
        "batch": [
            {
                "type": "track",
                "event": "A",
                "userId": "u",
                "context": {"library": {"version": "2.5.0"}, "page": {"path": "/a"}},
                "sentAt": "2024-05-01T12:00:00Z",
                "timestamp": "2024-05-01T11:59:59Z",
            },
            {"type": "page", "userId": "u", "timestamp": "2024-05-01T11:59:00Z"},
        ],
        "context": {
            "library": {"name": "analytics-python", "version": "2.4.0"},
            "locale": "en-US",
            "page": {"path": "/batch", "title": "T"},
            "ip": "198.51.100.23",
        },
        "sentAt": "2024-05-01T12:00:05Z",
        "integrations": {"All": False},
        "writeKey": "wk",
    }
    first, second = parse_request(body, kind="batch", received_at=RECEIVED)
    assert first.context == {
        "library": {"name": "analytics-python", "version": "2.5.0"},
        "locale": "en-US",
        "page": {"path": "/a", "title": "T"},
        "ip": "198.51.100.0",
    }
    assert second.context["library"] == {"name": "analytics-python", "version": "2.4.0"}
    assert second.context["page"] == {"path": "/batch", "title": "T"}
    # first uses its own sentAt, second the batch's
    assert first.sent_at == at("2024-05-01T12:00:00+00:00")
    assert first.timestamp == at("2024-05-01T12:00:09+00:00")
    assert second.sent_at == at("2024-05-01T12:00:05+00:00")
    assert second.timestamp == at("2024-05-01T11:59:05+00:00")
    # events do not share mutable context state
    first.context["library"]["name"] = "changed"
    assert second.context["library"]["name"] == "analytics-python"
    assert body["context"]["library"]["name"] == "analytics-python"  # type: ignore[index]


def test_input_is_not_mutated() -> None:
    body = {
        "batch": [
            {
                "type": "page",
                "userId": "u",
                "category": "C",
                "properties": {"writeKey": "k"},
                "context": {"ip": "10.1.2.3", "writeKey": "k"},
            }
        ],
        "context": {"locale": "de-DE"},
    }
    before = copy.deepcopy(body)
    parse_request(body, kind="batch", received_at=RECEIVED)
    assert body == before


def test_batch_of_max_size_is_accepted() -> None:
    batch = [{"type": "track", "event": "E", "userId": f"u{i}"} for i in range(MAX_BATCH_EVENTS)]
    events = parse_request({"batch": batch}, kind="batch", received_at=RECEIVED)
    assert len(events) == MAX_BATCH_EVENTS
    assert len({e.message_id for e in events}) == MAX_BATCH_EVENTS


def test_batch_over_max_size_is_a_limit_error() -> None:
    batch = [{"type": "track", "event": "E", "userId": "u"}] * (MAX_BATCH_EVENTS + 1)
    with pytest.raises(LimitExceeded) as info:
        parse_request({"batch": batch}, kind="batch", received_at=RECEIVED)
    assert info.value.field == "batch"
    assert "2500" in info.value.detail


# --- message ids ------------------------------------------------------------------------------


def test_numeric_message_id_becomes_string() -> None:
    assert one({"userId": "u", "event": "E", "messageId": 12}, kind="track").message_id == "12"


def test_messages_without_a_message_id_are_distinct_events() -> None:
    """Segment makes messageId optional: identical events sent without one are separate events
    (three "Pricing Viewed" a second apart are three views), never merged as duplicates."""
    item = {"type": "track", "event": "Pricing Viewed", "userId": "u"}
    ids = {one({"batch": [item]}).message_id for _ in range(3)}
    assert len(ids) == 3
    assert all(i.startswith("auto-") for i in ids)
    sent = {**item, "messageId": "m-1"}
    assert one({"batch": [sent]}).message_id == one({"batch": [sent]}).message_id == "m-1"


def test_write_key_from_body() -> None:
    assert write_key_from_body({"writeKey": "wk"}) == "wk"
    assert write_key_from_body({"batch": [], "writeKey": "wk2"}) == "wk2"
    assert write_key_from_body({"writeKey": ""}) is None
    assert write_key_from_body({"writeKey": 5}) is None
    assert write_key_from_body({}) is None
    assert write_key_from_body([{"writeKey": "wk"}]) is None


# --- IPs --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("203.0.113.77", "203.0.113.0"),
        (" 10.0.0.255 ", "10.0.0.0"),
        ("2001:db8:85a3:8d3:1319:8a2e:370:7348", "2001:db8:85a3::"),
        ("::ffff:192.0.2.128", "192.0.2.0"),
        ("::1", "::"),
        ("999.1.1.1", None),
        ("not an ip", None),
        ("", None),
    ],
)
def test_truncate_ip(raw: str, expected: str | None) -> None:
    assert truncate_ip(raw) == expected


@pytest.mark.parametrize("ip", ["bogus", 12345, None])
def test_invalid_context_ip_is_dropped(ip: object) -> None:
    event = one({"userId": "u", "event": "E", "context": {"ip": ip, "locale": "x"}}, "track")
    assert event.context == {"locale": "x"}


def test_full_ip_is_kept_only_when_configured() -> None:
    message = {"userId": "u", "event": "E", "context": {"ip": " 203.0.113.77 "}}
    (kept,) = parse_request(message, kind="track", received_at=RECEIVED, truncate_ip=False)
    assert kept.context == {"ip": "203.0.113.77"}
    bogus = {"userId": "u", "event": "E", "context": {"ip": "bogus"}}
    (dropped,) = parse_request(bogus, kind="track", received_at=RECEIVED, truncate_ip=False)
    assert dropped.context == {}


# --- validation errors ------------------------------------------------------------------------

TRACK = {"type": "track", "event": "Clicked", "userId": "u1"}


@pytest.mark.parametrize(
    ("kind", "body", "field", "says"),
    [
        ("track", [TRACK], "body", "JSON object"),
        ("track", {"userId": "u"}, "event", "event"),
        ("track", {"userId": "u", "event": "  "}, "event", "event"),
        ("track", {"userId": "u", "event": 5}, "event", "event"),
        ("track", {"userId": "u", "event": "x" * 201}, "event", "200"),
        ("track", {"event": "E"}, "userId", "Send a userId or an anonymousId"),
        ("track", {"event": "E", "userId": None, "anonymousId": ""}, "userId", "anonymousId"),
        ("track", {"event": "E", "userId": ["u"]}, "userId", "string"),
        ("track", {"event": "E", "anonymousId": True}, "anonymousId", "string"),
        ("track", {**TRACK, "type": "page"}, "type", "track"),
        ("track", {**TRACK, "messageId": {"id": 1}}, "messageId", "string"),
        ("track", {**TRACK, "properties": [1]}, "properties", "JSON object"),
        ("track", {**TRACK, "context": "ctx"}, "context", "JSON object"),
        ("track", {**TRACK, "context": {"traits": 3}}, "context.traits", "JSON object"),
        ("track", {**TRACK, "timestamp": "yesterday"}, "timestamp", "ISO 8601"),
        ("track", {**TRACK, "timestamp": 1714560000}, "timestamp", "ISO 8601"),
        ("track", {**TRACK, "originalTimestamp": "05/01/2024"}, "originalTimestamp", "ISO"),
        ("track", {**TRACK, "sentAt": "soon"}, "sentAt", "ISO 8601"),
        ("identify", {"userId": "u", "traits": ["a"]}, "traits", "JSON object"),
        ("page", {"userId": "u", "name": 3}, "name", "string"),
        ("page", {"userId": "u", "category": ["a"]}, "category", "string"),
        ("alias", {"userId": "u"}, "previousId", "previousId"),
        ("alias", {"anonymousId": "a", "previousId": "p"}, "userId", "userId"),
        ("group", {"userId": "u"}, "groupId", "groupId"),
        ("group", {"userId": "u", "groupId": "g", "traits": "x"}, "traits", "JSON object"),
        ("batch", {}, "batch", "non-empty list"),
        ("batch", {"batch": []}, "batch", "non-empty list"),
        ("batch", {"batch": TRACK}, "batch", "non-empty list"),
        ("batch", {"batch": [TRACK, "x"]}, "batch[1]", "JSON object"),
        ("batch", {"batch": [TRACK, {"userId": "u"}]}, "batch[1].type", "type"),
        ("batch", {"batch": [TRACK, {**TRACK, "type": "bogus"}]}, "batch[1].type", "type"),
        ("batch", {"batch": [TRACK, TRACK, TRACK, {"type": "track"}]}, "batch[3].userId", "Send"),
        ("batch", {"batch": [{**TRACK, "context": {"traits": []}}]}, "batch[0].context.traits", ""),
        ("batch", {"batch": [TRACK], "context": []}, "context", "JSON object"),
        ("batch", {"batch": [TRACK], "sentAt": "later"}, "sentAt", "ISO 8601"),
        ("batch", {"batch": [{**TRACK, "sentAt": 5}]}, "batch[0].sentAt", "ISO 8601"),
        ("merge", {"userId": "u"}, "type", "batch"),
    ],
)
def test_validation_errors_name_the_field(kind: str, body: Any, field: str, says: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        parse_request(body, kind=kind, received_at=RECEIVED)
    assert info.value.field == field
    assert says in info.value.detail
    assert info.value.status == 400


def test_one_bad_message_rejects_the_whole_batch() -> None:
    batch = [TRACK, {**TRACK, "userId": None}, {"type": "page"}]
    with pytest.raises(ValidationFailed) as info:
        parse_request({"batch": batch}, kind="batch", received_at=RECEIVED)
    assert info.value.field == "batch[1].userId"  # the first problem, not a later one


def test_parse_message_rejects_unknown_kind() -> None:
    with pytest.raises(ValidationFailed):
        parse_message(TRACK, kind="batch", received_at=RECEIVED)


def test_parse_message_uses_field_prefix_and_batch_defaults() -> None:
    with pytest.raises(ValidationFailed) as info:
        parse_message({"event": "E"}, kind="track", received_at=RECEIVED, field_prefix="x[2].")
    assert info.value.field == "x[2].userId"
    event = parse_message(
        {"event": "E", "userId": "u", "timestamp": "2024-05-01T11:00:00Z"},
        kind="track",
        received_at=RECEIVED,
        batch_context={"locale": "fr"},
        batch_sent_at=datetime(2024, 5, 1, 11, 0, 10, tzinfo=UTC),
    )
    assert event.context == {"locale": "fr"}
    assert event.timestamp == RECEIVED - timedelta(seconds=10)


# --- size limit -------------------------------------------------------------------------------


def padded(size: int) -> dict[str, Any]:
    """A track message whose JSON is exactly ``size`` bytes."""
    message: dict[str, Any] = {**TRACK, "properties": {"pad": ""}}
    message["properties"]["pad"] = "x" * (size - len(orjson.dumps(message)))
    assert len(orjson.dumps(message)) == size
    return message


def test_event_of_exactly_32_kb_is_accepted() -> None:
    assert one({"batch": [padded(MAX_EVENT_BYTES)]}).event == "Clicked"
    assert one(padded(MAX_EVENT_BYTES), kind="track").event == "Clicked"


@pytest.mark.parametrize(
    ("kind", "wrap", "field"), [("batch", True, "batch[1]"), ("track", False, "body")]
)
def test_event_one_byte_over_32_kb_is_rejected(kind: str, wrap: bool, field: str) -> None:
    big = padded(MAX_EVENT_BYTES + 1)
    body = {"batch": [TRACK, big]} if wrap else big
    with pytest.raises(LimitExceeded) as info:
        parse_request(body, kind=kind, received_at=RECEIVED)
    assert info.value.field == field
    assert "32 KB" in info.value.detail


def test_integers_beyond_64_bits_are_a_validation_error() -> None:
    with pytest.raises(LoopwiseError) as info:
        parse_request({**TRACK, "properties": {"n": 2**70}}, kind="track", received_at=RECEIVED)
    assert info.value.field == "body"


def test_record_roundtrip_of_a_parsed_event() -> None:
    event = one({**TRACK, "timestamp": "2024-05-01T11:00:00.123Z", "messageId": "m"}, "track")
    assert Event.from_record(orjson.loads(orjson.dumps(event.to_record()))) == event


# --- hostile input (regressions) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"timestamp": "0001-01-01T00:00:00Z"}, "timestamp"),
        ({"timestamp": "1970-01-01T00:00:00Z"}, "timestamp"),
        ({"timestamp": "9999-12-31T23:59:59Z"}, "timestamp"),
        ({"originalTimestamp": "2024-05-03T12:00:00Z"}, "originalTimestamp"),
        # not representable in UTC: used to raise OverflowError (a 500)
        ({"timestamp": "0001-01-01T00:00:00+01:00"}, "timestamp"),
        ({"sentAt": "9999-12-31T23:59:59-01:00"}, "sentAt"),
        # the skew correction would overflow or land in year 9000
        ({"originalTimestamp": "2024-05-01T12:00:00Z", "sentAt": "9999-12-31T00:00:00Z"}, "sentAt"),
        ({"timestamp": "2024-05-01T12:00:00Z", "sentAt": "0001-01-01T00:00:00Z"}, "sentAt"),
    ],
)
def test_absurd_event_times_are_rejected_naming_the_field(
    message: dict[str, Any], field: str
) -> None:
    body = {"userId": "u", "event": "E", **message}
    with pytest.raises(ValidationFailed) as info:
        parse_request(body, kind="track", received_at=RECEIVED)
    assert info.value.field == field
    with pytest.raises(ValidationFailed) as info:
        parse_request({"batch": [{"type": "track", **body}]}, kind="batch", received_at=RECEIVED)
    assert info.value.field == f"batch[0].{field}"


def test_event_times_inside_the_window_are_kept() -> None:
    old = one({"userId": "u", "event": "E", "timestamp": "2000-01-01T00:00:00Z"}, "track")
    assert old.timestamp == at("2000-01-01T00:00:00+00:00")
    soon = one({"userId": "u", "event": "E", "timestamp": "2024-05-02T11:00:00Z"}, "track")
    assert soon.timestamp == at("2024-05-02T11:00:00+00:00")
    # a client clock years ahead is corrected by sentAt, not rejected
    skewed = one(
        {
            "userId": "u",
            "event": "E",
            "originalTimestamp": "2099-01-01T00:00:00Z",
            "sentAt": "2099-01-01T00:00:05Z",
        },
        "track",
    )
    assert skewed.timestamp == RECEIVED - timedelta(seconds=5)


def test_deeply_nested_message_is_a_limit_error_not_a_crash() -> None:
    deep: Any = 1
    for _ in range(300):
        deep = {"a": deep}
    with pytest.raises(LimitExceeded) as info:
        parse_request({"userId": "u", "event": "E", "properties": deep}, kind="track",
                      received_at=RECEIVED)  # fmt: skip
    assert info.value.field is not None and info.value.field.startswith("properties.a")
    batch = {"context": deep, "batch": [{"type": "track", "userId": "u", "event": "E"}]}
    with pytest.raises(LimitExceeded) as info:
        parse_request(batch, kind="batch", received_at=RECEIVED)
    assert info.value.field is not None and info.value.field.startswith("context.a")


def test_batch_context_counts_toward_each_events_size() -> None:
    context = {"blob": "x" * (MAX_EVENT_BYTES - 100)}
    batch = [{"type": "track", "userId": "u", "event": "E", "properties": {"p": "y" * 200}}]
    with pytest.raises(LimitExceeded) as info:
        parse_request({"context": context, "batch": batch}, kind="batch", received_at=RECEIVED)
    assert info.value.field == "batch[0]"
    small = parse_request(
        {"context": {"library": {"name": "x"}}, "batch": batch}, kind="batch", received_at=RECEIVED
    )
    assert small[0].context["library"] == {"name": "x"}


@pytest.mark.parametrize("key", ["userId", "anonymousId", "messageId"])
def test_ids_longer_than_decide_accepts_are_rejected(key: str) -> None:
    body = {"userId": "u", "event": "E", key: "x" * 10_240}
    with pytest.raises(ValidationFailed) as info:
        parse_request(body, kind="track", received_at=RECEIVED)
    assert info.value.field == key
    assert one({"userId": "ü🎉" * 100, "event": "E"}, "track").user_id == "ü🎉" * 100
