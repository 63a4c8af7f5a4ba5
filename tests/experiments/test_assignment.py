from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from loopwise.experiments.assignment import (
    ArmSpec,
    ExperimentSpec,
    HoldoutSpec,
    MetricSpec,
    assign,
    bucket_ranges,
    choose_variation,
    fnv1a32,
    hash,
    in_holdout,
    in_namespace,
)

# growthbook/packages/sdk-js/test/cases.json "hash": [seed, value, version, expected].
HASH_VECTORS = [
    ("", "a", 1, 0.22),
    ("", "b", 1, 0.077),
    ("b", "a", 1, 0.946),
    ("ef", "d", 1, 0.652),
    ("asdf", "8952klfjas09ujk", 1, 0.549),
    ("", "123", 1, 0.011),
    ("", '___)((*":&', 1, 0.563),
    ("seed", "a", 2, 0.0505),
    ("seed", "b", 2, 0.2696),
    ("foo", "ab", 2, 0.2575),
    ("foo", "def", 2, 0.2019),
    ("89123klj", "8952klfjas09ujkasdf", 2, 0.124),
    ("90850943850283058242805", "123", 2, 0.7516),
    ("()**(%$##$%#$#", '___)((*":&', 2, 0.0128),
]

# cases.json "getBucketRange": (num_arms, coverage, weights) -> ranges.
BUCKET_VECTORS: list[tuple[tuple[int, float, list[float] | None], list[tuple[float, float]]]] = [
    ((2, 1, None), [(0, 0.5), (0.5, 1)]),
    ((2, 0.5, None), [(0, 0.25), (0.5, 0.75)]),
    ((2, 0, None), [(0, 0), (0.5, 0.5)]),
    ((4, 1, None), [(0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1)]),
    ((2, 1, [0.4, 0.6]), [(0, 0.4), (0.4, 1)]),
    ((3, 1, [0.2, 0.3, 0.5]), [(0, 0.2), (0.2, 0.5), (0.5, 1)]),
    ((3, 0.2, [0.2, 0.3, 0.5]), [(0, 0.04), (0.2, 0.26), (0.5, 0.6)]),
    ((2, -0.2, None), [(0, 0), (0.5, 0.5)]),
    ((2, 1.5, None), [(0, 0.5), (0.5, 1)]),
    ((2, 1, [0.4, 0.1]), [(0, 0.5), (0.5, 1)]),
    ((2, 1, [0.7, 0.6]), [(0, 0.5), (0.5, 1)]),
    ((4, 1, [0.4, 0.4, 0.2]), [(0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1)]),
    ((2, 1, [0.4, 0.5999]), [(0, 0.4), (0.4, 0.9999)]),
    ((3, 1, [0.3, 0.3, 0.3]), [(0, 1 / 3), (1 / 3, 2 / 3), (2 / 3, 1)]),
]


def spec(**overrides: Any) -> ExperimentSpec:
    fields: dict[str, Any] = {"key": "my-test", "arms": [ArmSpec(key="a"), ArmSpec(key="b")]}
    fields.update(overrides)
    return ExperimentSpec(**fields)


def arms(n: int) -> list[ArmSpec]:
    return [ArmSpec(key=f"arm{i}") for i in range(n)]


def test_fnv1a32_reference_values() -> None:
    # Landon Curt Noll's FNV-1a 32-bit test vectors (ASCII, one byte = one code unit).
    assert fnv1a32("") == 0x811C9DC5
    assert fnv1a32("a") == 0xE40C292C
    assert fnv1a32("foobar") == 0xBF9CF968


def test_fnv1a32_hashes_utf16_code_units_like_javascript() -> None:
    # "😀" is one code point but two UTF-16 code units (a surrogate pair), as charCodeAt sees it.
    expected = 2166136261
    for unit in (0xD83D, 0xDE00):
        expected = ((expected ^ unit) * 16777619) % 2**32
    assert fnv1a32("\U0001f600") == expected
    # "é" is a single code unit 0xE9, not its two UTF-8 bytes.
    assert fnv1a32("é") == ((2166136261 ^ 0xE9) * 16777619) % 2**32


