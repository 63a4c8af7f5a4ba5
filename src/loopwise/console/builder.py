"""The segment condition builder: what marketers ask for, as rows of a form, to and from the
GrowthBook-style condition the engine evaluates. Pure: no I/O.

A row is a kind (events in a window, pages visited, country, device, ...), an operator and a
value; rows are joined by ``$and`` (all) or ``$or`` (any). A condition the builder cannot show
as rows is edited as JSON (the builder never loses a condition it does not understand).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from loopwise.errors import ValidationFailed

MAX_ROWS = 20
NUMBER_OPS = {"gte": "$gte", "gt": "$gt", "lte": "$lte", "lt": "$lt", "eq": "$eq"}
OP_LABELS = {
    "gte": "at least",
    "gt": "more than",
    "lte": "at most",
    "lt": "less than",
    "eq": "exactly",
}
WINDOWS = ("7d", "30d")


@dataclass(frozen=True, slots=True)
class Kind:
    key: str
    label: str
    attribute: str  # the attribute path, "{name}" where the row's name goes
    value: str  # "number" | "list" | "choice" | "text" | "cart"
    needs_name: bool = False
    choices: tuple[str, ...] = ()
    hint: str = ""


KINDS: tuple[Kind, ...] = (
    Kind(
        "event_count",
        "Did an event (count in a time window)",
        "profile.events_{window}.{name}",
        "number",
        True,
        hint="Event name as tracked, e.g. Pricing Viewed",
    ),
    Kind(
        "page_visits",
        "Visited a page (by name or path)",
        "profile.{pages}_{window}.{page}",
        "number",
        True,
        hint="Page name (Pricing) or path (/pricing)",
    ),
    Kind(
        "country", "Country", "profile.country", "list", hint="ISO codes, comma-separated: US, CA"
    ),
    Kind("region", "Region or state", "profile.region", "list", hint="e.g. California, CA"),
    Kind(
        "device",
        "Device type",
        "profile.device.type",
        "choice",
        choices=("desktop", "mobile", "tablet"),
    ),
    Kind(
        "traffic_source",
        "Traffic source",
        "profile.traffic_source",
        "choice",
        choices=("direct", "organic_search", "paid", "social", "email", "referral"),
    ),
    Kind(
        "lifecycle",
        "Lifecycle stage",
        "profile.lifecycle",
        "choice",
        choices=("prospect", "customer", "repeat_customer", "churned"),
    ),
    Kind("engagement", "Engagement score (0-100)", "profile.engagement", "number"),
    Kind(
        "score",
        "Predictive score (0-1)",
        "profile.scores.{name}",
        "number",
        True,
        hint="A score of the workspace, e.g. convert or churn",
    ),
    Kind(
        "affinity",
        "Interest score for a category",
        "profile.affinity.categories.{name}",
        "number",
        True,
        hint="Category, e.g. running",
    ),
    Kind("purchases", "Orders", "profile.purchases", "number"),
    Kind("sessions", "Visits (sessions)", "profile.sessions", "number"),
    Kind("cart", "Cart", "profile.cart", "cart", choices=("not_empty", "abandoned", "value_above")),
    Kind(
        "trait",
        "Declared trait",
        "profile.traits.{name}",
        "text",
        True,
        hint="Trait name, e.g. plan",
    ),
)
BY_KEY = {kind.key: kind for kind in KINDS}
PAGE_TABLES = frozenset(f"{table}_{w}" for table in ("pages", "page_paths") for w in ("7d", "30d"))


@dataclass(frozen=True, slots=True)
class Row:
    kind: str
    op: str = "gte"
    value: str = ""
    name: str = ""
    window: str = "30d"


def _number(text: str, where: str) -> float | int:
    try:
        value = float(text.strip())
    except ValueError:
        raise ValidationFailed(f"{where}: enter a number (got {text!r}).", field=where) from None
    if not math.isfinite(value):
        raise ValidationFailed(f"{where}: enter a finite number.", field=where)
    return int(value) if value.is_integer() else value


def _items(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _page_key(name: str) -> str:
    """A page name or path as the profile counts it (dots become underscores: a dot separates
    the parts of an attribute path)."""
    return name.strip().replace(".", "_")


def _page_table(name: str) -> str:
    """Paths are counted in ``page_paths_<window>``, names in ``pages_<window>``."""
    return "page_paths" if name.strip().startswith("/") else "pages"


def row_condition(row: Row, where: str) -> dict[str, Any]:
    """One row as a condition (``where`` names the row in errors)."""
    kind = BY_KEY.get(row.kind)
    if kind is None:
        raise ValidationFailed(f"{where}: unknown kind {row.kind!r}.", field=f"{where}.kind")
    if kind.needs_name and not row.name.strip():
        raise ValidationFailed(f"{where}: {kind.hint or 'give a name'}.", field=f"{where}.name")
    if "." in row.name.strip() and kind.key in ("event_count", "trait", "affinity"):
        raise ValidationFailed(
            f"{where}: a name may not contain a dot (it separates the parts of an attribute).",
            field=f"{where}.name",
        )
    window = row.window if row.window in WINDOWS else "30d"
    attribute = kind.attribute.format(
        window=window, name=row.name.strip(), page=_page_key(row.name), pages=_page_table(row.name)
    )
    if kind.value == "number":
        op = NUMBER_OPS.get(row.op)
        if op is None:
            raise ValidationFailed(f"{where}: choose a comparison.", field=f"{where}.op")
        return {attribute: {op: _number(row.value, f"{where}.value")}}
    if kind.value in ("list", "choice"):
        values = _items(row.value)
        if not values:
            raise ValidationFailed(f"{where}: give at least one value.", field=f"{where}.value")
        if kind.choices and any(v not in kind.choices for v in values):
            raise ValidationFailed(
                f"{where}: choose from {', '.join(kind.choices)}.", field=f"{where}.value"
            )
        return {attribute: values[0]} if len(values) == 1 else {attribute: {"$in": values}}
    if kind.value == "cart":
        if row.op == "not_empty":
            return {"profile.cart.items": {"$size": {"$gt": 0}}}
        if row.op == "abandoned":
            return {"profile.cart.abandoned": True}
        if row.op == "value_above":
            return {"profile.cart.value": {"$gt": _number(row.value, f"{where}.value")}}
        raise ValidationFailed(f"{where}: choose a cart state.", field=f"{where}.op")
    # text: a declared trait
    text = row.value.strip()
    if row.op == "exists":
        return {attribute: {"$exists": True}}
    if row.op in NUMBER_OPS and row.op != "eq":
        return {attribute: {NUMBER_OPS[row.op]: _number(text, f"{where}.value")}}
    if row.op == "neq":
        return {attribute: {"$ne": text}}
    return {attribute: text}


def build_condition(rows: list[Row], match: str) -> dict[str, Any]:
    """Rows joined by all (``$and``) or any (``$or``); one row stands alone."""
    if not rows:
        raise ValidationFailed("Add at least one condition row.", field="rows")
    if len(rows) > MAX_ROWS:
        raise ValidationFailed(f"At most {MAX_ROWS} rows; use the JSON view.", field="rows")
    parts = [row_condition(row, f"rows[{i}]") for i, row in enumerate(rows)]
    if len(parts) == 1:
        return parts[0]
    return {"$or" if match == "any" else "$and": parts}


def rows_from_form(form: dict[str, str]) -> list[Row]:
    """Rows ``r<i>_kind``, ``r<i>_op``, ``r<i>_value``, ``r<i>_name``, ``r<i>_window``; a row
    whose kind is empty was removed."""
    rows = []
    for i in range(MAX_ROWS + 1):
        kind = form.get(f"r{i}_kind")
        if kind is None:
            continue
        if kind:
            rows.append(
                Row(
                    kind=kind,
                    op=form.get(f"r{i}_op", "gte"),
                    value=form.get(f"r{i}_value", ""),
                    name=form.get(f"r{i}_name", ""),
                    window=form.get(f"r{i}_window", "30d"),
                )
            )
    return rows


def _scalar_text(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    return str(value)


def _row_from(attribute: str, test: Any) -> Row | None:
    """The builder row a one-attribute condition came from, if any."""
    if attribute == "profile.cart.items" and test == {"$size": {"$gt": 0}}:
        return Row("cart", "not_empty")
    if attribute == "profile.cart.abandoned" and test is True:
        return Row("cart", "abandoned")
    if attribute == "profile.cart.value" and isinstance(test, dict) and set(test) == {"$gt"}:
        return Row("cart", "value_above", str(test["$gt"]))
    parts = attribute.split(".")
    for kind in KINDS:
        pattern = kind.attribute.split(".")
        if len(pattern) != len(parts):
            continue
        name = window = ""
        ok = True
        for want, got in zip(pattern, parts, strict=True):
            if want == "events_{window}" and got in ("events_7d", "events_30d"):
                window = got.removeprefix("events_")
            elif want == "{pages}_{window}" and got in PAGE_TABLES:
                window = got.rsplit("_", 1)[1]
            elif want in ("{name}", "{page}"):
                name = got
            elif want != got:
                ok = False
        if not ok:
            continue
        if kind.value == "number" and isinstance(test, dict) and len(test) == 1:
            op = next((k for k, v in NUMBER_OPS.items() if v in test), None)
            text = _scalar_text(next(iter(test.values())))
            if op is not None and text is not None:
                return Row(kind.key, op, text, name, window or "30d")
        if kind.value in ("list", "choice"):
            if isinstance(test, str):
                return Row(kind.key, "in", test)
            if isinstance(test, dict) and set(test) == {"$in"} and isinstance(test["$in"], list):
                return Row(kind.key, "in", ", ".join(str(v) for v in test["$in"]))
        if kind.value == "text":
            if isinstance(test, str):
                return Row(kind.key, "eq", test, name)
            if test == {"$exists": True}:
                return Row(kind.key, "exists", "", name)
            if isinstance(test, dict) and set(test) == {"$ne"} and isinstance(test["$ne"], str):
                return Row(kind.key, "neq", test["$ne"], name)
    return None


def rows_from_condition(condition: dict[str, Any]) -> tuple[list[Row], str] | None:
    """The rows (and all/any) a condition reads as, or None when it is JSON-only."""
    if not condition:
        return None
    match, parts = "all", [condition]
    if len(condition) == 1 and next(iter(condition)) in ("$and", "$or"):
        key = next(iter(condition))
        match, parts = ("any" if key == "$or" else "all"), condition[key]
        if not isinstance(parts, list):
            return None
    rows = []
    for part in parts:
        if not isinstance(part, dict) or len(part) != 1:
            return None
        attribute, test = next(iter(part.items()))
        row = _row_from(attribute, test)
        if row is None:
            return None
        rows.append(row)
    return rows, match
