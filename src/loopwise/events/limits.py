"""Request limits and body decoding for the ingest endpoints.

Segment's limits (32 KB per event, 500 KB per request, 2,500 events per batch) keep one request
cheap to validate and store. Gzip bodies are inflated with a hard output cap so a small compressed
body (a "gzip bomb") can never expand beyond the request limit in memory.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from typing import Any

import orjson

from loopwise.errors import LimitExceeded, UnsupportedMediaType, ValidationFailed

MAX_EVENT_BYTES = 32 * 1024
MAX_REQUEST_BYTES = 500 * 1024
MAX_BATCH_EVENTS = 2500
# userId, anonymousId, previousId, groupId and messageId; /v1/decide takes ids up to the same
# length, so every id that can be ingested can also be decided for.
MAX_ID_CHARS = 200
# Nesting depth of one stored JSON value (an event, an item, the workspace). Real documents stay
# far below it; deeper ones would exhaust the recursion of the JSON encoder (255 levels) or of the
# condition compiler after validation, so they are refused up front.
MAX_JSON_DEPTH = 64

_GZIP_WBITS = 16 + zlib.MAX_WBITS  # gzip header and trailer, not raw deflate or zlib
_IDENTITY = ("", "identity")
_GZIP = ("gzip", "x-gzip")


# Media types ingest reads as JSON: JSON itself, text/plain (what navigator.sendBeacon and
# Segment's analytics-next send, to skip the CORS preflight), and the form type that
# @rudderstack/rudder-sdk-node puts on its gzipped JSON bodies.
INGEST_MEDIA_TYPES = ("application/json", "text/plain", "application/x-www-form-urlencoded")


def check_ingest_content_type(content_type: str | None) -> None:
    """Refuse a body ingest cannot read as JSON (415 naming Content-Type)."""
    if not content_type:
        return
    media = content_type.partition(";")[0].strip().lower()
    if media in INGEST_MEDIA_TYPES or media.endswith("+json"):
        return
    raise UnsupportedMediaType(
        f"Content-Type {media!r} is not supported; send JSON with Content-Type: application/json.",
        field="Content-Type",
    )


def _too_large(size_hint: str) -> LimitExceeded:
    return LimitExceeded(
        f"The request body is {size_hint}; the limit is 500 KB "
        f"({MAX_REQUEST_BYTES} bytes) per request. Split the events into smaller batches.",
        field="body",
        limit=MAX_REQUEST_BYTES,
    )


def read_body(raw: bytes, content_encoding: str | None) -> bytes:
    """The request body as plain bytes: inflated when gzip, never larger than MAX_REQUEST_BYTES."""
    encoding = (content_encoding or "").strip().lower()
    if encoding not in _IDENTITY and encoding not in _GZIP:
        raise UnsupportedMediaType(
            f"Content-Encoding {content_encoding!r} is not supported; send the body uncompressed "
            "or with Content-Encoding: gzip.",
            field="Content-Encoding",
        )
    if len(raw) > MAX_REQUEST_BYTES:
        raise _too_large(f"{len(raw)} bytes")
    if encoding in _IDENTITY:
        return raw
    return _gunzip_bounded(raw, MAX_REQUEST_BYTES)


def _gunzip_bounded(data: bytes, limit: int) -> bytes:
    """Inflate (possibly multi-member) gzip, stopping as soon as the output would pass ``limit``."""
    if not data:
        raise _corrupt("the body is empty")
    out = bytearray()
    pending = data
    while pending:
        inflater = zlib.decompressobj(_GZIP_WBITS)
        chunk = pending
        try:
            while True:
                produced = inflater.decompress(chunk, limit + 1 - len(out))
                out += produced
                if len(out) > limit:
                    raise _too_large(f"larger than {limit} bytes once decompressed")
                chunk = inflater.unconsumed_tail
                if inflater.eof or not (chunk or produced):
                    break  # done, or no input left and no progress: truncated
        except zlib.error as exc:
            raise _corrupt(str(exc)) from exc
        if not inflater.eof:
            raise _corrupt("the gzip stream is truncated")
        pending = inflater.unused_data
        if pending and not pending.strip(b"\x00"):
            break  # zero padding after the last member, as gzip(1) tolerates
    return bytes(out)


def _corrupt(reason: str) -> ValidationFailed:
    return ValidationFailed(
        f"The body is not valid gzip ({reason}). Compress the whole JSON body with gzip, "
        "or send it uncompressed without a Content-Encoding header.",
        field="body",
    )


def parse_json(raw: bytes | str, *, unique_keys: bool = False, field: str = "body") -> Any:
    """Decode a JSON body; a decoding problem is the client's to fix, so it is a 400.

    ``unique_keys`` (admin and workspace bodies) refuses an object that names a key twice: JSON
    parsers silently keep one of the two values, so ``{"key": "a", "key": "b"}`` would store
    something its author did not see."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValidationFailed(
            f"Body is not valid JSON: {exc}. Send a UTF-8 JSON object.", field=field
        ) from exc
    if unique_keys:
        check_unique_keys(raw, field)
    return value


