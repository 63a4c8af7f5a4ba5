from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loopwise.errors import ConditionError, ConfigError
from loopwise.segments.conditions import (
    MAX_SAVED_GROUP_DEPTH,
    OPERATORS,
    compile_condition,
    js_compare,
    js_number,
    js_string,
    padded_version_string,
    path_getter,
    referenced_roots,
    saved_group_references,
)

SANTA: dict[str, Any] = {
    "$and": [
        {"father.age": {"$gt": 65}},
        {"$or": [{"bday": {"$regex": "-12-25$"}}, {"name": "santa"}]},
    ]
}
GROUPS = {"group_id": [1, "2", 3]}

# (name, condition, attributes, expected) -- GrowthBook's shared evalCondition cases and more.
CASES: list[tuple[str, dict[str, Any], dict[str, Any], bool]] = [
    ("$not pass", {"$not": {"name": "hello"}}, {"name": "world"}, True),
    ("$not fail", {"$not": {"name": "hello"}}, {"name": "hello"}, False),
    (
        "and/or all true",
        SANTA,
        {"name": "santa", "bday": "1980-12-25", "father": {"age": 70}},
        True,
    ),
    (
        "and/or first or",
        SANTA,
        {"name": "santa", "bday": "1980-12-20", "father": {"age": 70}},
        True,
    ),
    ("and/or second or", SANTA, {"name": "bob", "bday": "1980-12-25", "father": {"age": 70}}, True),
    (
        "and/or and false",
        SANTA,
        {"name": "santa", "bday": "1980-12-25", "father": {"age": 65}},
        False,
    ),
    (
        "and/or both or false",
        SANTA,
        {"name": "b", "bday": "1980-11-25", "father": {"age": 70}},
        False,
    ),
    ("$exists false pass", {"pets.dog.name": {"$exists": False}}, {"hello": "world"}, True),
    (
        "$exists false fail",
        {"pets.dog.name": {"$exists": False}},
        {"pets": {"dog": {"name": "f"}}},
        False,
    ),
    ("$exists true fail", {"pets.dog.name": {"$exists": True}}, {"hello": "world"}, False),
    (
        "$exists true pass",
        {"pets.dog.name": {"$exists": True}},
        {"pets": {"dog": {"name": "f"}}},
        True,
    ),
    ("$exists null is absent", {"x": {"$exists": True}}, {"x": None}, False),
    (
        "equals many types",
        {"s": "str", "n": 10, "f": False},
        {"s": "str", "n": 10, "f": False},
        True,
    ),
    ("$in pass", {"num": {"$in": [1, 2, 3]}}, {"num": 2}, True),
    ("$in fail", {"num": {"$in": [1, 2, 3]}}, {"num": 4}, False),
    ("$in array pass", {"tags": {"$in": ["a", "b"]}}, {"tags": ["d", "e", "a"]}, True),
    ("$in array fail", {"tags": {"$in": ["a", "b"]}}, {"tags": ["d", "e", "f"]}, False),
    ("$in empty array", {"tags": {"$in": ["a", "b"]}}, {"tags": []}, False),
    ("$in strict types", {"id": {"$in": [1, 2]}}, {"id": "1"}, False),
    ("$in bool is not 1", {"id": {"$in": [1]}}, {"id": True}, False),
    ("$in int equals float", {"id": {"$in": [1]}}, {"id": 1.0}, True),
    ("$in case sensitive", {"country": {"$in": ["us", "uk"]}}, {"country": "US"}, False),
    ("$in missing", {"pets.dog.name": {"$in": ["fido"]}}, {"hello": "world"}, False),
    ("$in null member", {"x": {"$in": [None]}}, {}, True),
    ("$nin pass", {"num": {"$nin": [1, 2, 3]}}, {"num": 4}, True),
    ("$nin fail", {"num": {"$nin": [1, 2, 3]}}, {"num": 2}, False),
    ("$nin array fail", {"tags": {"$nin": ["a", "b"]}}, {"tags": ["d", "b", "f"]}, False),
    ("$nin array pass", {"tags": {"$nin": ["a", "b"]}}, {"tags": ["d", "e", "f"]}, True),
    ("$nin empty array", {"tags": {"$nin": ["a", "b"]}}, {"tags": []}, True),
    ("$ini pass", {"country": {"$ini": ["us", "uk"]}}, {"country": "US"}, True),
    ("$ini upper pattern", {"country": {"$ini": ["US", "UK"]}}, {"country": "us"}, True),
    ("$ini fail", {"country": {"$ini": ["us", "uk"]}}, {"country": "CA"}, False),
    ("$ini array", {"tags": {"$ini": ["a", "b"]}}, {"tags": ["d", "e", "A"]}, True),
    ("$ini dotted I", {"x": {"$ini": ["\u0130"]}}, {"x": "i"}, False),
    ("$ini sigma", {"x": {"$ini": ["\u03a3"]}}, {"x": "\u03c3"}, True),
    ("$nini pass", {"country": {"$nini": ["us", "uk"]}}, {"country": "CA"}, True),
    ("$nini fail", {"country": {"$nini": ["US", "UK"]}}, {"country": "us"}, False),
    ("$nini array fail", {"tags": {"$nini": ["a", "b"]}}, {"tags": ["d", "e", "A"]}, False),
    (
        "$elemMatch flat pass",
        {"nums": {"$elemMatch": {"$gt": 10}}},
        {"nums": [0, 5, -20, 15]},
        True,
    ),
    (
        "$elemMatch flat fail",
        {"nums": {"$elemMatch": {"$gt": 10}}},
        {"nums": [0, 5, -20, 8]},
        False,
    ),
    ("$elemMatch eq", {"tags": {"$elemMatch": {"$eq": "bar"}}}, {"tags": ["foo", "bar"]}, True),
    ("$elemMatch in", {"tags": {"$elemMatch": {"$in": ["a", "b"]}}}, {"tags": ["d", "b"]}, True),
    ("$elemMatch zero", {"x": {"$elemMatch": {"$eq": 0}}}, {"x": [0]}, True),
    ("$elemMatch false", {"x": {"$elemMatch": {"$eq": False}}}, {"x": [False]}, True),
    ("$elemMatch empty str", {"x": {"$elemMatch": {"$eq": ""}}}, {"x": [""]}, True),
    ("$elemMatch skips null", {"x": {"$elemMatch": {"$exists": False}}}, {"x": [None]}, False),
    (
        "$elemMatch nested pass",
        {"hobbies": {"$elemMatch": {"name": {"$regex": "^ping"}}}},
        {"hobbies": [{"name": "bowling"}, {"name": "pingpong"}]},
        True,
    ),
    (
        "$elemMatch nested fail",
        {"hobbies": {"$elemMatch": {"name": {"$regex": "^ping"}}}},
        {"hobbies": [{"name": "bowling"}, {"name": "tennis"}]},
        False,
    ),
    ("$elemMatch not array", {"h": {"$elemMatch": {"name": "x"}}}, {"h": "all"}, False),
    (
        "$not $elemMatch pass",
        {"tags": {"$not": {"$elemMatch": {"$eq": "bar"}}}},
        {"tags": ["foo", "baz"]},
        True,
    ),
    (
        "$not $elemMatch fail",
        {"tags": {"$not": {"$elemMatch": {"$eq": "bar"}}}},
        {"tags": ["foo", "bar"]},
        False,
    ),
    (
        "missing with comparisons",
        {"age": {"$gt": -10, "$lt": 10, "$gte": -9, "$lte": 9, "$ne": 10}},
        {},
        True,
    ),
    ("$ne vs missing", {"country": {"$ne": "de"}}, {}, True),
    ("$ne vs null", {"country": {"$ne": "de"}}, {"country": None}, True),
    ("number vs numeric string", {"n": {"$gt": 5, "$lt": 10}}, {"n": "8"}, True),
    ("numeric strings vs number", {"n": {"$gt": "5", "$lt": "10"}}, {"n": 8}, True),
    ("$gt string number", {"age": {"$gt": "10"}}, {"age": 11}, True),
    ("$gt non-numeric string vs number", {"age": {"$gt": 10}}, {"age": "old"}, False),
    ("$lt non-numeric string vs number", {"age": {"$lt": 10}}, {"age": "old"}, False),
    ("$lt missing is 0", {"x": {"$lt": 5}}, {}, True),
    ("$lte missing is 0", {"x": {"$lte": 5}}, {}, True),
    ("$gt missing is 0", {"x": {"$gt": 5}}, {}, False),
    ("$gte missing is 0", {"x": {"$gte": 5}}, {}, False),
    ("$gte missing vs 0", {"x": {"$gte": 0}}, {}, True),
    ("empty $or", {"$or": []}, {"hello": "world"}, True),
    ("empty $and", {"$and": []}, {"hello": "world"}, True),
    ("empty $nor", {"$nor": []}, {"hello": "world"}, False),
    ("empty condition", {}, {"hello": "world"}, True),
    ("$eq pass", {"occupation": {"$eq": "engineer"}}, {"occupation": "engineer"}, True),
    ("$eq fail", {"occupation": {"$eq": "engineer"}}, {"occupation": "civil engineer"}, False),
    ("$eq strict number/string", {"x": {"$eq": 5}}, {"x": "5"}, False),
    ("$eq strict bool/number", {"x": {"$eq": True}}, {"x": 1}, False),
    ("$eq false vs missing", {"userId": {"$eq": False}}, {}, False),
    ("$eq null vs missing", {"userId": {"$eq": None}}, {}, True),
    ("$ne pass", {"level": {"$ne": "senior"}}, {"level": "junior"}, True),
    ("$ne fail", {"level": {"$ne": "senior"}}, {"level": "senior"}, False),
    ("$regex pass", {"ua": {"$regex": "(Mobile|Tablet)"}}, {"ua": "Android Mobile Browser"}, True),
    ("$regex fail", {"ua": {"$regex": "(Mobile|Tablet)"}}, {"ua": "Chrome Desktop"}, False),
    ("$regex case", {"ua": {"$regex": "(mobile|tablet)"}}, {"ua": "Android Mobile"}, False),
    ("$regex unanchored", {"path": {"$regex": "shoes"}}, {"path": "/c/shoes/red"}, True),
    ("$regex missing", {"name": {"$regex": ".*"}}, {}, False),
    ("$regex number", {"n": {"$regex": "^12"}}, {"n": 123}, True),
    ("$regexi pass", {"ua": {"$regexi": "(MOBILE|TABLET)"}}, {"ua": "android mobile"}, True),
    ("$regexi fail", {"ua": {"$regexi": "(mobile|tablet)"}}, {"ua": "Chrome Desktop"}, False),
    ("$gt/$lt numbers", {"age": {"$gt": 30, "$lt": 60}}, {"age": 50}, True),
    ("$lt bound", {"age": {"$gt": 30, "$lt": 60}}, {"age": 60}, False),
    ("$gt bound", {"age": {"$gt": 30, "$lt": 60}}, {"age": 30}, False),
    ("$gte/$lte bounds", {"age": {"$gte": 30, "$lte": 60}}, {"age": 30}, True),
    ("$lte over", {"age": {"$gte": 30, "$lte": 60}}, {"age": 61}, False),
    ("strings gt fail", {"w": {"$gt": "alphabet", "$lt": "zebra"}}, {"w": "alphabet"}, False),
    ("strings lt fail", {"w": {"$gt": "alphabet", "$lt": "zebra"}}, {"w": "zebra"}, False),
    ("strings pass", {"w": {"$gt": "alphabet", "$lt": "zebra"}}, {"w": "always"}, True),
    ("strings uppercase", {"w": {"$gt": "alphabet", "$lt": "zebra"}}, {"w": "AZL"}, False),
    ("numeric strings compare as strings", {"v": {"$gt": "9"}}, {"v": "10"}, False),
    ("nested value null", {"address.state": "CA"}, {"address": None}, False),
    ("nested value int", {"address.state": "CA"}, {"address": 123}, False),
    ("$type string", {"a": {"$type": "string"}}, {"a": "a"}, True),
    ("$type string fail", {"a": {"$type": "string"}}, {"a": 1}, False),
    ("$type null", {"a": {"$type": "null"}}, {"a": None}, True),
    ("$type null for missing", {"a": {"$type": "null"}}, {}, True),
    ("$type boolean", {"a": {"$type": "boolean"}}, {"a": False}, True),
    ("$type boolean not number", {"a": {"$type": "number"}}, {"a": True}, False),
    ("$type number", {"a": {"$type": "number"}}, {"a": 1.5}, True),
    ("$type object", {"a": {"$type": "object"}}, {"a": {}}, True),
    ("$type array", {"a": {"$type": "array"}}, {"a": [1, 2]}, True),
    ("$type array fail", {"a": {"$type": "array"}}, {"a": 1}, False),
    ("unknown operator", {"name": {"$regx": "hello"}}, {"name": "hello"}, False),
    ("unknown operator with known", {"n": {"$gt": 1, "$nope": 1}}, {"n": 5}, False),
    ("$size 0 pass", {"tags": {"$size": 0}}, {"tags": []}, True),
    ("$size 0 fail", {"tags": {"$size": 0}}, {"tags": [10]}, False),
    ("$size 3", {"tags": {"$size": 3}}, {"tags": ["a", "b", "c"]}, True),
    ("$size small", {"tags": {"$size": 3}}, {"tags": ["a", "b"]}, False),
    ("$size not array", {"tags": {"$size": 3}}, {"tags": "abc"}, False),
    ("$size nested", {"tags": {"$size": {"$gt": 2}}}, {"tags": [0, 1, 2]}, True),
    ("$size nested fail", {"tags": {"$size": {"$gt": 2}}}, {"tags": [0, 1]}, False),
    ("$not regex pass", {"name": {"$not": {"$regex": "^hello"}}}, {"name": "world"}, True),
    ("$not regex fail", {"name": {"$not": {"$regex": "^hello"}}}, {"name": "hello world"}, False),
    ("$not literal", {"name": {"$not": "bob"}}, {"name": "alice"}, True),
    ("$all pass", {"tags": {"$all": ["one", "three"]}}, {"tags": ["one", "two", "three"]}, True),
    ("$all fail", {"tags": {"$all": ["one", "three"]}}, {"tags": ["one", "two", "four"]}, False),
    ("$all not array", {"tags": {"$all": ["one"]}}, {"tags": "one"}, False),
    ("$all tags", {"tags": {"$all": ["a", "b"]}}, {"tags": ["b", "c", "a"]}, True),
    ("$all case", {"tags": {"$all": ["one"]}}, {"tags": ["ONE"]}, False),
    ("$all operators", {"n": {"$all": [{"$gt": 5}, {"$lt": 0}]}}, {"n": [-1, 7]}, True),
    ("$all empty", {"n": {"$all": []}}, {"n": []}, True),
    ("$alli pass", {"tags": {"$alli": ["one", "three"]}}, {"tags": ["ONE", "two", "THREE"]}, True),
    ("$alli fail", {"tags": {"$alli": ["one", "three"]}}, {"tags": ["ONE", "two", "four"]}, False),
    (
        "$nor pass",
        {"$nor": [{"name": "john"}, {"age": {"$lt": 30}}]},
        {"name": "jim", "age": 40},
        True,
    ),
    (
        "$nor fail",
        {"$nor": [{"name": "john"}, {"age": {"$lt": 30}}]},
        {"name": "jim", "age": 20},
        False,
    ),
    ("array equal", {"tags": ["hello", "world"]}, {"tags": ["hello", "world"]}, True),
    ("array order", {"tags": ["hello", "world"]}, {"tags": ["world", "hello"]}, False),
    ("array missing item", {"tags": ["hello", "world"]}, {"tags": ["hello"]}, False),
    ("array vs string", {"tags": ["hello", "world"]}, {"tags": "hello world"}, False),
    ("object equal", {"t": {"hello": "world"}}, {"t": {"hello": "world"}}, True),
    (
        "object key order",
        {"t": {"a": 1, "b": [1, {"c": None}]}},
        {"t": {"b": [1.0, {"c": None}], "a": 1}},
        True,
    ),
    ("object extra", {"t": {"hello": "world"}}, {"t": {"hello": "world", "yes": "please"}}, False),
    ("object missing prop", {"t": {"hello": "world"}}, {"t": {}}, False),
    ("empty object literal", {"t": {}}, {"t": {}}, True),
    ("empty object literal vs value", {"t": {}}, {"t": 1}, False),
    ("mixed keys is a literal", {"t": {"$gt": 1, "a": 2}}, {"t": {"$gt": 1, "a": 2}}, True),
    ("null condition null", {"userId": None}, {"userId": None}, True),
    ("null condition missing", {"userId": None}, {}, True),
    ("null condition string", {"userId": None}, {"userId": "123"}, False),
    ("null condition zero", {"userId": None}, {"userId": 0}, False),
    ("null condition empty", {"userId": None}, {"userId": ""}, False),
    ("null condition false", {"userId": None}, {"userId": False}, False),
    ("false condition missing", {"userId": False}, {}, False),
    ("false condition zero", {"userId": False}, {"userId": 0}, True),
    ("true condition non-empty", {"flag": True}, {"flag": "yes"}, True),
    ("true condition empty list", {"flag": True}, {"flag": []}, True),
    ("string condition number", {"n": "10"}, {"n": 10}, True),
    ("string condition float", {"n": "1.5"}, {"n": 1.5}, True),
    ("string condition integral float", {"n": "2"}, {"n": 2.0}, True),
    ("string condition bool", {"b": "true"}, {"b": True}, True),
    ("string condition array", {"a": "1,2"}, {"a": [1, 2]}, True),
    ("string condition null", {"a": "null"}, {}, True),
    ("number condition numeric string", {"n": 5}, {"n": "5"}, True),
    ("number condition padded string", {"n": 5}, {"n": " 5 "}, True),
    ("number condition text", {"n": 5}, {"n": "five"}, False),
    ("number condition bool", {"n": 1}, {"n": True}, True),
    ("number zero matches missing", {"n": 0}, {}, True),
    ("number condition hex", {"n": 16}, {"n": "0x10"}, True),
    (
        "$or then field",
        {"$or": [{"foo": 1}, {"bar": 1}], "baz": 2},
        {"foo": 1, "bar": 2, "baz": 1},
        False,
    ),
    (
        "$or and field",
        {"$or": [{"foo": 1}, {"bar": 1}], "baz": 2},
        {"foo": 1, "bar": 2, "baz": 2},
        True,
    ),
    (
        "$and pass $or fail",
        {"$and": [{"foo": 1}, {"bar": 1}], "$or": [{"baz": 1}, {"empty": 1}]},
        {"foo": 1, "bar": 1, "baz": 2},
        False,
    ),
    (
        "$groups attribute",
        {
            "$groups": {"$elemMatch": {"$eq": "a"}},
            "$not": {"$groups": {"$elemMatch": {"$eq": "f"}}},
        },
        {"$groups": ["a", "b"]},
        True,
    ),
    # $notRegex / $notRegexi: the negation of $regex / $regexi (GrowthBook's SDK cases)
    ("$notRegex pass", {"ua": {"$notRegex": "Android"}}, {"ua": "Chrome"}, True),
    ("$notRegex fail", {"ua": {"$notRegex": "Android"}}, {"ua": "Android"}, False),
    ("$notRegexi pass", {"ua": {"$notRegexi": "android"}}, {"ua": "Chrome"}, True),
    ("$notRegexi fail", {"ua": {"$notRegexi": "android"}}, {"ua": "Android"}, False),
    ("$notRegex number as text", {"id": {"$notRegex": "^12"}}, {"id": 123}, False),
    ("$notRegex missing", {"ua": {"$notRegex": "Android"}}, {}, True),
    ("list index path", {"items.1.id": "b"}, {"items": [{"id": "a"}, {"id": "b"}]}, True),
    ("list index out of range", {"items.5.id": {"$exists": True}}, {"items": [{"id": "a"}]}, False),
    ("non-canonical index", {"items.01": "b"}, {"items": ["a", "b"]}, False),
    (
        "dotted profile path",
        {"profile.cart.items": {"$size": 2}},
        {"profile": {"cart": {"items": [1, 2]}}},
        True,
    ),
]

