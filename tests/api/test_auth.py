"""Extracting the key (Basic, Bearer) and deciding 401 versus 403."""

from __future__ import annotations

import base64

import pytest

from loopwise.api.auth import authorize, key_from_headers
from loopwise.api.keys import KeyKind, KeyRing, Scope
from loopwise.errors import Forbidden, Unauthorized

RING = KeyRing.from_plain({KeyKind.WRITE: ["w"], KeyKind.SERVER: ["s"], KeyKind.ADMIN: ["a"]})


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("header", "key"),
    [
        (f"Basic {b64('lw_write_x:')}", "lw_write_x"),  # Segment: key as username
        (f"basic {b64(':lw_write_x')}", "lw_write_x"),  # key as password
        ("Bearer lw_server_y", "lw_server_y"),
        ("bearer   lw_server_y  ", "lw_server_y"),
    ],
)
def test_key_from_headers(header: str, key: str) -> None:
    assert key_from_headers({"authorization": header}) == key


def test_no_header_means_no_key() -> None:
    assert key_from_headers({}) is None


@pytest.mark.parametrize(
    "header",
    ["Basic %%%", "Digest abc", "Basic " + base64.b64encode(b"\xff\xfe:").decode()],
)
def test_unreadable_authorization_is_401(header: str) -> None:
    with pytest.raises(Unauthorized) as caught:
        key_from_headers({"authorization": header})
    assert caught.value.field == "Authorization"
    assert "Bearer" in caught.value.detail


def test_missing_and_unknown_keys_are_unauthorized() -> None:
    with pytest.raises(Unauthorized):
        authorize(RING, None, Scope.INGEST)
    with pytest.raises(Unauthorized) as caught:
        authorize(RING, "secret-guess", Scope.INGEST)
    assert "secret-guess" not in caught.value.detail


def test_known_key_without_scope_is_forbidden_and_says_which_key_to_use() -> None:
    with pytest.raises(Forbidden) as caught:
        authorize(RING, "w", Scope.DECIDE)
    assert "server key" in caught.value.detail
    assert caught.value.extra["scope"] == "decide"
    with pytest.raises(Forbidden) as caught:
        authorize(RING, "s", Scope.ADMIN)
    assert "admin key" in caught.value.detail


@pytest.mark.parametrize("scope", list(Scope))
def test_admin_key_has_every_scope(scope: Scope) -> None:
    assert authorize(RING, "a", scope) is KeyKind.ADMIN
