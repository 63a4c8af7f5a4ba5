"""Targeting conditions: MongoDB-style objects with GrowthBook's semantics, compiled to closures.

Segments and slot rules share one condition language so a condition written for GrowthBook means
the same here. ``compile_condition`` checks the structure once (malformed input raises
:class:`~loopwise.errors.ConditionError` naming the operator and its path) and returns a callable,
so evaluation never re-parses. Where GrowthBook's JavaScript SDK relies on JS coercion
(``value + ""``, ``value * 1``, ``<`` between numbers and strings) the helpers below reproduce it.
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from functools import lru_cache
from typing import Any

from loopwise.errors import ConditionError
from loopwise.segments.patterns import compile_pattern, search

Predicate = Callable[[Any], bool]
"""Tests one attribute value."""

CompiledCondition = Callable[[Mapping[str, Any]], bool]

SavedGroups = Mapping[str, Any]
"""Saved group id -> a bare list of values (GrowthBook's first format) or a typed group:
``{"type": "list", "attributeKey": path, "values": [...]}`` or
``{"type": "condition", "condition": {...}}`` (GrowthBook's ``savedGroupReferencesV2``)."""

LOGICAL_OPERATORS = frozenset({"$and", "$or", "$nor", "$not", "$savedGroup"})
_TOP_LEVEL_ONLY = frozenset({"$and", "$or", "$nor", "$savedGroup"})

#: Saved groups may refer to saved groups this many levels deep (GrowthBook also caps nesting).
MAX_SAVED_GROUP_DEPTH = 10
#: A condition may expand to this many saved group references in all (each is evaluated, so a
#: group referred to twice by a group referred to twice ... would otherwise cost 2**depth).
MAX_SAVED_GROUP_REFERENCES = 1_000
TYPE_NAMES = frozenset({"string", "number", "boolean", "array", "object", "null", "undefined"})

_INDEX = re.compile(r"0|[1-9][0-9]*")
_JS_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_JS_RADIX = re.compile(r"0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+")
_VERSION_STRIP = re.compile(r"^v|\+.*\Z")
_VERSION_SPLIT = re.compile(r"[-.]")
_DIGITS = re.compile(r"[0-9]+")


# --- JavaScript value semantics -------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def js_type(value: Any) -> str:
    """GrowthBook's ``getType``: the JS ``typeof`` name, with ``array`` and ``null`` split out."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if _is_number(value):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return "unknown"


def js_number_to_string(value: float) -> str:
    """``Number.prototype.toString``: integral floats print without ``.0``, exponents as JS does."""
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    digits_tuple = Decimal(repr(abs(value))).normalize().as_tuple()
    digits = "".join(str(d) for d in digits_tuple.digits)
    exponent = digits_tuple.exponent
    assert isinstance(exponent, int)
    k, n = len(digits), len(digits) + exponent
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    mantissa = digits[0] + ("." + digits[1:] if k > 1 else "")
    return f"{sign}{mantissa}e{'+' if n - 1 >= 0 else '-'}{abs(n - 1)}"


def js_string(value: Any) -> str:
    """JS ``value + ""``: what a string condition compares against."""
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if _is_number(value):
        return js_number_to_string(value)
    if isinstance(value, list | tuple):
        return ",".join("" if item is None else js_string(item) for item in value)
    return "[object Object]"


def js_number(value: Any) -> float:
    """JS ``value * 1`` (ToNumber): null is 0, booleans 0/1, numeric strings parse, else NaN."""
    if _is_number(value):
        return float(value)
    if value is None or value is False:
        return 0.0
    if value is True:
        return 1.0
    if isinstance(value, list | tuple):
        return js_number(js_string(value))
    if not isinstance(value, str):
        return math.nan
    text = value.strip()
    if not text:
        return 0.0
    if text in ("Infinity", "+Infinity", "-Infinity"):
        return -math.inf if text[0] == "-" else math.inf
    if _JS_RADIX.fullmatch(text):
        return float(int(text, 0))
    if _JS_DECIMAL.fullmatch(text):
        return float(text)
    return math.nan


def js_truthy(value: Any) -> bool:
    """JS ``!!value``: empty arrays and objects are truthy, NaN is not."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if _is_number(value):
        return value != 0 and not math.isnan(value)
    if isinstance(value, str):
        return value != ""
    return True


def js_strict_equal(a: Any, b: Any) -> bool:
    """JS ``===`` between JSON values: same type and value; arrays/objects never (references)."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a):
        return _is_number(b) and a == b
    if isinstance(a, str):
        return isinstance(b, str) and a == b
    return False


def json_equal(a: Any, b: Any) -> bool:
    """Deep equality of the JSON texts (key order ignored; NaN/Infinity serialise as null)."""
    if _is_number(a) and not math.isfinite(a):
        a = None
    if _is_number(b) and not math.isfinite(b):
        b = None
    if isinstance(a, Mapping):
        return (
            isinstance(b, Mapping)
            and a.keys() == b.keys()
            and all(json_equal(a[key], b[key]) for key in a)
        )
    if isinstance(a, list | tuple):
        return (
            isinstance(b, list | tuple)
            and len(a) == len(b)
            and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
        )
    return js_strict_equal(a, b)


_SCALARS = frozenset({int, float, str, bool, type(None)})


def _to_primitive(value: Any) -> Any:
    if type(value) in _SCALARS:
        return value
    return js_string(value) if isinstance(value, list | tuple | Mapping) else value


def js_compare(a: Any, b: Any) -> int | None:
    """JS relational comparison: strings compare as strings, anything else numerically (a missing
    value is 0, numeric strings parse); ``None`` when JS says neither ``<``, ``>`` nor ``==``."""
    ta, tb = type(a), type(b)
    if (ta is int or ta is float) and (tb is int or tb is float):  # the common case, fast
        if a != a or b != b:  # NaN
            return None
        return (a > b) - (a < b)
    a, b = _to_primitive(a), _to_primitive(b)
    if isinstance(a, str) and isinstance(b, str):
        return (a > b) - (a < b)
    x, y = js_number(a), js_number(b)
    if math.isnan(x) or math.isnan(y):
        return None
    return (x > y) - (x < y)


def padded_version_string(value: Any) -> str:
    """GrowthBook's ``paddedVersionString``: strip ``v`` and ``+build``, split on ``-``/``.``, add
    ``~`` to plain x.y.z (so a release sorts after its prereleases), left-pad numbers to 5."""
    if _is_number(value):
        value = js_number_to_string(value)
    if not value or not isinstance(value, str):
        value = "0"
    return _padded(value)


@lru_cache(maxsize=1024)
def _padded(value: str) -> str:
    parts = _VERSION_SPLIT.split(_VERSION_STRIP.sub("", value))
    if len(parts) == 3:
        parts.append("~")
    return "-".join(p.rjust(5) if _DIGITS.fullmatch(p) else p for p in parts)


# --- paths and membership -------------------------------------------------------------------


def _always(_obj: Any) -> bool:
    return True


def _not_ever(_obj: Any) -> bool:
    return False


NEVER: Callable[[Any], bool] = _not_ever
"""What a condition folded to "matches nobody" compiles to (see ``fixed_roots``)."""


def _negated(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    if check is _always:
        return _not_ever
    if check is _not_ever:
        return _always
    return lambda obj: not check(obj)


def _all_of(checks: list[Callable[[Any], bool]]) -> Callable[[Any], bool]:
    """Conjunction as a plain loop: generator expressions cost more than the checks themselves
    on this hot path (every segment, every profile update). Constant parts (a leaf on a namespace
    known to be empty, see ``compile_condition``) are folded away."""
    if any(check is _not_ever for check in checks):
        return _not_ever
    checks = [check for check in checks if check is not _always]
    if not checks:
        return _always
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda obj: first(obj) and second(obj)

    def check(obj: Any) -> bool:
        for part in checks:  # noqa: SIM110 - a loop is faster than all() over a generator
            if not part(obj):
                return False
        return True

    return check


def _any_of(checks: list[Callable[[Any], bool]]) -> Callable[[Any], bool]:
    if any(check is _always for check in checks):
        return _always
    checks = [check for check in checks if check is not _not_ever]
    if not checks:
        return _not_ever
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda obj: first(obj) or second(obj)

    def check(obj: Any) -> bool:
        for part in checks:  # noqa: SIM110 - a loop is faster than any() over a generator
            if part(obj):
                return True
        return False

    return check


def path_getter(path: str) -> Callable[[Any], Any]:
    """GrowthBook's ``getPath`` for a dotted path: walks objects and array indices; ``None`` when
    any step is missing."""
    steps = tuple((part, int(part) if _INDEX.fullmatch(part) else None) for part in path.split("."))

    def get(obj: Any) -> Any:
        current = obj
        for key, index in steps:
            # plain dicts first: ABC isinstance checks are slow and this runs per condition leaf
            if type(current) is dict or isinstance(current, Mapping):
                if key not in current:
                    return None
                current = current[key]
            elif index is not None and isinstance(current, list | tuple) and index < len(current):
                current = current[index]
            else:
                return None
        return current

    if len(steps) == 2:  # "profile.x", "context.y": most leaves; plain dicts skip the loop
        first, second = steps[0][0], steps[1][0]

        def get_two(obj: Any) -> Any:
            if type(obj) is dict:
                middle = obj.get(first)
                if type(middle) is dict:
                    return middle.get(second)  # missing and null both read as None
            return get(obj)

        return get_two
    keys = tuple(key for key, _ in steps)

    def get_dicts(obj: Any) -> Any:
        """Deeper paths ("profile.cart.abandoned") through plain dicts, the common case."""
        current = obj
        for key in keys:
            if type(current) is not dict:
                return get(obj)
            current = current.get(key)
            if current is None:
                return None
        return current

    return get_dicts


def _leaf(path: str, test: Predicate) -> Callable[[Any], bool]:
    """``test`` on the value at ``path``: the getter inlined for paths through plain dicts, the
    common case (every segment leaf runs per profile update), else :func:`path_getter`'s walk."""
    get = path_getter(path)
    keys = tuple(path.split("."))
    if len(keys) == 2:
        first, second = keys

        def leaf_two(obj: Any) -> bool:
            if type(obj) is dict:
                middle = obj.get(first)
                if type(middle) is dict:
                    return test(middle.get(second))
            return test(get(obj))

        return leaf_two
    if len(keys) == 3:
        one, two, three = keys

        def leaf_three(obj: Any) -> bool:
            if type(obj) is dict:
                a = obj.get(one)
                if type(a) is dict:
                    b = a.get(two)
                    if b is None:
                        return test(None)
                    if type(b) is dict:
                        return test(b.get(three))
            return test(get(obj))

        return leaf_three

    def leaf_deep(obj: Any) -> bool:
        current = obj
        for key in keys:
            if type(current) is not dict:
                return test(get(obj))
            current = current.get(key)
            if current is None:
                return test(None)
        return test(current)

    return leaf_deep


_NUMBER_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "$lt": operator.lt,
    "$lte": operator.le,
    "$gt": operator.gt,
    "$gte": operator.ge,
}

_NO_KEY = object()


def _member_key(value: Any, insensitive: bool) -> Any:
    """Hashable key under which two values are JS ``SameValueZero``-equal; containers have none."""
    if value is None:
        return ("null", None)
    if isinstance(value, bool):
        return ("boolean", value)
    if _is_number(value):
        return ("number", "NaN" if math.isnan(value) else value)
    if isinstance(value, str):
        return ("string", value.lower() if insensitive else value)
    return _NO_KEY


def _membership(values: Iterable[Any], insensitive: bool) -> Predicate:
    """GrowthBook's ``isIn``: the value is in the list, or an array value intersects it."""
    keys = frozenset(k for k in (_member_key(v, insensitive) for v in values) if k is not _NO_KEY)

    def contains(value: Any) -> bool:
        if isinstance(value, list | tuple):
            return any(_member_key(item, insensitive) in keys for item in value)
        return _member_key(value, insensitive) in keys

    return contains


# --- the compiler ---------------------------------------------------------------------------


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _show(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def _never(_value: Any) -> bool:
    return False


class _TooLarge(ConditionError):
    """Saved groups expand beyond the limits: refused, never silently read as no match."""


class _Compiler:
    def __init__(self, saved_groups: SavedGroups, fixed_roots: Mapping[str, Any]) -> None:
        self.saved_groups = saved_groups
        # namespaces whose value the predicate will always see: their leaves are constants
        self.fixed_roots = fixed_roots
        self._in_elements = 0  # inside $elemMatch keys name an element's fields, not namespaces
        # groups being expanded on this branch: a group that reaches itself matches nobody
        self.visited: frozenset[str] = frozenset()
        self._groups: dict[tuple[str, frozenset[str]], tuple[Predicate, int]] = {}
        self._reach: dict[str, frozenset[str]] = {}
        self._references = 0  # saved group references expanded so far

    def condition(self, condition: Any, path: str) -> Callable[[Any], bool]:
        if not isinstance(condition, Mapping):
            raise ConditionError(
                f"A condition must be an object mapping attribute paths or $and/$or/$nor/$not to "
                f'values, got {_show(condition)}. Write e.g. {{"profile.sessions": {{"$gt": 1}}}}.',
                field=path or None,
            )
        checks: list[Callable[[Any], bool]] = []
        for key, value in condition.items():
            if not isinstance(key, str):
                raise ConditionError(
                    f"Condition keys must be strings, got {key!r}.", field=path or None
                )
            checks.append(self._entry(key, value, _join(path, key)))
        if not checks:
            return lambda _obj: True
        if len(checks) == 1:
            return checks[0]
        return _all_of(checks)

    def _entry(self, key: str, value: Any, path: str) -> Callable[[Any], bool]:
        if key in ("$and", "$or", "$nor"):
            if not isinstance(value, list):
                raise ConditionError(
                    f"{key} needs a list of conditions, got {_show(value)}. "
                    f'Write {{"{key}": [{{...}}, {{...}}]}}.',
                    field=path,
                )
            parts = [self.condition(item, f"{path}[{i}]") for i, item in enumerate(value)]
            if key == "$and":
                return _all_of(parts)
            if not parts:  # GrowthBook: an empty $or passes, so an empty $nor fails
                return (lambda _obj: True) if key == "$or" else (lambda _obj: False)
            any_part = _any_of(parts)
            if key == "$or":
                return any_part
            return _negated(any_part)
        if key == "$not":
            if not isinstance(value, Mapping):
                raise ConditionError(
                    f"$not needs a condition object, got {_show(value)}. "
                    f'Write {{"$not": {{"profile.country": "US"}}}}.',
                    field=path,
                )
            return _negated(self.condition(value, path))
        if key == "$savedGroup":
            return self.saved_group(value, path)
        leaf = _leaf(key, self.value(value, path))
        root = key.split(".", 1)[0]
        if root in self.fixed_roots and not self._in_elements:
            return _always if leaf({root: self.fixed_roots[root]}) else _not_ever
        return leaf

    def value(self, condition: Any, path: str, insensitive: bool = False) -> Predicate:
        """A condition on one value: a literal (JS-coerced equality) or an operator object."""
        if isinstance(condition, str):
            if insensitive:
                lowered = condition.lower()
                return lambda v: js_string(v).lower() == lowered
            return lambda v: (v == condition) if isinstance(v, str) else js_string(v) == condition
        if isinstance(condition, bool):
            return lambda v: v is not None and js_truthy(v) == condition
        if _is_number(condition):
            number = condition

            def equals_number(v: Any) -> bool:
                kind = type(v)
                if kind is int or kind is float:  # the common case: js_number(v) is v
                    return bool(v == number)
                return js_number(v) == number

            return equals_number
        if condition is None:
            return lambda v: v is None
        if isinstance(condition, Mapping) and _is_operator_object(condition):
            tests = [self._operator(op, arg, _join(path, op)) for op, arg in condition.items()]
            if len(tests) == 1:
                return tests[0]
            return _all_of(tests)
        if isinstance(condition, list | Mapping):
            _check_json(condition, path)
            return lambda v: json_equal(v, condition)
        raise ConditionError(
            f"Condition values must be JSON (string, number, boolean, null, list or object), "
            f"got {type(condition).__name__}.",
            field=path,
        )

    def _operator(self, op: str, arg: Any, path: str) -> Predicate:
        builder = _OPERATORS.get(op)
        if builder is None:
            if op in _TOP_LEVEL_ONLY:  # GrowthBook would never match it here: say where it goes
                raise ConditionError(
                    f"{op} combines conditions, so it stands beside attribute paths, not inside "
                    f'one. Write {{"{op}": ...}} at the level of {{"profile.plan": "pro"}}.',
                    field=path,
                )
            return _never  # GrowthBook: an unknown operator never matches
        return builder(self, arg, path)

    # saved groups

    def saved_group(self, reference: Any, path: str) -> Callable[[Any], bool]:
        """``{"$savedGroup": {"id": ..., "attributeKey"?: ...}}``: membership of a typed saved
        group, as GrowthBook's SDKs resolve it. A reference that is not of that shape is refused;
        a group that is missing, a bare list, of an unknown type, malformed, or that reaches
        itself matches nobody (fail closed, as in GrowthBook)."""
        example = '{"$savedGroup": {"id": "beta_testers"}}'
        if not isinstance(reference, Mapping) or not isinstance(reference.get("id"), str):
            raise ConditionError(
                f"$savedGroup needs a reference object with the group's id, got "
                f"{_show(reference)}. Write {example}.",
                field=path,
            )
        override = reference.get("attributeKey", _NO_KEY)
        if override is not _NO_KEY and not isinstance(override, str):
            raise ConditionError(
                f"$savedGroup attributeKey must be an attribute path (a string), got "
                f'{_show(override)}. Write {{"$savedGroup": {{"id": "{reference["id"]}", '
                f'"attributeKey": "profile.user_id"}}}} or leave attributeKey out.',
                field=_join(path, "attributeKey"),
            )
        group_id: str = reference["id"]
        self._count_references(1, path)
        entry = self.saved_groups.get(group_id)
        if group_id in self.visited or not isinstance(entry, Mapping):
            return _never
        if entry.get("type") == "list":
            key = entry.get("attributeKey") if override is _NO_KEY else override
            values = entry.get("values")
            if not isinstance(key, str) or not isinstance(values, list | tuple):
                return _never
            get, contains = path_getter(key), _membership(values, insensitive=False)
            return lambda obj: contains(get(obj))
        if entry.get("type") == "condition" and isinstance(entry.get("condition"), Mapping):
            if len(self.visited) >= MAX_SAVED_GROUP_DEPTH:
                raise _TooLarge(
                    f"Saved groups nest more than {MAX_SAVED_GROUP_DEPTH} levels deep here "
                    f'(through "{group_id}"); flatten them.',
                    field=path,
                )
            return self._condition_group(group_id, entry["condition"], path)
        return _never  # a group type added after this version

    def _condition_group(self, group_id: str, condition: Mapping[str, Any], path: str) -> Predicate:
        # Only the visited groups this one can reach change its meaning: compiling it once per
        # such set keeps compiling a group used on many branches (a diamond) linear.
        key = (group_id, self.visited & self._reachable(group_id))
        cached = self._groups.get(key)
        if cached is not None:
            compiled, references = cached
            self._count_references(references, path)
            return compiled
        outer, before = self.visited, self._references
        self.visited = outer | {group_id}
        try:
            compiled = self.condition(condition, f"saved_groups.{group_id}.condition")
        except _TooLarge:
            raise
        except ConditionError:
            compiled = _never  # a malformed group matches nobody, as in GrowthBook
        finally:
            self.visited = outer
        self._groups[key] = (compiled, self._references - before)
        return compiled

    def _count_references(self, count: int, path: str) -> None:
        self._references += count
        if self._references > MAX_SAVED_GROUP_REFERENCES:
            raise _TooLarge(
                f"The saved groups this condition refers to expand to more than "
                f"{MAX_SAVED_GROUP_REFERENCES:,} group references, each evaluated on every "
                f"update; refer to fewer groups or flatten them.",
                field=path,
            )

    def _reachable(self, group_id: str) -> frozenset[str]:
        """Ids of the saved groups ``group_id`` refers to, directly or through others."""
        known = self._reach.get(group_id)
        if known is not None:
            return known
        seen: set[str] = set()
        stack = [group_id]
        while stack:
            current = stack.pop()
            entry = self.saved_groups.get(current)
            if isinstance(entry, Mapping) and entry.get("type") == "condition":
                for _path, ref in saved_group_references(entry.get("condition")):
                    if ref not in seen:
                        seen.add(ref)
                        stack.append(ref)
        self._reach[group_id] = frozenset(seen)
        return self._reach[group_id]

    # builders: each checks its argument once and returns the predicate

    def eq(self, arg: Any, path: str) -> Predicate:
        _require_scalar("$eq", arg, path)
        return lambda v: js_strict_equal(v, arg)

    def ne(self, arg: Any, path: str) -> Predicate:
        _require_scalar("$ne", arg, path)
        return lambda v: not js_strict_equal(v, arg)

    def relational(self, op: str, arg: Any, path: str) -> Predicate:
        _require_scalar(op, arg, path)
        accept = {"$lt": (-1,), "$lte": (-1, 0), "$gt": (1,), "$gte": (1, 0)}[op]
        if not (type(arg) is int or type(arg) is float) or arg != arg:
            return lambda v: js_compare(v, arg) in accept
        # a number against a number, the common case, without js_compare's calls; a NaN value
        # compares false either way
        compare = _NUMBER_COMPARE[op]

        def relation(v: Any) -> bool:
            kind = type(v)
            if kind is int or kind is float:
                return compare(v, arg)
            if v is None:  # a missing attribute compares as 0
                return compare(0, arg)
            return js_compare(v, arg) in accept

        return relation

    def version(self, op: str, arg: Any, path: str) -> Predicate:
        if not (isinstance(arg, str) or _is_number(arg)):
            raise ConditionError(
                f'{op} needs a version string such as "1.2.3", got {_show(arg)}. '
                f'Write {{"{op}": "1.2.3"}}.',
                field=path,
            )
        expected = padded_version_string(arg)
        compare: Callable[[str, str], bool] = {
            "$veq": str.__eq__,
            "$vne": str.__ne__,
            "$vgt": str.__gt__,
            "$vgte": str.__ge__,
            "$vlt": str.__lt__,
            "$vlte": str.__le__,
        }[op]
        return lambda v: compare(padded_version_string(v), expected)

    def in_list(self, op: str, arg: Any, path: str) -> Predicate:
        _require_list(op, arg, path)
        contains = _membership(arg, insensitive=op in ("$ini", "$nini"))
        if op in ("$in", "$ini"):
            return contains
        return lambda v: not contains(v)

    def in_group(self, op: str, arg: Any, path: str) -> Predicate:
        if not isinstance(arg, str):
            raise ConditionError(
                f"{op} needs the id of a saved group (a string), got {_show(arg)}. "
                f'Write {{"{op}": "beta_testers"}}.',
                field=path,
            )
        values = _group_values(self.saved_groups.get(arg, ()))
        if values is None:
            return _never  # an entry this operator cannot read fails closed, as in GrowthBook
        contains = _membership(values, insensitive=False)
        if op == "$inGroup":
            return contains
        return lambda v: not contains(v)

    def all_of(self, op: str, arg: Any, path: str) -> Predicate:
        _require_list(op, arg, path)
        tests = [
            self.value(item, f"{path}[{i}]", insensitive=op == "$alli")
            for i, item in enumerate(arg)
        ]
        return lambda v: isinstance(v, list | tuple) and all(any(t(x) for x in v) for t in tests)

    def elem_match(self, arg: Any, path: str) -> Predicate:
        if not isinstance(arg, Mapping):
            raise ConditionError(
                f"$elemMatch needs an operator object or a condition on the elements, got "
                f'{_show(arg)}. Write {{"$elemMatch": {{"$gt": 10}}}} or '
                f'{{"$elemMatch": {{"name": "x"}}}}.',
                field=path,
            )
        self._in_elements += 1
        try:
            check = self.value(arg, path) if _is_operator_object(arg) else self.condition(arg, path)
        finally:
            self._in_elements -= 1
        return lambda v: isinstance(v, list | tuple) and any(x is not None and check(x) for x in v)

    def size(self, arg: Any, path: str) -> Predicate:
        if not (_is_number(arg) or (isinstance(arg, Mapping) and _is_operator_object(arg))):
            raise ConditionError(
                f"$size needs a number or an operator object, got {_show(arg)}. "
                f'Write {{"$size": 3}} or {{"$size": {{"$gt": 0}}}}.',
                field=path,
            )
        test = self.value(arg, path)
        return lambda v: isinstance(v, list | tuple) and test(len(v))

    def exists(self, arg: Any, path: str) -> Predicate:
        wanted = js_truthy(arg)
        return lambda v: (v is not None) is wanted

    def type_is(self, arg: Any, path: str) -> Predicate:
        if arg not in TYPE_NAMES:
            names = ", ".join(sorted(TYPE_NAMES))
            raise ConditionError(
                f'$type needs one of {names}; got {_show(arg)}. Write {{"$type": "string"}}.',
                field=path,
            )
        return lambda v: js_type(v) == arg

    def regex(self, op: str, arg: Any, path: str) -> Predicate:
        if not isinstance(arg, str):
            raise ConditionError(
                f"{op} needs a regular expression string, got {_show(arg)}. "
                f'Write {{"{op}": "^/products/"}}.',
                field=path,
            )
        pattern = compile_pattern(arg, insensitive=op.endswith("i"), op=op, path=path)
        if op.startswith("$not"):  # GrowthBook: the negation of the same test
            return lambda v: v is None or not search(pattern, js_string(v))
        return lambda v: v is not None and search(pattern, js_string(v))

    def not_(self, arg: Any, path: str) -> Predicate:
        test = self.value(arg, path)
        return lambda v: not test(v)


def _partial(name: str, op: str) -> Callable[[_Compiler, Any, str], Predicate]:
    def build(compiler: _Compiler, arg: Any, path: str) -> Predicate:
        method: Callable[[str, Any, str], Predicate] = getattr(compiler, name)
        return method(op, arg, path)

    return build


_OPERATORS: dict[str, Callable[[_Compiler, Any, str], Predicate]] = {
    "$eq": _Compiler.eq,
    "$ne": _Compiler.ne,
    "$exists": _Compiler.exists,
    "$type": _Compiler.type_is,
    "$elemMatch": _Compiler.elem_match,
    "$size": _Compiler.size,
    "$not": _Compiler.not_,
    **{op: _partial("relational", op) for op in ("$lt", "$lte", "$gt", "$gte")},
    **{op: _partial("version", op) for op in ("$veq", "$vne", "$vgt", "$vgte", "$vlt", "$vlte")},
    **{op: _partial("in_list", op) for op in ("$in", "$nin", "$ini", "$nini")},
    **{op: _partial("in_group", op) for op in ("$inGroup", "$notInGroup")},
    **{op: _partial("all_of", op) for op in ("$all", "$alli")},
    **{op: _partial("regex", op) for op in ("$regex", "$regexi", "$notRegex", "$notRegexi")},
}
OPERATORS = frozenset(_OPERATORS) | LOGICAL_OPERATORS
"""Every operator the compiler knows; any other ``$name`` in an operator object never matches."""


def _group_values(entry: Any) -> Iterable[Any] | None:
    """The values ``$inGroup``/``$notInGroup`` test against: a bare list, or a typed list group's
    values (the operator's own attribute is used, not the group's); ``None`` for anything else,
    so neither operator passes everyone through an exclusion rule."""
    if isinstance(entry, list | tuple):
        return entry
    if isinstance(entry, Mapping) and entry.get("type") == "list":
        values = entry.get("values")
        return values if isinstance(values, list | tuple) else None
    return None


def _is_operator_object(obj: Mapping[Any, Any]) -> bool:
    return bool(obj) and all(isinstance(k, str) and k.startswith("$") for k in obj)


def _require_list(op: str, arg: Any, path: str) -> None:
    if not isinstance(arg, list):
        raise ConditionError(
            f"{op} needs a list of values, got {_show(arg)}. "
            f"Write {{{_show(op)}: [{_show(arg)}]}}.",
            field=path,
        )


def _require_scalar(op: str, arg: Any, path: str) -> None:
    if isinstance(arg, list | Mapping):
        raise ConditionError(
            f"{op} compares with a single string, number, boolean or null, got {_show(arg)}. "
            f"For deep equality write the value itself without an operator; for a list use $in.",
            field=path,
        )


def _check_json(value: Any, path: str) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ConditionError(f"Object keys must be strings, got {key!r}.", field=path)
            _check_json(item, _join(path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_json(item, f"{path}[{i}]")
    elif not (value is None or isinstance(value, str | bool | int | float)):
        raise ConditionError(
            f"Condition values must be JSON, got {type(value).__name__}.", field=path
        )


def compile_condition(
    condition: Any,
    saved_groups: SavedGroups | None = None,
    *,
    field_prefix: str = "",
    empty_roots: frozenset[str] = frozenset(),
    fixed_roots: Mapping[str, Any] | None = None,
) -> CompiledCondition:
    """Check ``condition`` once and return a fast predicate over an attributes dict.

    ``saved_groups`` (group id -> values) is read now: recompile when the groups change.
    ``field_prefix`` is prepended to the path of a :class:`ConditionError` (e.g.
    ``slots[2].rules[0].when``) so the caller's document path is reported. ``empty_roots``
    names namespaces the predicate will only ever see empty (``context`` when segment
    membership is evaluated outside a request), ``fixed_roots`` namespaces it will only ever
    see with the value given (``context`` of a campaign, shared by its whole audience): their
    leaves are folded to constants. The predicate is still given the whole attributes object.
    """
    fixed: dict[str, Any] = {root: {} for root in empty_roots}
    fixed.update(fixed_roots or {})
    compiler = _Compiler(saved_groups or {}, fixed)
    return compiler.condition(condition, field_prefix)


def saved_group_references(condition: Any, path: str = "") -> list[tuple[str, str]]:
    """``(path, group id)`` of every ``$savedGroup`` reference anywhere in ``condition`` (also
    inside ``$elemMatch`` and the like), sorted by path."""
    found: list[tuple[str, str]] = []
    stack: list[tuple[Any, str]] = [(condition, path)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, Mapping):
            for key, value in node.items():
                here = _join(where, str(key))
                if key == "$savedGroup" and isinstance(value, Mapping):
                    if isinstance(value.get("id"), str):
                        found.append((here, value["id"]))
                else:
                    stack.append((value, here))
        elif isinstance(node, list):
            stack.extend((item, f"{where}[{i}]") for i, item in enumerate(node))
    return sorted(found)


def referenced_roots(condition: Any, saved_groups: SavedGroups | None = None) -> set[str]:
    """Top-level namespaces (first path segment, e.g. ``profile``, ``context``) a condition reads,
    through ``$and``/``$or``/``$nor``/``$not`` and the saved groups it references; tells whether a
    segment depends on the request."""
    return {path.split(".", 1)[0] for path in referenced_paths(condition, saved_groups)}


def referenced_paths(condition: Any, saved_groups: SavedGroups | None = None) -> set[str]:
    """Every attribute path (``profile.cart.items``) a condition reads, through
    ``$and``/``$or``/``$nor``/``$not`` and the saved groups it references."""
    groups = saved_groups or {}
    roots: set[str] = set()
    expanded: set[str] = set()

    def walk(node: Any) -> None:
        if not isinstance(node, Mapping):
            return
        for key, value in node.items():
            if key in ("$and", "$or", "$nor"):
                if isinstance(value, list):
                    for item in value:
                        walk(item)
            elif key == "$not":
                walk(value)
            elif key == "$savedGroup":
                group(value)
            elif isinstance(key, str):
                roots.add(key)

    def group(reference: Any) -> None:
        if not isinstance(reference, Mapping) or not isinstance(reference.get("id"), str):
            return
        entry = groups.get(reference["id"])
        if not isinstance(entry, Mapping):
            return
        if entry.get("type") == "list":
            key = reference.get("attributeKey", entry.get("attributeKey"))
            if isinstance(key, str):
                roots.add(key)
        elif entry.get("type") == "condition" and reference["id"] not in expanded:
            expanded.add(reference["id"])
            walk(entry.get("condition"))

    walk(condition)
    return roots