VERSION_CASES: list[tuple[str, str, str, bool]] = [
    # (operator, expected, actual, result)
    ("$vgt", "9.99.8", "10.12.13", True),
    ("$vlt", "11.0.1", "10.12.13", True),
    ("$vgt", "10.2.11", "10.12.11", True),
    ("$vlt", "10.0.20", "10.0.12", True),
    ("$vlt", "50.0.0", "60.0.0", False),
    ("$vgt", "10.30.10", "10.30.2", False),
    ("$vgte", "30.1.2", "30.1.2", True),
    ("$vlte", "60.1.2", "60.1.2", True),
    ("$vlte", "60.1.2", "61.1.2", False),
    ("$vgt", "1.0.0-alpha", "1.0.0-alpha", False),
    ("$vgt", "1.0.0-alpha", "1.0.0-alpha.10", True),
    ("$vlt", "1.0.0-beta", "1.0.0-alpha.10", True),
    ("$vgt", "1.0.0-alpha", "1.0.0-ALPHA", False),
    ("$veq", "1.2.3", "1.2.3+build.abc.123", True),
    ("$vne", "1.2.3", "2.2.3", True),
    ("$vne", "1.2.3", "1.2.3-alpha", True),
    ("$vlt", "1.0.0", "0.9.99", True),
    ("$vlt", "0.10.0", "0.9.0", True),
    ("$vlt", "1.0.0-0.0.0", "1.0.0-0.0", True),
    ("$vlt", "1.0.0--", "1.0.0-9999", True),
    ("$vlt", "1.0.0-100", "1.0.0-99", True),
    ("$vlt", "1.0.0-alpha.1", "1.0.0-alpha", True),
    ("$vlt", "1.0.0-alpha.beta", "1.0.0-alpha.1", True),
    ("$vlt", "1.0.0-beta.11", "1.0.0-beta.2", True),
    ("$vlt", "1.0.0-rc.1", "1.0.0-beta.11", True),
    ("$vlt", "1.0.0", "1.0.0-rc.1", True),
    ("$vgt", "1.2.3-beta", "1.2.3", True),
    ("$vgt", "1.2.3-beta", "1.2.3-alpha", False),
    ("$vgt", "0.0.0-foo", "v0.0.0", True),
    ("$vgt", "v1.2.3", "2.0.0", True),
    ("$vgt", "1.2.3-4-foo", "1.2.3", True),
    ("$vgt", "1.2.3-5", "1.2.3-5-foo", True),
    ("$vgt", "1.2.3-5-Foo", "1.2.3-5-foo", True),
    ("$vgt", "2.7.2+asdf", "3.0.0", True),
    ("$vgt", "1.2.3-a.5", "1.2.3-a.10", True),
    ("$vgt", "1.2.3-r100", "1.2.3-r2", True),
    ("$vgt", "1.2.3", "a.b.c.d.e.f", True),
    ("$vgt", "9999.0.0", "10000.0.0", True),
    ("$veq", "v1.2.3-beta+otherbuild", "1.2.3-beta+build", True),
    ("$veq", "1.2.3", "1-2-3", True),
    ("$veq", "1.2.3-4", "1.2.3.4", True),
]


