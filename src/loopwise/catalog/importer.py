"""Catalog files (JSON Lines, CSV) -> validated items, streamed one at a time.

Large feeds are imported without loading the whole file; every error names the line (and for CSV
the column) so the file can be fixed in an editor. JSON Lines is the lossless format; CSV is for
spreadsheets, so its cells are converted (lists split on ``|``, numbers and booleans parsed).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from loopwise.catalog.items import Item
from loopwise.catalog.validate import parse_item
from loopwise.errors import ValidationFailed

FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv"}
FORMAT_NAMES = {"jsonl": "jsonl", "ndjson": "jsonl", "json": "jsonl", "csv": "csv"}
CSV_LIST_SEPARATOR = "|"
# CSV columns that are Item fields; any other column becomes an attribute.
CSV_FIELDS = frozenset(
    {"id", "type", "title", "text", "description", "url", "image", "categories", "tags"}
    | {"price", "margin", "in_stock", "created_at", "updated_at"}
)
_LIST_COLUMNS = ("categories", "tags")
_NUMBER_COLUMNS = ("price", "margin")
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})
# Canonical numbers only, so codes like "00123" or "1e5x" stay strings.
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")


def read_items(path: Path, format: str | None = None) -> Iterator[Item]:
    """Items of a ``.jsonl``/``.ndjson``/``.json`` (one object per line) or ``.csv`` file.

    The format is checked at once; the file is read lazily, an error surfacing at its line."""
    kind = _format(path, format)
    return _read_csv(path) if kind == "csv" else _read_jsonl(path)


def count_lines(path: Path) -> int:
    """Physical lines in the file (a last line without a newline counts), for progress bars."""
    lines = 0
    last = b"\n"
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return lines + (0 if last == b"\n" else 1)


def _format(path: Path, given: str | None) -> str:
    if given is not None:
        kind = FORMAT_NAMES.get(given.strip().lower().lstrip("."))
        if kind is None:
            raise ValidationFailed(
                f"Unknown catalog format {given!r}; use jsonl or csv.", field="format"
            )
        return kind
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise ValidationFailed(
            f"Cannot tell the format of {path.name!r} from its suffix; name it .jsonl or .csv, "
            "or pass the format (jsonl or csv).",
            field="format",
        )
    return kind


def _read_jsonl(path: Path) -> Iterator[Item]:
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                raw = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise ValidationFailed(
                    f"Line {number} is not valid JSON ({exc}); put one JSON object per line.",
                    field=f"line {number}",
                    line=number,
                ) from exc
            yield _parse(raw, number, None)


def _read_csv(path: Path) -> Iterator[Item]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = [name.strip() for name in next(reader, [])]
        if "id" not in header:
            raise ValidationFailed(
                "Line 1: the CSV needs a header row with an id column, e.g. id,title,price.",
                field="line 1",
                line=1,
            )
        while True:
            start = reader.line_num + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise ValidationFailed(
                    f"Line {start} is not valid CSV ({exc}).", field=f"line {start}", line=start
                ) from exc
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) > len(header):
                raise ValidationFailed(
                    f"Line {start} has {len(cells)} cells but the header has {len(header)} "
                    "columns; quote cells that contain commas.",
                    field=f"line {start}",
                    line=start,
                )
            yield _parse(_csv_row(header, cells, start), start, header)


def _csv_row(header: list[str], cells: list[str], line: int) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    attributes: dict[str, Any] = {}
    for column, cell in zip(header, cells, strict=False):
        value = cell.strip()
        if not value or not column:
            continue
        if column in _LIST_COLUMNS:
            raw[column] = [part.strip() for part in value.split(CSV_LIST_SEPARATOR)]
        elif column in _NUMBER_COLUMNS:
            raw[column] = _csv_number(value, column, line)
        elif column == "in_stock":
            raw[column] = _csv_bool(value, line)
        elif column in CSV_FIELDS:
            raw[column] = value
        else:
            attributes[column] = _number_or_text(value)
    if attributes:
        raw["attributes"] = attributes
    return raw


def _csv_number(value: str, column: str, line: int) -> int | float:
    parsed = _number_or_text(value)
    if isinstance(parsed, str):
        raise ValidationFailed(
            f"Line {line}, column {column}: {value!r} is not a number; write it like 19.99 "
            "(no currency sign or thousands separator).",
            field=f"line {line}.{column}",
            line=line,
            column=column,
        )
    return parsed


def _csv_bool(value: str, line: int) -> bool:
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValidationFailed(
        f"Line {line}, column in_stock: {value!r} is not a yes/no value; "
        "use true/false, 1/0 or yes/no.",
        field=f"line {line}.in_stock",
        line=line,
        column="in_stock",
    )


def _number_or_text(value: str) -> int | float | str:
    if not _NUMBER.fullmatch(value):
        return value
    if any(mark in value for mark in ".eE"):
        return float(value)
    return int(value)


def _parse(raw: Any, line: int, header: list[str] | None) -> Item:
    """Validate one record, re-raising with the line (and CSV column) in detail and field."""
    try:
        return parse_item(raw, field_prefix=f"line {line}.")
    except ValidationFailed as exc:
        where: dict[str, Any] = {"line": line}
        column = (exc.field or "").removeprefix(f"line {line}.").split("[")[0].split(".")[0]
        if header is not None and column in header:
            where["column"] = column
        label = f"Line {line}" + (f", column {column}" if "column" in where else "")
        raise ValidationFailed(f"{label}: {exc.detail}", field=exc.field, **where) from exc
