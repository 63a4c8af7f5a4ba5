from __future__ import annotations

import gzip
import tracemalloc
import zlib

import orjson
import pytest

from loopwise.errors import LimitExceeded, UnsupportedMediaType, ValidationFailed
from loopwise.events.limits import (
    MAX_BATCH_EVENTS,
    MAX_EVENT_BYTES,
    MAX_JSON_DEPTH,
    MAX_REQUEST_BYTES,
    depth_error,
    format_loc,
    parse_json,
    read_body,
    too_deep,
)

BODY = orjson.dumps({"batch": [{"type": "track", "event": "Signed Up", "userId": "u1"}]})


def test_limits_match_segment() -> None:
    assert (MAX_EVENT_BYTES, MAX_REQUEST_BYTES, MAX_BATCH_EVENTS) == (32768, 512000, 2500)


@pytest.mark.parametrize("encoding", [None, "", "identity", "IDENTITY"])
def test_plain_body_passes_through(encoding: str | None) -> None:
    assert read_body(BODY, encoding) == BODY


@pytest.mark.parametrize("encoding", ["gzip", "GZip ", "x-gzip"])
def test_gzip_roundtrip(encoding: str) -> None:
    assert parse_json(read_body(gzip.compress(BODY), encoding)) == orjson.loads(BODY)


def test_multi_member_gzip_is_concatenated() -> None:
    assert read_body(gzip.compress(b'{"a":') + gzip.compress(b"1}"), "gzip") == b'{"a":1}'


def test_plain_body_at_the_limit_ok_one_byte_more_rejected() -> None:
    assert len(read_body(b" " * MAX_REQUEST_BYTES, None)) == MAX_REQUEST_BYTES
    with pytest.raises(LimitExceeded) as info:
        read_body(b" " * (MAX_REQUEST_BYTES + 1), None)
    assert info.value.field == "body"
    assert "500 KB" in info.value.detail and "smaller batches" in info.value.detail


def test_decompressed_size_at_the_limit_ok_one_byte_more_rejected() -> None:
    assert len(read_body(gzip.compress(b"x" * MAX_REQUEST_BYTES), "gzip")) == MAX_REQUEST_BYTES
    with pytest.raises(LimitExceeded) as info:
        read_body(gzip.compress(b"x" * (MAX_REQUEST_BYTES + 1)), "gzip")
    assert info.value.field == "body"
    assert "500 KB" in info.value.detail


def _bomb(total: int) -> bytes:
    """``total`` zero bytes gzip-compressed, built in 1 MB chunks (the test never holds them)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = bytes(1 << 20)
    parts = [compressor.compress(chunk) for _ in range(total // len(chunk))]
    parts.append(compressor.flush())
    return b"".join(parts)


def test_gzip_bomb_rejected_without_inflating_it() -> None:
    bomb = _bomb(50 * 1024 * 1024)
    assert len(bomb) < MAX_REQUEST_BYTES  # small on the wire: only the inflated size is too big
    tracemalloc.start()
    try:
        with pytest.raises(LimitExceeded) as info:
            read_body(bomb, "gzip")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.field == "body"
    assert peak < 4 * MAX_REQUEST_BYTES  # bounded by the limit, nowhere near 50 MB


def test_corrupt_gzip_is_a_validation_error() -> None:
    with pytest.raises(ValidationFailed) as info:
        read_body(b"not gzip at all", "gzip")
    assert info.value.field == "body"
    assert "gzip" in info.value.detail


def test_truncated_gzip_is_a_validation_error() -> None:
    with pytest.raises(ValidationFailed, match="truncated") as info:
        read_body(gzip.compress(BODY)[:-12], "gzip")
    assert info.value.field == "body"


def test_trailing_garbage_after_gzip_is_rejected() -> None:
    with pytest.raises(ValidationFailed):
        read_body(gzip.compress(BODY) + b"garbage", "gzip")


def test_empty_gzip_body_is_rejected() -> None:
    with pytest.raises(ValidationFailed):
        read_body(b"", "gzip")


@pytest.mark.parametrize("encoding", ["br", "deflate", "zstd"])
def test_other_encodings_unsupported(encoding: str) -> None:
    with pytest.raises(UnsupportedMediaType) as info:
        read_body(BODY, encoding)
    assert info.value.field == "Content-Encoding"
    assert info.value.status == 415
    assert "gzip" in info.value.detail


def test_parse_json() -> None:
    assert parse_json(b'{"a": [1, 2.5, null]}') == {"a": [1, 2.5, None]}


@pytest.mark.parametrize("raw", [b"{", b"", b"{'a': 1}", b"\xff\xfe"])
def test_parse_json_errors(raw: bytes) -> None:
    with pytest.raises(ValidationFailed) as info:
        parse_json(raw)
    assert info.value.field == "body"
    assert info.value.detail.startswith("Body is not valid JSON: ")


def nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def test_too_deep_finds_the_first_container_past_the_limit() -> None:
    assert too_deep(nested(MAX_JSON_DEPTH)) is None
    assert too_deep({"x": [nested(MAX_JSON_DEPTH - 2)]}) is None
    assert too_deep({"x": [nested(MAX_JSON_DEPTH - 1)]}) == ("x", 0, *["a"] * (MAX_JSON_DEPTH - 2))
    assert too_deep(orjson.loads(b"[" * 1000 + b"]" * 1000)) is not None  # no recursion


def test_depth_error_names_a_readable_field() -> None:
    error = depth_error(("properties", *["a"] * 100), "batch[3].")
    assert error.field == "batch[3].properties.a.a.a.a.a.a.a"
    assert str(MAX_JSON_DEPTH) in error.detail
    assert format_loc(()) == "body" and format_loc(("items", 0, "x")) == "items[0].x"