@pytest.mark.parametrize(
    ("name", "condition", "attributes", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_growthbook_cases(
    name: str, condition: dict[str, Any], attributes: dict[str, Any], expected: bool
) -> None:
    assert compile_condition(condition)(attributes) is expected


@pytest.mark.parametrize(("op", "expected", "actual", "result"), VERSION_CASES)
def test_version_comparisons(op: str, expected: str, actual: str, result: bool) -> None:
    assert compile_condition({"version": {op: expected}})({"version": actual}) is result


def test_version_of_missing_attribute_is_zero() -> None:
    assert compile_condition({"v": {"$vlt": "0.0.1"}})({}) is True
    assert compile_condition({"v": {"$vgt": 1}})({"v": "1.0.1"}) is True


def test_padded_version_string_format() -> None:
    assert padded_version_string("v1.2.3+build") == "    1-    2-    3-~"
    assert padded_version_string("1.2.3-beta.10") == "    1-    2-    3-beta-   10"
    assert padded_version_string(None) == "    0"
    assert padded_version_string(2.0) == "    2"


@pytest.mark.parametrize(
    ("op", "group", "value", "expected"),
    [
        ("$inGroup", "group_id", 1, True),
        ("$inGroup", "group_id", 5, False),
        ("$inGroup", "unknown", 1, False),
        ("$inGroup", "group_id", "2", True),
        ("$inGroup", "group_id", "3", False),
        ("$inGroup", "group_id", [9, 3], True),
        ("$notInGroup", "group_id", 1, False),
        ("$notInGroup", "group_id", 5, True),
        ("$notInGroup", "unknown", 1, True),
    ],
)
def test_saved_groups(op: str, group: str, value: Any, expected: bool) -> None:
    assert compile_condition({"id": {op: group}}, GROUPS)({"id": value}) is expected


def test_saved_groups_are_read_at_compile_time() -> None:
    groups = {"vip": ["u1"]}
    compiled = compile_condition({"profile.user_id": {"$inGroup": "vip"}}, groups)
    groups["vip"].append("u2")
    assert compiled({"profile": {"user_id": "u1"}}) is True
    assert compiled({"profile": {"user_id": "u2"}}) is False


def test_in_group_reads_a_typed_list_group_and_fails_closed_on_other_types() -> None:
    """GrowthBook: $inGroup/$notInGroup read a typed list group's values (on the attribute they
    sit on, not the group's); a condition group, an unknown type or a malformed entry fails both
    closed, because an empty list would pass everyone through an exclusion rule."""
    groups: dict[str, Any] = {
        "list": {"type": "list", "attributeKey": "id", "values": ["a", "b"]},
        "cond": {"type": "condition", "condition": {"plan": "pro"}},
        "noValues": {"type": "list", "attributeKey": "id"},
        "future": {"type": "segment", "values": ["a"]},
        "broken": None,
    }
    assert compile_condition({"tag": {"$inGroup": "list"}}, groups)({"tag": "a", "id": "z"})
    assert not compile_condition({"tag": {"$inGroup": "list"}}, groups)({"tag": "z", "id": "a"})
    assert compile_condition({"tag": {"$notInGroup": "list"}}, groups)({"tag": "z"})
    for group in ("cond", "noValues", "future", "broken"):
        for op in ("$inGroup", "$notInGroup"):
            attrs = {"tag": "a", "plan": "pro"}
            assert compile_condition({"tag": {op: group}}, groups)(attrs) is False, (op, group)
    assert compile_condition({"tag": {"$notInGroup": "nope"}}, groups)({"tag": "a"}) is True


# --- $savedGroup: GrowthBook's typed saved groups (savedGroupReferencesV2) --------------------

TYPED_GROUPS: dict[str, Any] = {
    "beta": {"type": "list", "attributeKey": "id", "values": ["u1", "u2"]},
    "pro": {"type": "condition", "condition": {"plan": "pro"}},
    "pro_beta": {
        "type": "condition",
        "condition": {"$and": [{"$savedGroup": {"id": "beta"}}, {"$savedGroup": {"id": "pro"}}]},
    },
    "legacy": ["u1"],
    "future": {"type": "segment", "values": ["u1"]},
    "no_values": {"type": "list", "attributeKey": "id"},
    "no_key": {"type": "list", "values": ["u1"]},
    "bad_condition": {"type": "condition", "condition": {"$and": 7}},
    "self": {"type": "condition", "condition": {"$savedGroup": {"id": "self"}}},
    "not_self": {"type": "condition", "condition": {"$not": {"$savedGroup": {"id": "not_self"}}}},
    "nested": {
        "type": "condition",
        "condition": {"items": {"$elemMatch": {"marker": True, "$savedGroup": {"id": "nested"}}}},
    },
}

SAVED_GROUP_CASES: list[tuple[str, dict[str, Any], dict[str, Any], bool]] = [
    ("list member", {"$savedGroup": {"id": "beta"}}, {"id": "u1"}, True),
    ("list non-member", {"$savedGroup": {"id": "beta"}}, {"id": "u9"}, False),
    ("list missing attribute", {"$savedGroup": {"id": "beta"}}, {}, False),
    ("list array attribute", {"$savedGroup": {"id": "beta"}}, {"id": ["x", "u2"]}, True),
    (
        "attributeKey override",
        {"$savedGroup": {"id": "beta", "attributeKey": "backup"}},
        {"id": "z", "backup": "u1"},
        True,
    ),
    (
        "override replaces the group's attribute",
        {"$savedGroup": {"id": "beta", "attributeKey": "backup"}},
        {"id": "u1", "backup": "z"},
        False,
    ),
    ("condition group", {"$savedGroup": {"id": "pro"}}, {"plan": "pro"}, True),
    ("condition group fails", {"$savedGroup": {"id": "pro"}}, {"plan": "free"}, False),
    ("nested groups", {"$savedGroup": {"id": "pro_beta"}}, {"id": "u2", "plan": "pro"}, True),
    ("nested groups fail", {"$savedGroup": {"id": "pro_beta"}}, {"id": "u3", "plan": "pro"}, False),
    ("negated", {"$not": {"$savedGroup": {"id": "pro"}}}, {"plan": "free"}, True),
    ("beside paths", {"$savedGroup": {"id": "pro"}, "country": "DE"}, {"plan": "pro"}, False),
    ("in $or", {"$or": [{"$savedGroup": {"id": "beta"}}, {"x": 1}]}, {"id": "u1"}, True),
    ("unknown id", {"$savedGroup": {"id": "nope"}}, {"id": "u1"}, False),
    ("bare list entry", {"$savedGroup": {"id": "legacy"}}, {"id": "u1"}, False),
    ("unknown type", {"$savedGroup": {"id": "future"}}, {"id": "u1"}, False),
    ("list without values", {"$savedGroup": {"id": "no_values"}}, {"id": "u1"}, False),
    ("list without attributeKey", {"$savedGroup": {"id": "no_key"}}, {"id": "u1"}, False),
    ("malformed condition", {"$savedGroup": {"id": "bad_condition"}}, {"id": "u1"}, False),
    ("cycle", {"$savedGroup": {"id": "self"}}, {}, False),
    ("negated cycle", {"$savedGroup": {"id": "not_self"}}, {}, True),
    ("$nor of cycle", {"$nor": [{"$savedGroup": {"id": "self"}}]}, {}, True),
    (
        "visited groups survive $elemMatch",
        {"$savedGroup": {"id": "nested"}},
        {"items": [{"marker": True}]},
        False,
    ),
    (
        "extra reference keys are ignored",
        {"$savedGroup": {"id": "beta", "future": {"key": True}}},
        {"id": "u1"},
        True,
    ),
]


@pytest.mark.parametrize(
    ("name", "condition", "attributes", "expected"),
    SAVED_GROUP_CASES,
    ids=[c[0] for c in SAVED_GROUP_CASES],
)
def test_saved_group_operator(
    name: str, condition: dict[str, Any], attributes: dict[str, Any], expected: bool
) -> None:
    assert compile_condition(condition, TYPED_GROUPS)(attributes) is expected


def test_long_acyclic_chain_of_groups_within_the_depth_limit() -> None:
    groups: dict[str, Any] = {
        str(i): {"type": "condition", "condition": {"$savedGroup": {"id": str(i + 1)}}}
        for i in range(MAX_SAVED_GROUP_DEPTH - 1)
    }
    groups[str(MAX_SAVED_GROUP_DEPTH - 1)] = {"type": "condition", "condition": {"id": "u1"}}
    matches = compile_condition({"$savedGroup": {"id": "0"}}, groups)
    assert matches({"id": "u1"}) is True
    assert matches({"id": "u2"}) is False


def test_groups_nested_too_deep_are_refused() -> None:
    groups: dict[str, Any] = {
        str(i): {"type": "condition", "condition": {"$savedGroup": {"id": str(i + 1)}}}
        for i in range(50)
    }
    with pytest.raises(ConditionError, match="nest more than"):
        compile_condition({"$savedGroup": {"id": "0"}}, groups)


def test_a_diamond_of_references_is_refused_before_it_costs_two_to_the_depth() -> None:
    """Each group refers twice to the next: evaluation would cost 2**depth; it is refused once
    the expansion passes the limit instead of stalling each update."""
    depth = 9
    groups: dict[str, Any] = {
        str(i): {
            "type": "condition",
            "condition": {"$or": [{"$savedGroup": {"id": str(i + 1)}}] * 2},
        }
        for i in range(depth)
    }
    groups[str(depth)] = {"type": "condition", "condition": {"id": "u1"}}
    with pytest.raises(ConditionError, match="expand to more than 1,000"):
        compile_condition({"$savedGroup": {"id": "0"}}, groups)
    shallow = {k: v for k, v in groups.items() if int(k) >= 4}
    assert compile_condition({"$savedGroup": {"id": "4"}}, shallow)({"id": "u1"}) is True


@pytest.mark.parametrize(
    ("reference", "fragment"),
    [
        ("beta", "needs a reference object"),
        (None, "needs a reference object"),
        ({}, "needs a reference object"),
        ({"id": 7}, "needs a reference object"),
        ({"id": "beta", "attributeKey": None}, "attributeKey must be an attribute path"),
        ({"id": "beta", "attributeKey": 7}, "attributeKey must be an attribute path"),
    ],
)
def test_malformed_saved_group_references_are_refused(reference: Any, fragment: str) -> None:
    with pytest.raises(ConditionError) as info:
        compile_condition({"$or": [{"$savedGroup": reference}]}, TYPED_GROUPS)
    assert fragment in info.value.detail
    assert info.value.field is not None and info.value.field.startswith("$or[0].$savedGroup")


@pytest.mark.parametrize("op", ["$savedGroup", "$and", "$or", "$nor"])
def test_combining_operators_inside_an_attribute_are_refused(op: str) -> None:
    with pytest.raises(ConditionError, match="stands beside attribute paths"):
        compile_condition({"id": {op: {"id": "beta"}}}, TYPED_GROUPS)


def test_referenced_roots_follow_saved_groups() -> None:
    groups: dict[str, Any] = {
        "mobile": {"type": "condition", "condition": {"context.device.type": "mobile"}},
        "ids": {"type": "list", "attributeKey": "profile.user_id", "values": ["u1"]},
    }
    assert referenced_roots({"$savedGroup": {"id": "mobile"}}, groups) == {"context"}
    assert referenced_roots({"$savedGroup": {"id": "ids"}}, groups) == {"profile"}
    override = {"$savedGroup": {"id": "ids", "attributeKey": "context.page.path"}}
    assert referenced_roots(override, groups) == {"context"}
    assert saved_group_references({"$or": [{"$savedGroup": {"id": "ids"}}]}) == [
        ("$or[0].$savedGroup", "ids")
    ]


# --- malformed conditions -------------------------------------------------------------------

ERRORS: list[tuple[Any, str, str]] = [
    # (condition, field, fragment of detail)
    ([1], "", "must be an object"),
    ({"$and": {"a": 1}}, "$and", "needs a list of conditions"),
    ({"$or": "x"}, "$or", "needs a list of conditions"),
    ({"$nor": None}, "$nor", "needs a list of conditions"),
    ({"$and": [{"a": 1}, 5]}, "$and[1]", "must be an object"),
    ({"$not": [1]}, "$not", "$not needs a condition object"),
    ({"a": {"$in": 3}}, "a.$in", 'Write {"$in": [3]}'),
    ({"a": {"$nin": "x"}}, "a.$nin", "needs a list of values"),
    ({"a": {"$ini": 1}}, "a.$ini", "needs a list of values"),
    ({"a": {"$all": {"x": 1}}}, "a.$all", "needs a list of values"),
    ({"a": {"$alli": "x"}}, "a.$alli", "needs a list of values"),
    ({"a": {"$size": "3"}}, "a.$size", "needs a number or an operator object"),
    ({"a": {"$size": {"n": 1}}}, "a.$size", "needs a number or an operator object"),
    ({"a": {"$regex": 5}}, "a.$regex", "needs a regular expression string"),
    ({"a": {"$regex": "/???***[)"}}, "a.$regex", "does not compile"),
    ({"a": {"$regexi": "("}}, "a.$regexi", "does not compile"),
    ({"a": {"$notRegex": 1}}, "a.$notRegex", "needs a regular expression string"),
    ({"a": {"$notRegexi": "(a)\\1"}}, "a.$notRegexi", "backreferences"),
    ({"a": {"$inGroup": ["g"]}}, "a.$inGroup", "id of a saved group"),
    ({"a": {"$notInGroup": 1}}, "a.$notInGroup", "id of a saved group"),
    ({"a": {"$elemMatch": 3}}, "a.$elemMatch", "$elemMatch needs"),
    ({"a": {"$type": "str"}}, "a.$type", "$type needs one of"),
    ({"a": {"$gt": [1]}}, "a.$gt", "single string, number"),
    ({"a": {"$eq": {"b": 1}}}, "a.$eq", "deep equality"),
    ({"a": {"$vgt": None}}, "a.$vgt", "version string"),
    ({"a": {"$not": {"$in": 1}}}, "a.$not.$in", "needs a list of values"),
    ({"a": {"$elemMatch": {"b": {"$in": 1}}}}, "a.$elemMatch.b.$in", "needs a list"),
    ({"a": {"$all": [{"$in": 2}]}}, "a.$all[0].$in", "needs a list"),
    ({"a": {"$size": {"$in": 2}}}, "a.$size.$in", "needs a list"),
    ({"a": {1, 2}}, "a", "must be JSON"),
    ({"a": [{"b": object()}]}, "a[0].b", "must be JSON"),
    (
        {"$and": [{"x": 1}, {"profile.sessions": {"$in": 3}}]},
        "$and[1].profile.sessions.$in",
        'got 3. Write {"$in": [3]}.',
    ),
    ({"$or": [{"$nor": [{"a": {"$regex": "["}}]}]}, "$or[0].$nor[0].a.$regex", "does not compile"),
]


@pytest.mark.parametrize(("condition", "field", "fragment"), ERRORS)
def test_malformed_conditions_raise_with_path(condition: Any, field: str, fragment: str) -> None:
    with pytest.raises(ConditionError) as info:
        compile_condition(condition)
    assert (info.value.field or "") == field
    assert fragment in info.value.detail
    assert isinstance(info.value, ConfigError)


def test_field_prefix_is_prepended() -> None:
    with pytest.raises(ConditionError) as info:
        compile_condition({"$or": [{"a": {"$in": 1}}]}, field_prefix="slots[2].rules[0].when")
    assert info.value.field == "slots[2].rules[0].when.$or[0].a.$in"
    assert info.value.to_problem()["field"] == "slots[2].rules[0].when.$or[0].a.$in"


def test_unknown_operators_compile_and_never_match() -> None:
    matches = compile_condition({"a": {"$startsWith": "x"}})
    assert matches({"a": "xyz"}) is False
    assert "$startsWith" not in OPERATORS and "$elemMatch" in OPERATORS


# --- helpers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "null"),
        (True, "true"),
        (10, "10"),
        (2.0, "2"),
        (-0.0, "0"),
        (1.5, "1.5"),
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (1e-7, "1e-7"),
        (0.000001, "0.000001"),
        (1.5e-10, "1.5e-10"),
        (math.inf, "Infinity"),
        ([1, None, [2, "a"]], "1,,2,a"),
        ({"a": 1}, "[object Object]"),
    ],
)
def test_js_string(value: Any, text: str) -> None:
    assert js_string(value) == text


