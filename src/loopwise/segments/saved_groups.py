"""Saved groups as the workspace declares them, checked once when it loads.

A saved group is either a bare list of values (read by ``$inGroup``/``$notInGroup`` on the
attribute they sit on) or, as in GrowthBook's typed saved groups, an object:

- ``{"type": "list", "attributeKey": "profile.user_id", "values": [...]}``: the people whose
  attribute is one of the values (``$savedGroup``; ``$inGroup`` reads its values too);
- ``{"type": "condition", "condition": {...}}``: the people the condition matches.

At evaluation an entry the operators cannot read matches nobody, as in GrowthBook's SDKs; here,
where a person writes the groups, such an entry is refused with the path and what to write.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from loopwise.errors import ConfigError
from loopwise.segments.conditions import compile_condition, saved_group_references
from loopwise.segments.registry import check_operators

GROUP_TYPES = ("list", "condition")
_KEYS = {"list": {"type", "attributeKey", "values"}, "condition": {"type", "condition"}}
_EXAMPLES = (
    '["u1", "u2"], {"type": "list", "attributeKey": "profile.user_id", "values": ["u1"]} or '
    '{"type": "condition", "condition": {"profile.traits.plan": "pro"}}'
)


def check_saved_groups(groups: Mapping[str, Any], path: str = "saved_groups") -> None:
    """Raise :class:`ConfigError` naming ``saved_groups.<id>...`` for the first entry that is not
    a list of values or a well-formed typed group, for a reference to a group that is missing or
    is a bare list, and for groups that refer to themselves."""
    for group_id, entry in groups.items():
        where = f"{path}.{group_id}"
        if not group_id:
            raise ConfigError("A saved group needs a non-empty id.", field=path)
        if isinstance(entry, list):
            continue
        if not isinstance(entry, Mapping):
            raise ConfigError(
                f"Saved group {group_id!r} must be a list of values or a typed group, e.g. "
                f"{_EXAMPLES}.",
                field=where,
            )
        kind = entry.get("type")
        if kind not in GROUP_TYPES:
            raise ConfigError(
                f"Saved group {group_id!r} has type {kind!r}; use one of {', '.join(GROUP_TYPES)}"
                f" (or a plain list of values), e.g. {_EXAMPLES}.",
                field=f"{where}.type",
            )
        extra = sorted(set(entry) - _KEYS[kind])
        if extra:
            raise ConfigError(
                f"Saved group {group_id!r} of type {kind} does not take {', '.join(extra)}; it "
                f"takes {', '.join(sorted(_KEYS[kind]))}.",
                field=f"{where}.{extra[0]}",
            )
        if kind == "list":
            _check_list_group(group_id, entry, where)
        elif not isinstance(entry.get("condition"), Mapping):
            raise ConfigError(
                f"Saved group {group_id!r} of type condition needs condition: an object, e.g. "
                f'"condition": {{"profile.traits.plan": "pro"}}.',
                field=f"{where}.condition",
            )
    _check_cycles(groups, path)
    for group_id, entry in groups.items():
        if isinstance(entry, Mapping) and entry.get("type") == "condition":
            field = f"{path}.{group_id}.condition"
            check_operators(entry["condition"], field)
            owner = f"Saved group {group_id!r}"
            check_group_references(groups, entry["condition"], field, owner=owner)
            compile_condition(entry["condition"], groups, field_prefix=field)


def check_group_references(
    groups: Mapping[str, Any], condition: Any, path: str, *, owner: str
) -> None:
    """Every ``$savedGroup`` in ``condition`` names a typed group of ``groups``; ``owner`` says
    whose condition it is (``Segment "x"``) in the message."""
    for where, group_id in saved_group_references(condition, path):
        entry = groups.get(group_id)
        if entry is None:
            known = ", ".join(sorted(groups)) or "none yet"
            raise ConfigError(
                f"{owner} refers to saved group {group_id!r}, which is not defined; it would "
                f"match nobody. Define it under saved_groups (defined: {known}).",
                field=where,
            )
        if not isinstance(entry, Mapping):
            raise ConfigError(
                f"{owner} uses $savedGroup on {group_id!r}, a plain list of values, which "
                f"$savedGroup cannot read (it would match nobody). Give the group a type and an "
                f'attribute ({{"type": "list", "attributeKey": "profile.user_id", "values": '
                f"[...]}}) or test it with $inGroup on an attribute.",
                field=where,
            )


def _check_list_group(group_id: str, entry: Mapping[str, Any], where: str) -> None:
    key = entry.get("attributeKey")
    if not isinstance(key, str) or not key:
        raise ConfigError(
            f"Saved group {group_id!r} of type list needs attributeKey, the attribute path its "
            f'values are matched against, e.g. "attributeKey": "profile.user_id".',
            field=f"{where}.attributeKey",
        )
    if not isinstance(entry.get("values"), list):
        raise ConfigError(
            f'Saved group {group_id!r} of type list needs values: a list, e.g. "values": ["u1"].',
            field=f"{where}.values",
        )


def _check_cycles(groups: Mapping[str, Any], path: str) -> None:
    """A group that reaches itself through references matches nobody; refuse it (GrowthBook's
    app refuses cyclic groups too)."""
    edges = {
        group_id: [ref for _where, ref in saved_group_references(entry.get("condition"))]
        for group_id, entry in groups.items()
        if isinstance(entry, Mapping) and entry.get("type") == "condition"
    }
    done: set[str] = set()
    for start in sorted(edges):
        cycle = _find_cycle(start, edges, done)
        if cycle:
            chain = " -> ".join(cycle)
            raise ConfigError(
                f"Saved group {cycle[0]!r} refers to itself ({chain}), so it would match nobody. "
                f"Remove one of these references.",
                field=f"{path}.{cycle[0]}.condition",
            )


def _find_cycle(start: str, edges: Mapping[str, Iterable[str]], done: set[str]) -> list[str]:
    """Depth-first from ``start`` without recursion; the first cycle met, as a path."""
    trail: list[str] = []
    on_trail: set[str] = set()
    stack: list[tuple[str, bool]] = [(start, True)]
    while stack:
        node, entering = stack.pop()
        if not entering:
            trail.pop()
            on_trail.discard(node)
            done.add(node)
            continue
        if node in on_trail:
            return [*trail[trail.index(node) :], node]
        if node in done:
            continue
        trail.append(node)
        on_trail.add(node)
        stack.append((node, False))
        stack.extend((child, True) for child in edges.get(node, ()))
    return []
