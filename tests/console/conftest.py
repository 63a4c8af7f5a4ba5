"""A real engine on in-memory storage with the console mounted, and signed-in people of every
role (sessions written straight to the store: argon2 is tested in test_people)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from loopwise.api.app import create_app
from loopwise.api.keys import KeyKind, KeyRing
from loopwise.clock import system_clock
from loopwise.config import SAMPLE_WORKSPACE, load_workspace_file
from loopwise.console.people import token_hash
from loopwise.engine import Engine
from loopwise.storage.memory import MemoryStorage
from loopwise.storage.records import SessionRecord, UserRecord

ROLES = ("viewer", "editor", "admin")


@dataclass
class Person:
    email: str
    role: str
    cookie: str
    csrf: str


def new_engine() -> Engine:
    keys = KeyRing.from_plain({KeyKind.ADMIN: ["lw_admin_console_test"]})
    return Engine(load_workspace_file(SAMPLE_WORKSPACE), MemoryStorage(), keys=keys)


def sign_in(engine: Engine, role: str) -> Person:
    """A user of ``role`` with a live session (as People.sign_in leaves it)."""
    email, token, csrf = (
        f"{role}-{secrets.token_hex(4)}@example.com",
        secrets.token_urlsafe(32),
        secrets.token_urlsafe(16),
    )
    now = system_clock()
    user = UserRecord(email=email, role=role, password_hash="$argon2id$unused", created_at=now)
    session = SessionRecord(token_hash(token), email, csrf, now, now + timedelta(hours=1))

    def job(uow):  # type: ignore[no-untyped-def]
        uow.users.put(user)
        uow.sessions.put(session)

    engine.storage.write(job)
    return Person(email, role, token, csrf)


@pytest.fixture(scope="module")
def console_engine() -> Iterator[Engine]:
    engine = new_engine()
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def console_client(console_engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(console_engine), follow_redirects=False) as client:
        yield client


from tests.storage.conftest import pg_schema, storage  # noqa: E402  (people: every backend)

__all__ = ["pg_schema", "storage"]