@pytest.mark.parametrize(
    ("value", "number"),
    [
        (None, 0.0),
        (False, 0.0),
        (True, 1.0),
        ("", 0.0),
        ("  42 ", 42.0),
        ("1e3", 1000.0),
        (".5", 0.5),
        ("0x1f", 31.0),
        ("0b11", 3.0),
        ("-Infinity", -math.inf),
        ([7], 7.0),
        ([], 0.0),
    ],
)
def test_js_number(value: Any, number: float) -> None:
    assert js_number(value) == number


@pytest.mark.parametrize("value", ["abc", "1_000", "0x", "-0x10", "1e", {"a": 1}, [1, 2], "inf"])
def test_js_number_nan(value: Any) -> None:
    assert math.isnan(js_number(value))


def test_js_compare() -> None:
    assert js_compare("10", "9") == -1  # both strings: lexicographic
    assert js_compare("10", 9) == 1  # a number on either side: numeric
    assert js_compare(None, 0) == 0
    assert js_compare("x", 1) is None
    assert js_compare([2], 5) == -1


def test_path_getter_walks_dicts_and_lists() -> None:
    get = path_getter("a.0.b")
    assert get({"a": [{"b": 3}]}) == 3
    assert get({"a": {"0": {"b": 4}}}) == 4
    assert get({"a": "0"}) is None
    assert get([]) is None


