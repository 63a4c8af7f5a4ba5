from __future__ import annotations

from pathlib import Path

import pytest

from loopwise.config import SAMPLE_WORKSPACE, format_path, load_workspace_file, parse_workspace
from loopwise.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "loopwise.yaml"
    path.write_text(text)
    return path


def test_the_bundled_sample_workspace_is_valid() -> None:
    workspace = load_workspace_file(SAMPLE_WORKSPACE)
    assert {s.key for s in workspace.slots} >= {"hero", "recommended"}
    assert workspace.items


def test_error_names_the_line_and_the_path(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
workspace: t
slots:
  - key: hero
    kind: block
    variants:
      - id: a
        content: {headline: Hi}
    rules:
      - id: r1
        when: {"profile.sessions": {"$in": 3}}
        then: {variant: a}
""",
    )
    with pytest.raises(ConfigError) as info:
        load_workspace_file(path)
    error = info.value
    assert error.field is not None and error.field.startswith("slots[0].rules[0].when")
    assert error.extra["line"] == 10
    assert ":10:" in error.detail and "$in" in error.detail


def test_unknown_segment_in_a_rule_is_rejected(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
slots:
  - key: hero
    kind: block
    variants: [{id: a, content: {}}]
    rules:
      - {id: r, segments: [no_such_segment], then: {variant: a}}
""",
    )
    with pytest.raises(ConfigError) as info:
        load_workspace_file(path)
    assert info.value.field == "slots[0].rules[0].segments[0]"
    assert info.value.extra["line"] == 6


def test_duplicate_slot_keys_and_unknown_fields(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        parse_workspace({"slots": [{"key": "a", "kind": "list"}, {"key": "a", "kind": "list"}]})
    assert info.value.field == "slots[1].key"
    with pytest.raises(ConfigError) as info:
        parse_workspace({"slotz": []})
    assert info.value.field == "slotz"


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "workspace: t\nslots: [\n  {key: a\n")
    with pytest.raises(ConfigError) as info:
        load_workspace_file(path)
    assert "not valid YAML" in info.value.detail


def test_format_path() -> None:
    assert format_path(("slots", 1, "rules", 0, "then")) == "slots[1].rules[0].then"


def test_deeply_nested_documents_are_a_config_error() -> None:
    condition: dict[str, object] = {"profile.sessions": 1}
    for _ in range(300):
        condition = {"$and": [condition]}
    with pytest.raises(ConfigError) as info:
        parse_workspace({"segments": [{"key": "deep", "name": "Deep", "condition": condition}]})
    assert info.value.field is not None
    assert info.value.field.startswith("segments[0].condition.$and[0]")
    negated: object = 1
    for _ in range(400):  # used to exhaust the condition compiler's recursion
        negated = {"$not": negated}
    with pytest.raises(ConfigError):
        parse_workspace({"segments": [{"key": "n", "name": "N", "condition": {"x": negated}}]})


def _with_experiment(**changes: object) -> dict:
    from loopwise.config import SAMPLE_WORKSPACE, load_workspace_file

    document = load_workspace_file(SAMPLE_WORKSPACE).document()
    document["experiments"][0].update(changes)
    return document


def test_experiments_are_validated_with_field_paths() -> None:
    import pytest

    from loopwise.config import parse_workspace
    from loopwise.errors import ConfigError

    cases = [
        ({"slot": "nope"}, "experiments[0].slot"),
        ({"slot": "hero"}, "experiments[0].arms[0].variant"),
        ({"arms": [{"key": "a", "strategy": "popular"}]}, "experiments[0].arms"),
        ({"status": "paused"}, "experiments[0].status"),
        ({"coverage": 2}, "experiments[0].coverage"),
        (
            {"metrics": [{"key": "m", "kind": "ratio", "numerator": "x", "denominator": "y"}]},
            "experiments[0]",
        ),
    ]
    for change, field in cases:
        with pytest.raises(ConfigError) as error:
            parse_workspace(_with_experiment(**change))
        assert error.value.field == field, (change, error.value.field)
    block = _with_experiment(
        slot="hero",
        arms=[{"key": "a", "variant": "welcome"}, {"key": "b", "variant": "missing"}],
    )
    with pytest.raises(ConfigError) as error:
        parse_workspace(block)
    assert error.value.field == "experiments[0].arms[1].variant"
    assert "welcome-back" in error.value.detail
    twice = _with_experiment()
    twice["experiments"].append(dict(twice["experiments"][0]))
    with pytest.raises(ConfigError) as error:
        parse_workspace(twice)
    assert error.value.field == "experiments[1].key"
    with pytest.raises(ConfigError) as error:
        parse_workspace({**_with_experiment(), "holdout": {"percent": 60}})
    assert error.value.field == "holdout.percent"
    ok = parse_workspace({**_with_experiment(), "holdout": {"percent": 5}})
    assert ok.holdout.spec.percent == 0.05 and ok.experiments[0].control_key == "control"


def test_rules_may_target_published_cluster_keys_which_are_reserved() -> None:
    slot = {
        "key": "offer",
        "kind": "block",
        "variants": [{"id": "a", "content": {}}],
        "rules": [{"id": "r", "segments": ["cluster_2"], "then": {"variant": "a"}}],
    }
    assert parse_workspace({"slots": [slot]}).slots[0].rules[0].segments == ["cluster_2"]
    bad = {**slot, "rules": [{"id": "r", "segments": ["cluster_x"], "then": {"variant": "a"}}]}
    with pytest.raises(ConfigError) as unknown:
        parse_workspace({"slots": [bad]})
    assert unknown.value.field == "slots[0].rules[0].segments[0]"
    own = {"key": "cluster_1", "name": "Mine", "condition": {"profile.sessions": 1}}
    with pytest.raises(ConfigError, match="reserved") as reserved:
        parse_workspace({"segments": [own]})
    assert reserved.value.field == "segments[0].key"
