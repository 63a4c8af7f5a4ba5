"""Readers that turn interaction files into :class:`~loopwise.models.interactions.Interaction`
lists: MovieLens (100K ``u.data``, 1M ``ratings.dat``, ``ratings.csv`` of the later releases),
generic CSV / JSON Lines, and OTTO session JSONL. A bad row raises
:class:`~loopwise.errors.ValidationFailed` naming the file and line.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from loopwise.clock import parse_timestamp
from loopwise.errors import ValidationFailed
from loopwise.models.interactions import Interaction

MOVIELENS_FILES: tuple[str, ...] = ("u.data", "ratings.dat", "ratings.csv")
#: OTTO event types -> Loopwise event names (weights in ``DEFAULT_EVENT_WEIGHTS``).
OTTO_EVENTS: dict[str, str] = {"clicks": "view", "carts": "add_to_cart", "orders": "purchase"}


def _fail(path: Path, line: int, what: str, field: str | None = None) -> ValidationFailed:
    where = f"line {line}" + (f".{field}" if field else "")
    return ValidationFailed(f"{path}: line {line}: {what}", field=where)


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    yield number, line.rstrip("\r\n")
    except OSError as exc:
        raise ValidationFailed(f"cannot read {path}: {exc.strerror or exc}", field="path") from exc


def _epoch(value: Any, path: Path, line: int, field: str = "timestamp") -> float:
    """Epoch seconds from a number, a numeric string or an ISO 8601 string."""
    if isinstance(value, bool):
        raise _fail(path, line, f"{field} must be epoch seconds or ISO 8601", field)
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = str(value).strip() if value is not None else ""
        try:
            number = float(text)
        except ValueError:
            parsed = parse_timestamp(text)
            if parsed is None:
                raise _fail(
                    path, line, f"{field} {text!r} is neither epoch seconds nor ISO 8601", field
                ) from None
            return parsed.timestamp()
    if not math.isfinite(number):
        raise _fail(path, line, f"{field} must be finite", field)
    return number


def _weight(value: Any, path: Path, line: int) -> float:
    if value is None or value == "":
        return 1.0
    try:
        weight = float(value)
    except (TypeError, ValueError):
        raise _fail(path, line, f"weight {value!r} is not a number", "weight") from None
    if isinstance(value, bool) or not math.isfinite(weight):
        raise _fail(path, line, f"weight {value!r} is not a finite number", "weight")
    return weight


def _record(row: Mapping[str, Any], path: Path, line: int) -> Interaction:
    ids: dict[str, str] = {}
    for key in ("user", "item"):
        value = row.get(key)
        if value is None or isinstance(value, bool | dict | list) or str(value).strip() == "":
            raise _fail(path, line, f"{key} is missing", key)
        ids[key] = str(value).strip()
    if row.get("timestamp") in (None, ""):
        raise _fail(path, line, "timestamp is missing", "timestamp")
    event = row.get("event")
    return Interaction(
        ids["user"],
        ids["item"],
        _epoch(row["timestamp"], path, line),
        str(event) if event not in (None, "") else "view",
        _weight(row.get("weight"), path, line),
    )


def read_csv(path: Path | str) -> list[Interaction]:
    """CSV with a header naming ``user``, ``item``, ``timestamp`` (epoch seconds or ISO 8601)
    and optionally ``event`` (default ``view``) and ``weight`` (default 1)."""
    path = Path(path)
    out: list[Interaction] = []
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = {"user", "item", "timestamp"} - set(reader.fieldnames or ())
            if missing:
                raise _fail(path, 1, f"header lacks column(s) {', '.join(sorted(missing))}")
            for row in reader:
                out.append(_record(row, path, reader.line_num))
    except OSError as exc:
        raise ValidationFailed(f"cannot read {path}: {exc.strerror or exc}", field="path") from exc
    return out


def read_segments(path: Path | str) -> dict[str, set[str]]:
    """Segment memberships for the per-segment breakdown of ``loopwise evaluate``: a CSV with a
    header naming ``user`` and ``segment``, one row per membership (a user may appear in several
    segments). Returns user id → segment names."""
    path = Path(path)
    out: dict[str, set[str]] = {}
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = {"user", "segment"} - set(reader.fieldnames or ())
            if missing:
                raise _fail(path, 1, f"header lacks column(s) {', '.join(sorted(missing))}")
            for row in reader:
                user, segment = (str(row.get(k) or "").strip() for k in ("user", "segment"))
                if not user or not segment:
                    field = "user" if not user else "segment"
                    raise _fail(path, reader.line_num, f"{field} is missing", field)
                out.setdefault(user, set()).add(segment)
    except OSError as exc:
        raise ValidationFailed(f"cannot read {path}: {exc.strerror or exc}", field="path") from exc
    return out


def read_jsonl(path: Path | str) -> list[Interaction]:
    """JSON Lines, one object per line with keys as in :func:`read_csv`."""
    path = Path(path)
    return [_record(row, path, number) for number, row in _json_objects(path)]


def _json_objects(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; errors name the line."""
    for number, line in _lines(path):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _fail(path, number, f"invalid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise _fail(path, number, "expected a JSON object")
        yield number, row


def _movielens_file(path: Path) -> Path:
    if path.is_dir():
        for name in MOVIELENS_FILES:
            if (path / name).is_file():
                return path / name
        raise ValidationFailed(
            f"{path} holds none of {', '.join(MOVIELENS_FILES)}; point --data at a MovieLens "
            "folder or ratings file",
            field="path",
        )
    return path


def read_movielens(path: Path | str, min_rating: float | None = None) -> list[Interaction]:
    """MovieLens ratings as implicit feedback (event ``rating``, weight 1). ``path`` is a
    ratings file or a folder holding one; the format is detected from the content: tab-separated
    ``user item rating timestamp`` (``u.data``; also with RecBole's header line
    ``user_id:token\titem_id:token\trating:float\ttimestamp:float``, as in its ``.inter``
    files), ``::``-separated (``ratings.dat``) or a CSV with header
    ``userId,movieId,rating,timestamp``. ``min_rating`` drops lower ratings."""
    path = _movielens_file(Path(path))
    out: list[Interaction] = []
    separator: str | None = None
    for number, line in _lines(path):
        if separator is None:
            if "::" in line:
                separator = "::"
            elif "\t" in line:
                separator = "\t"
                if line.lower().startswith("user_id"):  # RecBole's header: user_id:token\t…
                    continue
            elif "," in line:
                separator = ","
                if line.lower().startswith("userid"):
                    continue
            else:
                raise _fail(path, number, "not a MovieLens ratings line (tab, :: or comma)")
        parts = line.split(separator)
        if len(parts) < 4:
            raise _fail(path, number, f"expected user, item, rating, timestamp; got {line!r}")
        try:
            rating = float(parts[2])
        except ValueError:
            raise _fail(path, number, f"rating {parts[2]!r} is not a number", "rating") from None
        if min_rating is not None and rating < min_rating:
            continue
        stamp = _epoch(parts[3], path, number)
        out.append(Interaction(parts[0].strip(), parts[1].strip(), stamp, "rating", 1.0))
    return out


def read_otto(path: Path | str) -> list[Interaction]:
    """OTTO sessions (``{"session": int, "events": [{"aid", "ts" (ms), "type"}]}`` per line):
    a session is a user, ``clicks``/``carts``/``orders`` become ``view``/``add_to_cart``/
    ``purchase``."""
    path = Path(path)
    out: list[Interaction] = []
    for number, row in _json_objects(path):
        if "session" not in row:
            raise _fail(path, number, "expected an object with 'session'", "session")
        events = row.get("events")
        if not isinstance(events, list):
            raise _fail(path, number, "'events' must be a list", "events")
        user = str(row["session"])
        for i, event in enumerate(events):
            field = f"events[{i}]"
            if not isinstance(event, dict) or "aid" not in event:
                raise _fail(path, number, f"{field} needs 'aid', 'ts' and 'type'", field)
            kind = OTTO_EVENTS.get(str(event.get("type")))
            if kind is None:
                raise _fail(
                    path, number, f"{field}.type must be clicks, carts or orders", f"{field}.type"
                )
            millis = _epoch(event.get("ts"), path, number, f"{field}.ts")
            out.append(Interaction(user, str(event["aid"]), millis / 1000.0, kind, 1.0))
    return out
