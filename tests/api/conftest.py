"""An app on the fake engine with one known key of each kind."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from loopwise.api.app import create_app
from loopwise.api.keys import KeyKind, KeyRing
from tests.api.fake_engine import FakeEngine

WRITE = "lw_write_test"
SERVER = "lw_server_test"
ADMIN = "lw_admin_test"
KEYS = {"none": None, "wrong": "lw_server_wrong", "write": WRITE, "server": SERVER, "admin": ADMIN}


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def bearer(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


def new_engine() -> FakeEngine:
    ring = KeyRing.from_plain(
        {KeyKind.WRITE: [WRITE], KeyKind.SERVER: [SERVER], KeyKind.ADMIN: [ADMIN]}
    )
    return FakeEngine(keys=ring)


@pytest.fixture
def engine() -> FakeEngine:
    return new_engine()


@pytest.fixture
def app(engine: FakeEngine) -> FastAPI:
    return create_app(engine)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def shared_client() -> Iterator[TestClient]:
    """One app for a module's many parametrized cases (FastAPI prepares every route on an app's
    first request, ~0.1 s); tests put a fresh engine in ``app.state.engine`` themselves."""
    with TestClient(create_app(new_engine())) as test_client:
        yield test_client


def use_engine(client: TestClient, engine: FakeEngine) -> FakeEngine:
    client.app.state.engine = engine  # type: ignore[attr-defined]
    return engine
