"""The session store's contract, on every backend."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from loopwise.storage.records import SessionRecord
from tests.storage.conftest import T0


def session(token: str, email: str = "a@example.com", minutes: int = 0) -> SessionRecord:
    created = T0 + timedelta(minutes=minutes)
    return SessionRecord(
        token_hash=token,
        email=email,
        csrf=f"csrf-{token}",
        created_at=created,
        expires_at=created + timedelta(hours=8),
    )


def test_put_get_and_for_user_newest_first(storage: Any) -> None:
    for s in (session("t1"), session("t2", minutes=5), session("t3", "b@example.com")):
        storage.write(lambda uow, s=s: uow.sessions.put(s))
    assert storage.sessions.get("t1") == session("t1")
    assert storage.sessions.get("nope") is None
    tokens = [s.token_hash for s in storage.sessions.for_user("a@example.com")]
    assert tokens == ["t2", "t1"]


def test_revoke_one_and_all_of_a_user(storage: Any) -> None:
    for s in (session("t1"), session("t2", minutes=5), session("t3", "b@example.com")):
        storage.write(lambda uow, s=s: uow.sessions.put(s))
    assert storage.write(lambda uow: uow.sessions.revoke("t1")) is True
    assert storage.write(lambda uow: uow.sessions.revoke("t1")) is False
    assert storage.write(lambda uow: uow.sessions.revoke("unknown")) is False
    assert storage.sessions.get("t1").revoked
    assert storage.write(lambda uow: uow.sessions.revoke_user("a@example.com")) == 1
    assert storage.sessions.get("t2").revoked
    assert not storage.sessions.get("t3").revoked


def test_purge_drops_expired_and_revoked(storage: Any) -> None:
    for s in (session("old"), session("live", minutes=600), session("gone", minutes=600)):
        storage.write(lambda uow, s=s: uow.sessions.put(s))
    storage.write(lambda uow: uow.sessions.revoke("gone"))
    purged = storage.write(lambda uow: uow.sessions.purge_expired(T0 + timedelta(hours=9)))
    assert purged == 2
    assert storage.sessions.get("live") is not None
    assert storage.sessions.get("old") is None
    assert storage.sessions.get("gone") is None
