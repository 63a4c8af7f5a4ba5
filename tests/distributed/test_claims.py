"""Projection partition claims and start-up migrations on a real PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime

import psycopg
import pytest

from loopwise.config import SAMPLE_WORKSPACE, load_workspace_file
from loopwise.decide.request import DecideRequest
from loopwise.decide.service import _Logged
from loopwise.distributed.claims import (
    PARTITIONS,
    ClaimingWriter,
    PartitionBusy,
    PartitionClaims,
    ensure_table,
    partition_of,
    retrying,
)
from loopwise.engine import Engine
from loopwise.profiles.identity import profile_id_for
from loopwise.storage.postgres import PostgresStorage, migrate
from loopwise.storage.postgres.migrate import migrations
from loopwise.storage.records import Exposure
from tests.distributed.conftest import PG_URL, pg


@pytest.fixture
def two(schema: str) -> Iterator[tuple[PostgresStorage, PostgresStorage]]:
    first = PostgresStorage(PG_URL, schema=schema)
    second = PostgresStorage(PG_URL, schema=schema)
    ensure_table(PG_URL, schema)
    yield first, second
    first.close()
    second.close()


def test_partitions_are_stable_and_spread() -> None:
    assert partition_of("p_abc") == partition_of("p_abc")
    spread = {partition_of(profile_id_for(f"user-{n}")) for n in range(20_000)}
    # uniform hashing puts 20,000 ids in ~17,200 of 65,536 partitions
    assert len(spread) > 16_000
    assert all(0 <= p < PARTITIONS for p in spread)


@contextmanager
def holding(storage: PostgresStorage, claims: PartitionClaims, parts: list[int]) -> Iterator[None]:
    """``storage``'s writer inside a job that claimed ``parts``, until the block ends; jobs
    submitted to it meanwhile run later in the same transaction."""
    held, release = threading.Event(), threading.Event()

    def hold(uow: object) -> None:
        claims.claim(uow, parts)  # type: ignore[arg-type]
        held.set()
        release.wait(timeout=30)

    future = storage.submit(hold)
    assert held.wait(timeout=30)
    try:
        yield
    finally:
        release.set()
        future.result(timeout=30)


def test_a_transactions_first_job_waits_for_a_partition_held_elsewhere(
    two: tuple[PostgresStorage, PostgresStorage],
) -> None:
    first, second = two
    claims = PartitionClaims()
    with holding(first, claims, [7, 8]):
        second.write(lambda uow: claims.claim(uow, [9, 10]))  # others are free
        waiting = second.submit(lambda uow: claims.claim(uow, [8, 9]))
        time.sleep(0.3)
        assert not waiting.done()  # it holds nothing, so it may wait: no cycle possible
    waiting.result(timeout=30)  # through once the first worker committed
    assert claims.busy == 0


@contextmanager
def one_transaction(storage: PostgresStorage) -> Iterator[None]:
    """What is submitted inside the block runs as one group commit, in order, after it."""
    started, release = threading.Event(), threading.Event()

    def gate(uow: object) -> None:
        started.set()
        release.wait(timeout=30)

    future = storage.submit(gate)
    assert started.wait(timeout=30)
    try:
        yield
    finally:
        release.set()
        future.result(timeout=30)


def test_a_later_job_skips_a_busy_partition_and_releases_what_it_took(
    two: tuple[PostgresStorage, PostgresStorage],
) -> None:
    first, second = two
    claims = PartitionClaims()
    with holding(first, claims, [20]):
        with one_transaction(second):
            second.submit(lambda uow: claims.claim(uow, [30]))  # the transaction's first job
            blocked = second.submit(lambda uow: claims.claim(uow, [19, 20]))
        with pytest.raises(PartitionBusy) as busy:
            blocked.result(timeout=30)  # did not wait: it would hold 30 while waiting
        assert busy.value.partitions == [20]
        # 19 was rolled back with the job's savepoint: free again at once (this job runs after
        # the hold in the first worker's transaction, so it skips rather than waits)
        freed = first.submit(lambda uow: claims.claim(uow, [19]))
    freed.result(timeout=30)
    assert claims.busy == 1


def test_a_busy_job_is_retried_until_it_goes_through(
    two: tuple[PostgresStorage, PostgresStorage],
) -> None:
    first, second = two
    claims = PartitionClaims()
    with holding(first, claims, [40]):
        with one_transaction(second):
            second.submit(lambda uow: claims.claim(uow, [41]))
            retried = retrying(lambda: second.submit(lambda uow: claims.claim(uow, [40])))
        time.sleep(0.3)
        assert not retried.done()  # busy, then waiting as the first job of a new transaction
    retried.result(timeout=30)
    assert claims.busy == 1


def test_claim_people_follows_a_merge_committed_elsewhere(
    two: tuple[PostgresStorage, PostgresStorage],
) -> None:
    first, _ = two
    claims = PartitionClaims()
    first.write(lambda uow: uow.identities.link({"anon-1": profile_id_for("user-1")}))
    pids = first.write(lambda uow: claims.claim_people(uow, ["anon-1"]))
    assert pids == {profile_id_for("anon-1"), profile_id_for("user-1")}


def test_workers_starting_at_once_migrate_once(schema: str) -> None:
    fresh = f"{schema}_start"
    try:
        with ThreadPoolExecutor(6) as pool:
            applied = list(pool.map(lambda _: migrate(PG_URL, fresh), range(6)))
            list(pool.map(lambda _: ensure_table(PG_URL, fresh), range(6)))
        assert sorted(len(a) for a in applied) == [0] * 5 + [len(migrations())]
        with pg(fresh) as conn:
            assert conn.execute("SELECT count(*) FROM projection_partitions").fetchone() == (
                PARTITIONS,
            )
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{fresh}" CASCADE')


def test_a_claiming_write_waits_for_the_persons_partition(
    two: tuple[PostgresStorage, PostgresStorage],
) -> None:
    first, second = two
    claims = PartitionClaims()
    writer = ClaimingWriter(second, claims)
    person = profile_id_for("user-9")
    with holding(first, claims, [partition_of(person)]):  # another worker folds user-9
        written = writer.submit(["user-9"], [], lambda uow: claims.claimed)
        time.sleep(0.3)
        assert not written.done()
    assert written.result(timeout=30) >= 1  # through once the other worker committed


def test_a_first_exposure_follows_a_merge_another_worker_committed(
    two: tuple[PostgresStorage, PostgresStorage],
) -> None:
    """This worker's identity view still says anon-7 is a profile of its own; another worker
    has just linked anon-7 to user-7. The exposure (and the decision) land on user-7's
    profile, where the experiment's results and the person's next decide read it."""
    first, second = two
    engine = Engine(load_workspace_file(SAMPLE_WORKSPACE), first)
    decide = engine.services.decide
    decide.claimed_writes = ClaimingWriter(first, PartitionClaims())
    stale, merged = profile_id_for("anon-7"), profile_id_for("user-7")
    second.write(lambda uow: uow.identities.link({"anon-7": merged, "user-7": merged}))
    now = datetime.now(UTC)
    exposure = Exposure(experiment="hero-test", profile_id=stale, arm="b", exposed_at=now)
    record = {"decision_id": "d_merge", "profile_id": stale, "created_at": now.isoformat()}
    decide._log(_Logged(record, [exposure], ("anon-7",)))
    logged = engine.get_decision("d_merge")
    assert logged is not None and logged["profile_id"] == merged
    assert first.exposures.get("hero-test", stale) is None
    moved = first.exposures.get("hero-test", merged)
    assert moved is not None and moved.arm == "b"
    engine.close()


@pytest.mark.parametrize("public", [False, True])
def test_a_public_decides_exposure_never_follows_its_anonymous_id_to_someone_else(
    two: tuple[PostgresStorage, PostgresStorage], public: bool
) -> None:
    """Another worker linked anon-8 to user-8 after this worker resolved it. A trusted decide's
    exposure follows the link; a write-key decide (which never proved it is user-8) keeps it
    on the profile it decided for."""
    first, second = two
    engine = Engine(load_workspace_file(SAMPLE_WORKSPACE), first)
    engine.services.decide.claimed_writes = ClaimingWriter(first, PartitionClaims())
    anon, user = f"anon-8-{public}", f"user-8-{public}"
    stale, merged = profile_id_for(anon), profile_id_for(user)
    assert engine.services.views.identities.resolve(anon) is None  # what this worker knows
    second.write(lambda uow: uow.identities.link({anon: merged, user: merged}))
    request = DecideRequest.model_validate(
        {"user": {"anonymous_id": anon}, "slots": [{"slot": "recommended"}]}
    )
    reply = engine.decide(request.for_caller_only() if public else request)
    logged = engine.get_decision(reply.decision_id)
    assert logged is not None
    exposures = first.exposures.for_profiles([stale, merged])
    assert [e.profile_id for e in exposures] == [stale if public else merged]
    engine.close()
