"""People who sign in to the console, and their sessions.

Passwords are hashed with argon2id (``argon2-cffi``'s defaults, RFC 9106's low-memory profile)
and never stored or logged. A session is a random token in an HttpOnly cookie; only its SHA-256
is stored, with the session's CSRF token, so a copy of the database signs nobody in. Failed
sign-ins are counted on the user (every worker sees them): after ``FREE_FAILURES`` each further
attempt must wait twice as long as the one before (capped), and is refused unchecked before then.
Unknown emails are slowed the same way per client address, in memory. Everything here lives in
the stores, so several workers share users, sessions and the slow-down.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from loopwise.clock import Clock, system_clock
from loopwise.errors import Conflict, LoopwiseError, NotFound, ValidationFailed
from loopwise.profiles.cache import LruCache
from loopwise.storage.records import SessionRecord, UserRecord
from loopwise.storage.stores import Storage, UnitOfWork

SESSION_HOURS = 12
MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 1024
FREE_FAILURES = 3  # failed sign-ins before each attempt has to wait
MAX_WAIT_SECONDS = 15 * 60
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")


class Role(StrEnum):
    VIEWER = "viewer"
    EDITOR = "editor"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank

    @property
    def editor(self) -> bool:
        return self.allows(Role.EDITOR)

    @property
    def admin(self) -> bool:
        return self.allows(Role.ADMIN)


class SignInRefused(LoopwiseError):
    status = 401
    slug = "sign-in-refused"
    title = "Sign-in refused"


class SlowDown(LoopwiseError):
    status = 429
    slug = "sign-in-slowed"
    title = "Too many failed sign-ins"


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A live session: who, their role, the CSRF token forms carry, the cookie's token hash."""

    email: str
    role: Role
    csrf: str
    token_hash: str
    expires_at: datetime


def normalize_email(email: str) -> str:
    value = email.strip().lower()
    if not _EMAIL.match(value):
        raise ValidationFailed(
            f"{email!r} is not an email address; use the form name@example.com.", field="email"
        )
    return value


def parse_role(value: str) -> Role:
    try:
        return Role(value.strip().lower())
    except ValueError:
        raise ValidationFailed(
            f"Unknown role {value!r}; use viewer, editor or admin.", field="role"
        ) from None


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise ValidationFailed(
            f"The password must have at least {MIN_PASSWORD_CHARS} characters.", field="password"
        )
    if len(password) > MAX_PASSWORD_CHARS:
        raise ValidationFailed(
            f"The password may have at most {MAX_PASSWORD_CHARS} characters.", field="password"
        )


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def wait_after(failures: int) -> float:
    """Seconds an attempt must wait after ``failures`` consecutive failed sign-ins."""
    if failures < FREE_FAILURES:
        return 0.0
    return float(min(2 ** (failures - FREE_FAILURES + 1), MAX_WAIT_SECONDS))