def test_referenced_roots() -> None:
    condition = {
        "profile.sessions": {"$gt": 1},
        "$or": [{"context.device.type": "mobile"}, {"$not": {"segments": {"$in": ["x"]}}}],
        "$nor": [{"traits.plan": "pro"}],
        "$and": [{"items": {"$elemMatch": {"inner.path": 1}}}],
    }
    assert referenced_roots(condition) == {"profile", "context", "segments", "traits", "items"}
    assert referenced_roots({}) == set()
    assert referenced_roots({"$and": "broken", "$not": 3}) == set()


# --- properties ---------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(-5, 5, allow_nan=False),
    st.sampled_from(["", "a", "B", "5", "1.2.3", "x"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("abc"), inner, max_size=3)
    ),
    max_leaves=8,
)
leaf_conditions = st.one_of(
    st.builds(lambda v: {"a": v}, scalars),
    st.builds(
        lambda op, v: {"a": {op: v}},
        st.sampled_from(["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"]),
        scalars,
    ),
    st.builds(lambda vs: {"a": {"$in": vs}}, st.lists(scalars, max_size=3)),
    st.builds(lambda b: {"a": {"$exists": b}}, st.booleans()),
    st.builds(
        lambda t: {"a": {"$type": t}},
        st.sampled_from(sorted(["string", "number", "null", "array"])),
    ),
    st.builds(lambda v: {"b.c": {"$vgte": v}}, st.sampled_from(["1.0.0", "v2.1", "1.0.0-rc.1"])),
)
conditions = st.recursive(
    leaf_conditions,
    lambda inner: st.one_of(
        st.builds(lambda cs: {"$and": cs}, st.lists(inner, max_size=3)),
        st.builds(lambda cs: {"$or": cs}, st.lists(inner, max_size=3)),
        st.builds(lambda cs: {"$nor": cs}, st.lists(inner, max_size=3)),
        st.builds(lambda c: {"$not": c}, inner),
    ),
    max_leaves=6,
)
attributes = st.fixed_dictionaries(
    {}, optional={"a": json_values, "b": st.dictionaries(st.just("c"), json_values)}
)