@pytest.mark.parametrize(("seed", "value", "version", "expected"), HASH_VECTORS)
def test_hash_matches_growthbook(seed: str, value: str, version: int, expected: float) -> None:
    assert hash(seed, value, version) == expected


def test_hash_version_1_by_hand() -> None:
    assert hash("", "a", 1) == fnv1a32("a") % 1000 / 1000
    assert hash("s", "u", 1) == fnv1a32("us") % 1000 / 1000  # value before seed
    assert hash("s", "u", 2) == fnv1a32(str(fnv1a32("su"))) % 10000 / 10000  # seed before value


@pytest.mark.parametrize("version", [0, 3, -1])
def test_hash_unknown_version_is_none(version: int) -> None:
    assert hash("seed", "a", version) is None


@pytest.mark.parametrize(("args", "expected"), BUCKET_VECTORS)
def test_bucket_ranges_match_growthbook(
    args: tuple[int, float, list[float] | None], expected: list[tuple[float, float]]
) -> None:
    ranges = bucket_ranges(*args)
    assert len(ranges) == len(expected)
    for (start, end), (want_start, want_end) in zip(ranges, expected, strict=True):
        assert start == pytest.approx(want_start, abs=1e-9)
        assert end == pytest.approx(want_end, abs=1e-9)


def test_choose_variation() -> None:
    even = [(0.0, 0.5), (0.5, 1.0)]
    reduced = [(0.0, 0.25), (0.5, 0.75)]
    zero = [(0.0, 0.5), (0.5, 0.5), (0.5, 1.0)]
    assert [choose_variation(n, even) for n in (0.2, 0.6, 0.4, 0.8, 0, 0.5)] == [0, 1, 0, 1, 0, 1]
    assert [choose_variation(n, reduced) for n in (0.2, 0.6, 0.4, 0.8)] == [0, 1, -1, -1]
    assert choose_variation(0.5, zero) == 2  # an empty range never matches
    assert choose_variation(1.0, even) == -1


@pytest.mark.parametrize(
    ("user", "namespace", "start", "end", "expected"),
    [
        ("1", "namespace1", 0, 0.4, False),
        ("1", "namespace1", 0.4, 1, True),
        ("1", "namespace2", 0, 0.4, False),
        ("1", "namespace2", 0.4, 1, True),
        ("2", "namespace1", 0, 0.4, False),
        ("2", "namespace1", 0.4, 1, True),
        ("3", "namespace2", 0, 0.4, True),
        ("3", "namespace2", 0.4, 1, False),
    ],
)
def test_in_namespace_matches_growthbook(
    user: str, namespace: str, start: float, end: float, expected: bool
) -> None:
    assert in_namespace(user, (namespace, start, end)) is expected


def test_assign_coverage_matches_growthbook_sdk() -> None:
    # GrowthBook's JS SDK test "coverage": key my-test, hash version 1, users "1".."9".
    experiment = spec(coverage=0.4, hash_version=1)
    results = [assign(experiment, str(i), {}) for i in range(1, 10)]
    got = [r.arm_index if r is not None and r.in_experiment else -1 for r in results]
    assert got == [-1, 0, 0, -1, 1, -1, 0, 1, -1]


def test_assign_three_way_matches_growthbook_sdk() -> None:
    experiment = spec(arms=arms(3), hash_version=1)
    got = [assign(experiment, str(i), {}) for i in range(1, 10)]
    assert [r.arm_index for r in got if r is not None] == [2, 0, 0, 2, 1, 2, 0, 1, 0]