class _Pairs(dict[str, Any]):
    """An object as decoded, remembering the first key it holds twice."""

    duplicate: str | None = None


def _pairs(pairs: list[tuple[str, Any]]) -> _Pairs:
    decoded = _Pairs(pairs)
    if len(decoded) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                decoded.duplicate = key
                break
            seen.add(key)
    return decoded


def check_unique_keys(raw: bytes | str, field: str = "body") -> None:
    """``ValidationFailed`` naming the path of the first key some object of valid JSON ``raw``
    holds twice (``body.segments[2].condition.key``)."""
    if isinstance(raw, bytes | bytearray):
        raw = raw.decode("utf-8", "replace")
    if not _maybe_duplicated(raw):
        return
    stack: list[tuple[Any, str]] = [(json.loads(raw, object_pairs_hook=_pairs), field)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, _Pairs):
            if node.duplicate is not None:
                raise ValidationFailed(
                    f'The key "{node.duplicate}" appears twice in one object at {where}; JSON '
                    "keeps only one of the values. Send each key once.",
                    field=f"{where}.{node.duplicate}",
                )
            stack.extend((v, f"{where}.{k}") for k, v in reversed(node.items()))
        elif isinstance(node, list):
            stack.extend((v, f"{where}[{i}]") for i, v in reversed(list(enumerate(node))))


def _maybe_duplicated(raw: str) -> bool:
    """False when no object can hold a key twice (a cheap pre-check: no ':' more than once)."""
    return raw.count(":") > 1


def too_deep(value: Any, limit: int = MAX_JSON_DEPTH) -> tuple[str | int, ...] | None:
    """The location of the first object or list nested more than ``limit`` levels deep in
    ``value`` (the value itself is level 1), or None. Iterative, so any depth is safe to check."""
    if not isinstance(value, dict | list | tuple) or _within(value, limit):
        return None  # the common case, checked without building locations
    stack: list[tuple[Any, int, tuple[str | int, ...]]] = [(value, 1, ())]
    while stack:
        node, depth, loc = stack.pop()
        if isinstance(node, dict):
            children: Sequence[tuple[str | int, Any]] = [(str(k), v) for k, v in node.items()]
        elif isinstance(node, list | tuple):
            children = list(enumerate(node))
        else:
            continue
        if depth > limit:
            return loc
        stack.extend(
            (child, depth + 1, (*loc, key))
            for key, child in reversed(children)
            if isinstance(child, dict | list | tuple)
        )
    return None


def _within(node: dict[Any, Any] | list[Any] | tuple[Any, ...], levels: int) -> bool:
    """Whether ``node`` and what it holds nest at most ``levels`` deep (recursion is bounded by
    ``levels``: a deeper value stops the walk)."""
    if levels <= 0:
        return False
    for child in node.values() if isinstance(node, dict) else node:
        if isinstance(child, dict | list | tuple) and not _within(child, levels - 1):
            return False
    return True


def format_loc(loc: Sequence[str | int], prefix: str = "", *, max_parts: int = 8) -> str:
    """``("properties", "a", 0)`` -> ``"properties.a[0]"`` after ``prefix`` (e.g. ``batch[3].``),
    cut after ``max_parts`` parts so a path into a very deep value stays readable."""
    path = prefix.rstrip(".")
    for part in list(loc)[:max_parts]:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path or "body"


def depth_error(loc: Sequence[str | int], prefix: str = "") -> LimitExceeded:
    field = format_loc(loc, prefix)
    return LimitExceeded(
        f"{field} is nested more than {MAX_JSON_DEPTH} levels deep; flatten it "
        f"(at most {MAX_JSON_DEPTH} levels of objects and lists).",
        field=field,
        limit=MAX_JSON_DEPTH,
    )