@given(conditions, attributes)
def test_not_negates(condition: dict[str, Any], attrs: dict[str, Any]) -> None:
    assert compile_condition({"$not": condition})(attrs) is not compile_condition(condition)(attrs)


@given(conditions, attributes)
def test_single_or_and_equal_the_condition(
    condition: dict[str, Any], attrs: dict[str, Any]
) -> None:
    expected = compile_condition(condition)(attrs)
    assert compile_condition({"$or": [condition]})(attrs) is expected
    assert compile_condition({"$and": [condition]})(attrs) is expected
    assert compile_condition({"$nor": [condition]})(attrs) is not expected


@given(st.lists(conditions, max_size=3), attributes)
def test_or_and_nor_agree_with_any_all(cs: list[dict[str, Any]], attrs: dict[str, Any]) -> None:
    results = [compile_condition(c)(attrs) for c in cs]
    assert compile_condition({"$and": cs})(attrs) is all(results)
    assert compile_condition({"$or": cs})(attrs) is (not cs or any(results))
    assert compile_condition({"$nor": cs})(attrs) is not (not cs or any(results))


@given(st.lists(scalars, max_size=4), scalars)
def test_nin_is_not_in_for_scalars(values: list[Any], value: Any) -> None:
    attrs = {"a": value}
    assert compile_condition({"a": {"$nin": values}})(attrs) is not compile_condition(
        {"a": {"$in": values}}
    )(attrs)