def test_assignment_is_deterministic_and_records_why() -> None:
    experiment = spec()
    first = assign(experiment, "profile-42", {})
    assert first is not None and first.in_experiment
    assert first.hash_value == hash("my-test", "profile-42", 2)
    assert first.arm_key == experiment.arms[first.arm_index].key
    assert first.experiment == "my-test"
    assert "hashed" in first.reason
    # the same stable key always gives the same arm, whatever else the request carries
    for attrs in ({}, {"context": {"device": {"type": "mobile"}}}, {"profile": {"known": True}}):
        assert assign(experiment, "profile-42", attrs) == first


def test_seed_decouples_experiments() -> None:
    users = [f"u{i}" for i in range(2000)]
    a = [assign(spec(seed="one"), u, {}) for u in users]
    b = [assign(spec(seed="two"), u, {}) for u in users]
    same = sum(
        x is not None and y is not None and x.arm_index == y.arm_index
        for x, y in zip(a, b, strict=True)
    )
    assert 900 < same < 1100  # independent: about half agree


@given(st.text(min_size=1, max_size=30))
def test_raising_coverage_never_moves_a_user(user: str) -> None:
    narrow = assign(spec(coverage=0.3, weights=[0.4, 0.6]), user, {})
    wide = assign(spec(coverage=1.0, weights=[0.4, 0.6]), user, {})
    assert narrow is not None and wide is not None
    assert wide.in_experiment
    if narrow.in_experiment:
        assert narrow.arm_index == wide.arm_index


def test_weights_split_traffic() -> None:
    experiment = spec(arms=[ArmSpec(key="a", weight=0.2), ArmSpec(key="b", weight=0.8)])
    assert experiment.arm_weights == [0.2, 0.8]
    counts = Counter(
        result.arm_index
        for i in range(5000)
        if (result := assign(experiment, f"user-{i}", {})) is not None
    )
    assert 900 < counts[0] < 1100


def test_targeting_condition_excludes_and_serves_control() -> None:
    experiment = spec(condition={"context.device.type": "mobile"})
    mobile = assign(experiment, "u1", {"context": {"device": {"type": "mobile"}}})
    desktop = assign(experiment, "u1", {"context": {"device": {"type": "desktop"}}})
    assert mobile is not None and mobile.in_experiment
    assert desktop is not None
    assert (desktop.in_experiment, desktop.arm_index, desktop.hash_value) == (False, 0, None)
    assert "targeting" in desktop.reason


def test_namespaces_make_experiments_mutually_exclusive() -> None:
    left = spec(key="left", namespace=("checkout", 0, 0.5))
    right = spec(key="right", namespace=("checkout", 0.5, 1))
    both = 0
    for i in range(3000):
        a, b = assign(left, f"u{i}", {}), assign(right, f"u{i}", {})
        assert a is not None and b is not None
        assert a.in_experiment != b.in_experiment
        both += a.in_experiment
        if not a.in_experiment:
            assert "namespace" in a.reason
    assert 1350 < both < 1650


def test_forced_arm_wins_even_when_paused() -> None:
    experiment = spec(active=False, condition={"profile.known": True})
    forced = assign(experiment, "u1", {}, forced={"my-test": 1})
    assert forced is not None
    assert (forced.arm_index, forced.in_experiment, forced.hash_value) == (1, True, None)
    out_of_range = assign(spec(), "u1", {}, forced={"my-test": 7})
    assert out_of_range is not None
    assert (out_of_range.arm_index, out_of_range.in_experiment) == (0, False)
    assert assign(experiment, "u1", {}, forced={"other": 1}) is None


def test_force_arm_serves_arm_without_logging_exposure() -> None:
    result = assign(spec(force_arm=1), "u1", {})
    assert result is not None
    assert (result.arm_index, result.arm_key, result.in_experiment) == (1, "b", False)


def test_qa_mode_serves_control_and_logs_nothing() -> None:
    for i in range(50):
        result = assign(spec(), f"u{i}", {}, qa_mode=True)
        assert result is not None
        assert (result.arm_index, result.in_experiment) == (0, False)


