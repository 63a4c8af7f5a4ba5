"""Identity verification for the public write key: a ``userId`` from a browser needs proof.

The write key ships in every page, so anyone can send an event naming any ``userId``. A site proves
that a browser belongs to a signed-in user the way chat and analytics vendors do ("identity
verification"): its *server* computes ``user_token = HMAC-SHA256(identity_secret, userId)`` (hex)
and hands it to its own pages; the browser sends it with its events (``context.userToken``) and
decide calls (``user.user_token``). Without a valid token a write-key request is treated as
anonymous: the ``userId`` is not linked, not merged into, and not used to look anyone up.

Server and admin keys are trusted: they are kept on servers, so their ``userId`` needs no token.

The identity secret comes from ``LOOPWISE_IDENTITY_SECRET`` when set, else from
``<data dir>/identity_secret`` (created 0600 on first start; ``loopwise keys identity-secret``
prints it for the site's server configuration). Nothing here logs the secret or a token.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from loopwise.errors import Forbidden
from loopwise.events.schema import Event

IDENTITY_SECRET_ENV = "LOOPWISE_IDENTITY_SECRET"
IDENTITY_SECRET_FILE = "identity_secret"
USER_TOKEN_CONTEXT_FIELD = "userToken"  # context.userToken on Segment-style events


def user_token(secret: str, user_id: str) -> str:
    """The token a site's server gives its page for ``user_id`` (lowercase hex HMAC-SHA256)."""
    return hmac.new(secret.encode("utf-8"), user_id.encode("utf-8"), hashlib.sha256).hexdigest()


def verify_user_token(secret: str | None, user_id: str, token: object) -> bool:
    """True when ``token`` proves ``user_id``; compared in constant time. No secret, no proof."""
    if not secret or not isinstance(token, str) or not token:
        return False
    expected = user_token(secret, user_id)
    return hmac.compare_digest(expected.encode("ascii"), token.strip().lower().encode("utf-8"))


def load_or_create_identity_secret(data_dir: Path, environ: Mapping[str, str]) -> str:
    """The environment's secret, else the data directory's (generated once, file mode 0600)."""
    from_env = environ.get(IDENTITY_SECRET_ENV, "").strip()
    if from_env:
        return from_env
    path = data_dir / IDENTITY_SECRET_FILE
    try:
        existing = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        return existing
    data_dir.mkdir(parents=True, exist_ok=True)
    fresh = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first: use theirs
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(fresh + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return fresh


def restrict_to_browser(events: list[Event], secret: str | None, *, batch: bool) -> list[Event]:
    """What an event sent with the public write key may claim. A ``userId`` counts only with a
    valid ``context.userToken``; without one it is dropped, so the event is the browser's own
    (its anonymous id): it links nobody, merges into nobody, and its consent choices reach only
    the profile that anonymous id already belongs to. An event left with no identifier is
    refused (Forbidden, naming its field), and nothing of the request is stored."""
    for index, event in enumerate(events):
        if event.user_id is None:
            continue
        token = event.context.get(USER_TOKEN_CONTEXT_FIELD)
        if verify_user_token(secret, event.user_id, token):
            continue
        if event.anonymous_id is None and not (event.type == "alias" and event.previous_id):
            where = f"batch[{index}]." if batch else ""
            raise Forbidden(
                "With the public write key, a userId needs context.userToken: the HMAC-SHA256 "
                "of the user id under the identity secret, computed by your server (see "
                "docs/privacy.md). Send the token, add the browser's anonymousId, or send "
                "from your server with the server key.",
                field=f"{where}context.{USER_TOKEN_CONTEXT_FIELD}",
            )
        event.user_id = None
    return events


def strip_user_tokens(events: list[Event]) -> None:
    """A user token is a credential for that user: it is checked, never stored."""
    for event in events:
        event.context.pop(USER_TOKEN_CONTEXT_FIELD, None)