@given(scalars, json_values)
def test_ne_is_not_eq(expected: Any, value: Any) -> None:
    attrs = {"a": value}
    assert compile_condition({"a": {"$ne": expected}})(attrs) is not compile_condition(
        {"a": {"$eq": expected}}
    )(attrs)


@given(st.integers(-100, 100) | st.floats(-100, 100, allow_nan=False), st.integers(-100, 100))
def test_numeric_comparisons_partition(value: float, bound: int) -> None:
    attrs = {"a": value}
    gt = compile_condition({"a": {"$gt": bound}})(attrs)
    lte = compile_condition({"a": {"$lte": bound}})(attrs)
    assert gt is not lte
    assert gt is (value > bound)
    # a number given as a numeric string compares the same way
    assert compile_condition({"a": {"$gt": str(bound)}})(attrs) is gt


versions = st.tuples(st.integers(0, 99), st.integers(0, 99), st.integers(0, 99))


@given(versions, versions)
def test_version_order_matches_tuple_order(a: tuple[int, ...], b: tuple[int, ...]) -> None:
    sa, sb = ".".join(map(str, a)), ".".join(map(str, b))
    assert compile_condition({"v": {"$vgt": sb}})({"v": sa}) is (a > b)
    assert compile_condition({"v": {"$veq": sb}})({"v": "v" + sa}) is (a == b)
    assert compile_condition({"v": {"$vlt": sb + "-rc.1"}})({"v": sa}) is (a < b)


