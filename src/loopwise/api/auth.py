"""Who is calling: the API key from HTTP Basic, a Bearer token, or (ingest only) the body.

Basic auth with the key as username and an empty password is Segment's convention, so analytics
clients work unchanged. The key's kind decides its scopes; a missing or unknown key is 401, a
known key without the scope is 403. Keys never appear in errors or logs.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import Request

from loopwise.api.keys import SCOPES, KeyKind, KeyRing, Scope, has_scope
from loopwise.api.port import KeysPort, engine_of
from loopwise.errors import Forbidden, Unauthorized


def _engine(request: Request) -> KeysPort:
    """This module's narrow view of the engine: it may use only what KeysPort declares."""
    return engine_of(request)


_HOW = "Send the key as HTTP Basic username (empty password) or as 'Authorization: Bearer <key>'."


def key_from_headers(headers: Mapping[str, str]) -> str | None:
    """The key in the Authorization header, or None when there is no such header."""
    value = headers.get("authorization")
    if not value:
        return None
    scheme, _, credentials = value.strip().partition(" ")
    credentials = credentials.strip()
    scheme = scheme.lower()
    if scheme == "bearer" and credentials:
        return credentials
    if scheme == "basic" and credentials:
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized(
                "The Basic credentials are not valid base64 of 'key:'. " + _HOW,
                field="Authorization",
            ) from None
        username, _, password = decoded.partition(":")
        return username or password or None
    raise Unauthorized(
        "The Authorization header is neither Basic nor Bearer. " + _HOW, field="Authorization"
    )


def authorize(keys: KeyRing, key: str | None, scope: Scope) -> KeyKind:
    """The kind of a key allowed ``scope``; Unauthorized or Forbidden otherwise."""
    if key is None:
        raise Unauthorized("No API key was sent. " + _HOW, field="Authorization")
    kind = keys.authenticate(key)
    if kind is None:
        raise Unauthorized(
            "The API key is not valid. Check it, or ask an admin for the current key.",
            field="Authorization",
        )
    if not has_scope(kind, scope):
        needed = next(k for k in KeyKind if scope in SCOPES[k])
        raise Forbidden(
            f"A {kind.value} key cannot {_ACTIONS[scope]}; use a {needed.value} key.",
            field="Authorization",
            scope=scope.value,
        )
    return kind


_ACTIONS = {
    Scope.INGEST: "send events",
    Scope.DECIDE: "request decisions or read the catalog",
    Scope.READ_PROFILES: "read profiles or decisions",
    Scope.CONSENT: "read or set consent",
    Scope.ADMIN: "change the workspace or the catalog, or erase or export a person's data",
    Scope.EXPLAIN: "read why content was chosen",
    Scope.PUBLIC_DECIDE: "request decisions",
}


def require(scope: Scope) -> Callable[[Request], Awaitable[KeyKind]]:
    """A FastAPI dependency checking the request's header key for ``scope`` (async: a sync
    dependency would cost a thread hop per request)."""

    async def dependency(request: Request) -> KeyKind:
        return authorize(_engine(request).keys, key_from_headers(request.headers), scope)

    dependency.__name__ = f"require_{scope.value}"
    return dependency
