"""What changed between two workspace documents, as lines a person reads.

Lists of entries that carry a ``key`` (segments, slots, experiments) or an ``id`` (variants,
rules) are matched by it, so a reordered or edited entry reads as that entry's change, not as a
shifted list. Lines look like ``+ segments[vip]``, ``- slots[banner]``,
``~ slots[hero].rules[runners].priority: 50 → 60``.
"""

from __future__ import annotations

from typing import Any

import orjson

MAX_VALUE_CHARS = 120


def _short(value: Any) -> str:
    text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


def _identity(*lists: list[Any]) -> str | None:
    """The field entries are matched by, when every entry of each list has a distinct one."""
    for name in ("key", "id"):
        if all(_distinct(entries, name) for entries in lists):
            return name
    return None


def _distinct(entries: list[Any], name: str) -> bool:
    ids = [e.get(name) if isinstance(e, dict) else None for e in entries]
    return all(isinstance(i, str) for i in ids) and len(set(ids)) == len(ids)


def _walk(path: str, before: Any, after: Any, out: list[str]) -> None:
    if before == after:
        return
    if isinstance(before, dict) and isinstance(after, dict):
        for name in [*before, *(k for k in after if k not in before)]:
            child = f"{path}.{name}" if path else str(name)
            if name not in after:
                out.append(f"- {child}: {_short(before[name])}")
            elif name not in before:
                out.append(f"+ {child}: {_short(after[name])}")
            else:
                _walk(child, before[name], after[name], out)
        return
    if isinstance(before, list) and isinstance(after, list):
        name = _identity(before, after) if before or after else None
        if name is not None:
            old = {e[name]: e for e in before}
            new = {e[name]: e for e in after}
            for ident, entry in old.items():
                if ident not in new:
                    out.append(f"- {path}[{ident}]")
                else:
                    _walk(f"{path}[{ident}]", entry, new[ident], out)
            for ident in new:
                if ident not in old:
                    out.append(f"+ {path}[{ident}]: {_short(new[ident])}")
            if [e for e in old if e in new] != [e for e in new if e in old]:
                out.append(f"~ {path} order: {', '.join(e for e in new if e in old)}")
            return
    out.append(f"~ {path}: {_short(before)} → {_short(after)}")


def diff_documents(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Lines saying how ``after`` differs from ``before`` (empty when equal)."""
    out: list[str] = []
    _walk("", before, after, out)
    return out
