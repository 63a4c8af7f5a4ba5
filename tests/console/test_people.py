"""People and sessions: hashed passwords, one answer for a wrong email or password, repeated
failures slowed down (across workers: counted in the store), revocable sessions."""

from __future__ import annotations

import pytest

from loopwise.clock import FixedClock
from loopwise.console.people import People, SignInRefused, SlowDown, wait_after
from loopwise.errors import Conflict, ValidationFailed
from loopwise.storage.stores import Storage
from tests.storage.conftest import T0

PASSWORD = "correct horse battery"


def test_passwords_are_hashed_and_sign_in_gives_a_revocable_session(storage: Storage) -> None:
    people = People(storage, FixedClock(T0))
    user = people.create("Ed@Example.com ", "editor", PASSWORD)
    assert user.email == "ed@example.com"
    stored = storage.users.get("ed@example.com")
    assert stored is not None and stored.password_hash.startswith("$argon2id$")
    assert PASSWORD not in stored.password_hash
    token, session = people.sign_in("ed@example.com", PASSWORD, "127.0.0.1")
    assert people.session(token) == session
    assert storage.sessions.get(session.token_hash) is not None
    assert storage.sessions.get(token) is None  # only the hash is stored
    people.sign_out(session)
    assert people.session(token) is None


def test_wrong_email_and_wrong_password_get_the_same_answer(storage: Storage) -> None:
    people = People(storage, FixedClock(T0))
    people.create("ed@example.com", "editor", PASSWORD)
    with pytest.raises(SignInRefused) as wrong_password:
        people.sign_in("ed@example.com", "nope-nope-nope", "10.0.0.1")
    with pytest.raises(SignInRefused) as wrong_email:
        people.sign_in("who@example.com", PASSWORD, "10.0.0.1")
    assert wrong_password.value.detail == wrong_email.value.detail


def test_repeated_failures_must_wait_longer_and_longer(storage: Storage) -> None:
    clock = FixedClock(T0)
    people = People(storage, clock)
    people.create("ed@example.com", "editor", PASSWORD)
    for _ in range(3):
        with pytest.raises(SignInRefused):
            people.sign_in("ed@example.com", "wrong-password", "10.0.0.1")
    with pytest.raises(SlowDown) as slowed:  # even the right password waits its turn
        people.sign_in("ed@example.com", PASSWORD, "10.0.0.1")
    assert slowed.value.extra["retry_after"] == wait_after(3)
    clock.advance(wait_after(3))
    token, _ = people.sign_in("ed@example.com", PASSWORD, "10.0.0.1")
    assert people.session(token) is not None
    assert storage.users.get("ed@example.com").failed_logins == 0  # type: ignore[union-attr]
    assert wait_after(10) > wait_after(5) > wait_after(3) > 0


def test_unknown_emails_are_slowed_per_client_address(storage: Storage) -> None:
    people = People(storage, FixedClock(T0))
    for _ in range(3):
        with pytest.raises(SignInRefused):
            people.sign_in("nobody@example.com", "whatever-password", "10.0.0.9")
    with pytest.raises(SlowDown):
        people.sign_in("someone-else@example.com", "whatever-password", "10.0.0.9")


def test_revoking_a_user_ends_their_sessions_and_bad_input_is_refused(storage: Storage) -> None:
    people = People(storage, FixedClock(T0))
    people.create("ed@example.com", "editor", PASSWORD)
    token, _ = people.sign_in("ed@example.com", PASSWORD, "127.0.0.1")
    with pytest.raises(Conflict):
        people.create("ed@example.com", "viewer", PASSWORD)
    assert people.revoke("ed@example.com") == 1
    assert people.session(token) is None
    with pytest.raises(ValidationFailed):
        people.create("not-an-email", "viewer", PASSWORD)
    with pytest.raises(ValidationFailed):
        people.create("a@example.com", "owner", PASSWORD)
    with pytest.raises(ValidationFailed):
        people.create("a@example.com", "viewer", "short")
