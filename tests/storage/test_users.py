"""The user store's contract, on every backend."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from loopwise.storage.records import UserRecord
from tests.storage.conftest import T0


def user(email: str, role: str = "editor") -> UserRecord:
    return UserRecord(email=email, role=role, password_hash="$argon2id$x", created_at=T0)


def test_put_get_list_and_count(storage: Any) -> None:
    storage.write(lambda uow: uow.users.put(user("b@example.com")))
    storage.write(lambda uow: uow.users.put(user("a@example.com", "admin")))
    assert storage.users.get("a@example.com") == user("a@example.com", "admin")
    assert storage.users.get("nobody@example.com") is None
    assert [u.email for u in storage.users.list()] == ["a@example.com", "b@example.com"]
    assert storage.users.count() == 2


def test_put_replaces_every_field(storage: Any) -> None:
    storage.write(lambda uow: uow.users.put(user("a@example.com")))
    changed = replace(
        user("a@example.com", "viewer"), disabled=True, failed_logins=3, last_failed_at=T0
    )
    storage.write(lambda uow: uow.users.put(changed))
    assert storage.users.get("a@example.com") == changed
    assert storage.users.count() == 1


def test_delete(storage: Any) -> None:
    storage.write(lambda uow: uow.users.put(user("a@example.com")))
    assert storage.write(lambda uow: uow.users.delete("a@example.com")) is True
    assert storage.write(lambda uow: uow.users.delete("a@example.com")) is False
    assert storage.users.get("a@example.com") is None


def test_a_job_reads_its_own_writes(storage: Any) -> None:
    def job(uow: Any) -> UserRecord | None:
        uow.users.put(user("a@example.com"))
        found: UserRecord | None = uow.users.get("a@example.com")
        return found

    assert storage.write(job) == user("a@example.com")