@given(json_values, attributes)
def test_arbitrary_input_compiles_or_raises_condition_error(
    raw: Any, attrs: dict[str, Any]
) -> None:
    for condition in ({"a": raw}, {"a": {"$in": raw}}, {"a": {"$elemMatch": raw}}, {"$or": raw}):
        try:
            matches = compile_condition(condition)
        except ConditionError:
            continue
        assert isinstance(matches(attrs), bool)


@given(st.booleans(), json_values)
def test_exists_partitions(flag: bool, value: Any) -> None:
    attrs = {"a": value}
    assert compile_condition({"a": {"$exists": flag}})(attrs) is ((value is not None) is flag)


def test_referenced_paths_through_combinators_and_saved_groups() -> None:
    from loopwise.segments.conditions import referenced_paths

    groups = {
        "g": {"type": "condition", "condition": {"profile.traits.plan": "pro"}},
        "l": {"type": "list", "attributeKey": "profile.user_id", "values": ["u"]},
    }
    condition = {
        "$or": [{"profile.cart.items": {"$size": 1}}, {"$not": {"context.country": "DE"}}],
        "$nor": [{"$savedGroup": {"id": "g"}}, {"$savedGroup": {"id": "l"}}],
        "profile.sessions": {"$gt": 1},
    }
    assert referenced_paths(condition, groups) == {
        "profile.cart.items",
        "context.country",
        "profile.traits.plan",
        "profile.user_id",
        "profile.sessions",
    }


@pytest.mark.parametrize("value", [3, 3.0, 2.5, -1, float("nan"), "3", "x", None, True, [3]])
@pytest.mark.parametrize("op", ["$gt", "$gte", "$lt", "$lte"])
def test_numeric_comparisons_agree_with_js_compare(op: str, value: Any) -> None:
    from loopwise.segments.conditions import js_compare

    accept = {"$lt": (-1,), "$lte": (-1, 0), "$gt": (1,), "$gte": (1, 0)}[op]
    matches = compile_condition({"profile.x": {op: 3}})
    assert matches({"profile": {"x": value}}) == (js_compare(value, 3) in accept)
    deep = compile_condition({"profile.a.x": {op: 3}})
    assert deep({"profile": {"a": {"x": value}}}) == (js_compare(value, 3) in accept)
    deeper = compile_condition({"profile.a.b.x": {op: 3}})
    assert deeper({"profile": {"a": {"b": {"x": value}}}}) == (js_compare(value, 3) in accept)
    assert deeper({"profile": {"a": [{"b": {"x": value}}]}}) == (js_compare(None, 3) in accept)


@pytest.mark.parametrize(
    "condition",
    [
        {"context.country": "US"},
        {"context.country": {"$exists": False}},
        {"$or": [{"context.device.type": "mobile"}, {"profile.sessions": {"$gt": 1}}]},
        {"$and": [{"context.time.hour": {"$gte": 18}}, {"profile.purchases": {"$gte": 1}}]},
        {"$nor": [{"context.campaign.source": "mail"}, {"profile.sessions": 1}]},
        {"context": {"$exists": True}},
        {"profile.items": {"$elemMatch": {"context": "a"}}},
    ],
)
def test_a_fixed_root_folds_to_the_answer_of_the_unfolded_condition(
    condition: dict[str, Any],
) -> None:
    contexts: list[dict[str, Any]] = [
        {},
        {"country": "US", "device": {"type": "mobile"}, "time": {"hour": 20}},
        {"campaign": {"source": "mail"}, "time": {"hour": 7}},
    ]
    profiles: list[dict[str, Any]] = [
        {},
        {"sessions": 1, "purchases": 2, "items": [{"context": "a"}]},
        {"sessions": 4, "purchases": 0, "items": [{"context": "b"}]},
    ]
    unfolded = compile_condition(condition)
    for context in contexts:
        folded = compile_condition(condition, fixed_roots={"context": context})
        for profile in profiles:
            attributes = {"profile": profile, "context": context}
            assert folded(attributes) == unfolded(attributes), (context, profile)
