"""A small workspace with a bandit block slot, an engine on memory storage, and a click loop."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from loopwise.clock import FixedClock
from loopwise.config import Workspace
from loopwise.decide.request import DecideRequest
from loopwise.engine import Engine
from loopwise.events.normalize import parse_request
from loopwise.storage.memory import MemoryStorage
from loopwise.storage.stores import Storage

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def bandit_workspace(**bandit: Any) -> Workspace:
    return Workspace.model_validate(
        {
            "workspace": "bandit-test",
            "builtin_segments": False,
            "segments": [
                {
                    "key": "mobile",
                    "name": "Mobile",
                    "condition": {"context.device.type": "mobile"},
                }
            ],
            "slots": [
                {
                    "key": "hero",
                    "kind": "block",
                    "strategy": "bandit",
                    "bandit": bandit,
                    "variants": [
                        {"id": "a", "content": {"headline": "A"}},
                        {"id": "b", "content": {"headline": "B"}},
                        {"id": "c", "content": {"headline": "C"}},
                    ],
                }
            ],
        }
    )


@pytest.fixture()
def clock() -> FixedClock:
    return FixedClock(T0)


def new_engine(
    workspace: Workspace, clock: FixedClock, storage: Storage | None = None, seed: int = 7
) -> Engine:
    return Engine(workspace, storage or MemoryStorage(), clock=clock, seed=seed)


def send(engine: Engine, clock: FixedClock, kind: str, **message: Any) -> None:
    message.setdefault("messageId", str(uuid.uuid4()))
    message.setdefault("timestamp", clock().isoformat())
    engine.ingest(parse_request(message, kind=kind, received_at=clock()))


def decide(engine: Engine, anon: str, context: dict[str, Any] | None = None) -> dict[str, Any]:
    request = DecideRequest.model_validate(
        {"user": {"anonymous_id": anon}, "context": context or {}, "slots": [{"slot": "hero"}]}
    )
    return engine.decide(request).model_dump(mode="json")


def run_loop(
    engine: Engine,
    clock: FixedClock,
    rates: dict[str, float],
    rounds: int,
    *,
    seed: int = 3,
    context: Callable[[int], dict[str, Any]] | None = None,
) -> list[str]:
    """``rounds`` visitors: decide, then click with the shown variant's rate. Returns the
    variants shown, in order."""
    import random

    rng = random.Random(seed)
    shown = []
    for i in range(rounds):
        clock.advance(5)
        anon = f"v{i}"
        ctx = context(i) if context else {}
        reply = decide(engine, anon, ctx)
        variant = reply["slots"][0]["variant"]["id"]
        shown.append(variant)
        engine.services.decide.flush()
        if rng.random() < rates[variant]:
            send(
                engine,
                clock,
                "track",
                anonymousId=anon,
                event="Content Clicked",
                properties={"decision_id": reply["decision_id"], "slot": "hero"},
            )
    return shown


# the storage suite's backends (memory, SQLite, PostgreSQL in a schema of this session's own)
from tests.storage.conftest import open_backend, pg_schema  # noqa: E402, F401

BACKENDS = ("memory", "sqlite", "postgres")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Any) -> Callable[[], Storage]:
    """Opens the same database again on each call (a restart); memory hands back one object."""
    opened: list[Storage] = []

    def reopen() -> Storage:
        if request.param == "memory" and opened:
            return opened[0]
        if request.param == "postgres" and opened:
            from loopwise.storage.postgres import PostgresStorage
            from tests.storage.conftest import PG_URL

            storage: Storage = PostgresStorage(PG_URL, schema=request.getfixturevalue("pg_schema"))
        else:
            storage = open_backend(request.param, tmp_path, request)
        opened.append(storage)
        return storage

    return reopen