class People:
    """Users and sessions over the ``users`` and ``sessions`` stores."""

    def __init__(self, storage: Storage, clock: Clock = system_clock) -> None:
        self._storage = storage
        self._clock = clock
        self._hasher = PasswordHasher()
        # failed sign-ins for emails nobody has, per client address (bounded)
        self._strangers: LruCache[str, tuple[int, datetime]] = LruCache(10_000)
        self._strangers_lock = threading.Lock()
        # a hash to verify against for unknown emails, so they take as long as known ones
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))

    # -- users ---------------------------------------------------------------------------------
    def create(self, email: str, role: str, password: str) -> UserRecord:
        address, chosen = normalize_email(email), parse_role(role)
        check_password(password)
        user = UserRecord(
            email=address,
            role=chosen.value,
            password_hash=self._hasher.hash(password),
            created_at=self._clock(),
        )

        def job(uow: UnitOfWork) -> None:
            if uow.users.get(address) is not None:
                raise Conflict(
                    f"A user {address} exists already; revoke them first or pick another email.",
                    field="email",
                )
            uow.users.put(user)

        self._storage.write(job)
        return user

    def users(self) -> list[UserRecord]:
        return self._storage.users.list()

    def count(self) -> int:
        return self._storage.users.count()

    def revoke(self, email: str) -> int:
        """Remove a user and end their sessions; returns how many sessions were live."""
        address = normalize_email(email)

        def job(uow: UnitOfWork) -> int:
            if not uow.users.delete(address):
                raise NotFound(f"No console user {address}.", field="email")
            return uow.sessions.revoke_user(address)

        return self._storage.write(job)

    # -- signing in ----------------------------------------------------------------------------
    def sign_in(self, email: str, password: str, client: str) -> tuple[str, SignedIn]:
        """The new session's cookie token and the session. SignInRefused for a wrong email or
        password (the same answer for both); SlowDown while repeated failures must wait."""
        now = self._clock()
        try:
            address = normalize_email(email)
        except ValidationFailed:
            address = email.strip().lower()[:320]
        user = self._storage.users.get(address)
        if user is None or user.disabled:
            self._stranger_attempt(client, now)
            self._verify(self._dummy_hash, password)
            self._stranger_failed(client, now)
            raise _refused()
        if user.last_failed_at is not None:
            waited = (now - user.last_failed_at).total_seconds()
            wait = wait_after(user.failed_logins)
            if waited < wait:
                raise _slow_down(wait - waited)
        if not self._verify(user.password_hash, password):
            self._storage.write(lambda uow: _count_failure(uow, address, now))
            raise _refused()
        token = secrets.token_urlsafe(32)
        session = SessionRecord(
            token_hash=token_hash(token),
            email=address,
            csrf=secrets.token_urlsafe(24),
            created_at=now,
            expires_at=now + timedelta(hours=SESSION_HOURS),
        )

        def job(uow: UnitOfWork) -> None:
            current = uow.users.get(address) or user
            uow.users.put(replace(current, failed_logins=0, last_failed_at=None))
            uow.sessions.put(session)
            uow.sessions.purge_expired(now)

        self._storage.write(job)
        return token, _signed_in(session, Role(user.role))

    def _verify(self, stored: str, password: str) -> bool:
        try:
            return bool(self._hasher.verify(stored, password[:MAX_PASSWORD_CHARS]))
        except (VerificationError, InvalidHashError):
            return False

    def _stranger_attempt(self, client: str, now: datetime) -> None:
        with self._strangers_lock:
            found = self._strangers.get(client)
        if found is not None:
            failures, last = found
            waited = (now - last).total_seconds()
            if waited < wait_after(failures):
                raise _slow_down(wait_after(failures) - waited)

    def _stranger_failed(self, client: str, now: datetime) -> None:
        with self._strangers_lock:
            failures = (self._strangers.get(client) or (0, now))[0]
            self._strangers[client] = (failures + 1, now)

    # -- sessions ------------------------------------------------------------------------------
    def session(self, token: str | None) -> SignedIn | None:
        """The live session of a cookie token (None when unknown, expired or revoked, or when
        its user is gone)."""
        if not token or len(token) > 200:
            return None
        found = self._storage.sessions.get(token_hash(token))
        if found is None or found.revoked or found.expires_at <= self._clock():
            return None
        user = self._storage.users.get(found.email)
        if user is None or user.disabled:
            return None
        return _signed_in(found, Role(user.role))

    def sign_out(self, signed_in: SignedIn) -> None:
        self._storage.write(lambda uow: uow.sessions.revoke(signed_in.token_hash))

    def sessions_of(self, email: str) -> list[SessionRecord]:
        return self._storage.sessions.for_user(normalize_email(email))

    def revoke_sessions(self, email: str) -> int:
        address = normalize_email(email)
        return self._storage.write(lambda uow: uow.sessions.revoke_user(address))


def _count_failure(uow: UnitOfWork, email: str, now: datetime) -> None:
    user = uow.users.get(email)
    if user is not None:
        uow.users.put(replace(user, failed_logins=user.failed_logins + 1, last_failed_at=now))


def _signed_in(session: SessionRecord, role: Role) -> SignedIn:
    return SignedIn(session.email, role, session.csrf, session.token_hash, session.expires_at)


def _refused() -> SignInRefused:
    return SignInRefused("The email or the password is wrong.", field="password")


def _slow_down(seconds: float) -> SlowDown:
    wait = max(1, round(seconds))
    return SlowDown(
        f"Too many failed sign-ins: wait {wait} s before trying again.",
        field="password",
        retry_after=wait,
    )
