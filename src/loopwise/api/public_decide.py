"""The public decide scope: what the browser's write key may ask ``POST /v1/decide``.

The write key ships in every page, so a decide made with it must only ever be *for the caller*:

- its own anonymous id (the random id loopwise.js keeps in the visitor's browser), and
- a ``user_id`` only with a valid signed user token (``user.user_token``, the same HMAC that
  :mod:`loopwise.api.user_tokens` defines for events), computed by the site's server.

A ``user_id`` without a valid token is dropped: the request is decided for the anonymous id
alone, or refused with 403 when it names no anonymous id. The request is also marked
``caller_only``, so the engine never decides it with a profile that belongs to another user (an
anonymous id linked to a known user needs that user's token). Server and admin keys are trusted.
"""

from __future__ import annotations

from loopwise.api.user_tokens import verify_user_token
from loopwise.decide.request import DecideRequest, DecideUser
from loopwise.errors import Forbidden
from loopwise.profiles.identity import profile_id_for


def restrict_to_caller(request: DecideRequest, identity_secret: str | None) -> DecideRequest:
    """The request as the public write key may make it (Forbidden when nothing is left)."""
    user = request.user
    proven = user.user_id is not None and verify_user_token(
        identity_secret, user.user_id, user.user_token
    )
    if user.user_id is not None and not proven:
        if user.anonymous_id is None:
            raise Forbidden(
                "With the public write key, user.user_id needs user.user_token: the "
                "HMAC-SHA256 of the user id under the identity secret, computed by your server "
                "(docs/delivery.md). Send the token, send user.anonymous_id alone, or decide "
                "from your server with the server key.",
                field="user.user_token",
            )
        user = DecideUser(anonymous_id=user.anonymous_id)
    restricted = request.model_copy(update={"user": user})
    return restricted.for_caller_only()


def may_use_profile(request: DecideRequest, profile_user_id: str | None) -> bool:
    """Whether a caller-only request may be decided with a profile owned by
    ``profile_user_id``: always for trusted keys; for the write key only an anonymous profile or
    the proven user's own."""
    if not request.caller_only or profile_user_id is None:
        return True
    return profile_user_id == request.user.user_id


def unlinked_profile_id(anonymous_id: str) -> str:
    """The profile id a caller-only decide is made and logged under when its anonymous id
    belongs to a known user it did not prove: not that user's id (whose experiment arms and
    decision log must stay theirs), stable for the caller."""
    return profile_id_for("unverified:" + anonymous_id)