def test_inactive_or_out_of_schedule_experiment_is_not_running() -> None:
    assert assign(spec(active=False), "u1", {}) is None
    window = spec(start=datetime(2025, 1, 1, tzinfo=UTC), end=datetime(2025, 2, 1, tzinfo=UTC))
    assert assign(window, "u1", {}, now=datetime(2024, 12, 31, tzinfo=UTC)) is None
    assert assign(window, "u1", {}, now=datetime(2025, 2, 1, tzinfo=UTC)) is None
    assert assign(window, "u1", {}, now=datetime(2025, 1, 15, tzinfo=UTC)) is not None
    naive = spec(start=datetime(2025, 1, 1))  # workspace times without a zone mean UTC
    assert naive.start == datetime(2025, 1, 1, tzinfo=UTC)
    assert assign(naive, "u1", {}, now=datetime(2024, 12, 31, 23, tzinfo=UTC)) is None


def test_empty_user_key_is_not_hashed() -> None:
    result = assign(spec(), "", {})
    assert result is not None and not result.in_experiment


def test_holdout_share_and_independence() -> None:
    holdout = HoldoutSpec(percent=0.1)
    users = [f"user-{i}" for i in range(10000)]
    held = [u for u in users if in_holdout(holdout, u)]
    assert 900 < len(held) < 1100
    assert not any(in_holdout(HoldoutSpec(percent=0), u) for u in users[:500])
    # membership does not predict the arm of an experiment
    arms_of_held = Counter(r.arm_index for u in held if (r := assign(spec(), u, {})) is not None)
    assert abs(arms_of_held[0] - arms_of_held[1]) < 0.15 * len(held)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"arms": [ArmSpec(key="only")]}, "at least 2"),
        ({"arms": [ArmSpec(key="a"), ArmSpec(key="a")]}, "unique"),
        ({"weights": [0.5, 0.6]}, "sum to 1"),
        ({"weights": [1.0]}, "one weight per arm"),
        ({"arms": [ArmSpec(key="a", weight=0.5), ArmSpec(key="b")]}, "every arm or on none"),
        ({"coverage": 1.5}, "less than or equal to 1"),
        ({"hash_version": 3}, "1 or 2"),
        ({"namespace": ("n", 0.6, 0.2)}, "start < end"),
        ({"condition": {"profile.x": {"$gt": [1]}}}, "profile.x.$gt"),
        ({"force_arm": 2}, "0..1"),
        ({"extra_field": 1}, "Extra inputs"),
        (
            {
                "start": datetime(2025, 2, 1, tzinfo=UTC),
                "end": datetime(2025, 1, 1, tzinfo=UTC),
            },
            "after start",
        ),
    ],
)
def test_experiment_spec_rejects_bad_config(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("$", r"\$")):
        spec(**overrides)


def test_metric_spec_ratio_needs_denominator() -> None:
    with pytest.raises(ValidationError, match="denominator_event"):
        MetricSpec(key="ctr", kind="ratio", event="Product Clicked")
    metric = MetricSpec(
        key="ctr", kind="ratio", event="Product Clicked", denominator_event="Product Viewed"
    )
    assert metric.window_hours == 168
    experiment = spec(
        metrics=[metric],
        guardrails=[{"key": "orders", "kind": "conversion", "event": "Order Completed"}],
    )
    assert experiment.guardrails[0].event == "Order Completed"


def test_seed_defaults_to_key() -> None:
    assert spec().hash_seed == "my-test"
    assert spec(seed="s").hash_seed == "s"


def test_copies_recompute_cached_ranges_and_condition() -> None:
    experiment = spec(coverage=0.5, condition={"profile.known": True})
    assert experiment.ranges == [(0, 0.25), (0.5, 0.75)]
    assert not experiment.matches({"profile": {"known": False}})
    widened = experiment.model_copy(update={"coverage": 1.0, "condition": {}})
    assert widened.ranges == [(0, 0.5), (0.5, 1)]
    assert widened.matches({"profile": {"known": False}})
    assert experiment.ranges == [(0, 0.25), (0.5, 0.75)]
