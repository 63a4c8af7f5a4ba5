"""Request limits and body decoding for the ingest endpoints.

Segment's limits (32 KB per event, 500 KB per request, 2,500 events per batch) keep one request
cheap to validate and store. Gzip bodies are inflated with a hard output cap so a small compressed
body (a "gzip bomb") can never expand beyond the request limit in memory.
"""

from __future__ import annotations

import zlib
from typing import Any

import orjson

from loopwise.errors import LimitExceeded, UnsupportedMediaType, ValidationFailed

MAX_EVENT_BYTES = 32 * 1024
MAX_REQUEST_BYTES = 500 * 1024
MAX_BATCH_EVENTS = 2500

_GZIP_WBITS = 16 + zlib.MAX_WBITS  # gzip header and trailer, not raw deflate or zlib
_IDENTITY = ("", "identity")
_GZIP = ("gzip", "x-gzip")


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


def parse_json(raw: bytes) -> Any:
    """Decode a JSON body; a decoding problem is the client's to fix, so it is a 400."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValidationFailed(
            f"Body is not valid JSON: {exc}. Send a UTF-8 JSON object.", field="body"
        ) from exc
