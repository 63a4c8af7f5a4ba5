"""Projection partition claims and start-up migrations on a real PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from loopwise.distributed.claims import (
    PARTITIONS,
    PartitionBusy,
    PartitionClaims,
    ensure_table,
    partition_of,
    retrying,
)
from loopwise.profiles.identity import profile_id_for
from loopwise.storage.postgres import PostgresStorage, migrate
from loopwise.storage.postgres.migrate import migrations
from tests.distributed.conftest import PG_URL, eventually, pg


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
    spread = {partition_of(profile_id_for(f"user-{n}")) for n in range(2000)}
    assert len(spread) > PARTITIONS * 0.9
    assert all(0 <= p < PARTITIONS for p in spread)


def test_a_partition_held_by_one_worker_is_busy_for_the_other_until_it_commits(
    two: tuple[PostgresStorage, PostgresStorage],
) -> None:
    first, second = two
    claims = PartitionClaims()
    holding, release = threading.Event(), threading.Event()

    def hold(uow: object) -> None:
        claims.claim(uow, [7, 8])  # type: ignore[arg-type]
        holding.set()
        release.wait(timeout=30)

    held = first.submit(hold)
    assert holding.wait(timeout=30)
    with pytest.raises(PartitionBusy) as busy:
        second.write(lambda uow: claims.claim(uow, [8, 9]))
    assert busy.value.partitions == [8]
    second.write(lambda uow: claims.claim(uow, [9, 10]))  # others are free
    # a retried claim goes through once the first worker's transaction is over
    retried = retrying(lambda: second.submit(lambda uow: claims.claim(uow, [8])))
    eventually(lambda: claims.busy >= 3, timeout=10)  # tried, busy, tried again, busy
    assert not retried.done()
    release.set()
    held.result(timeout=30)
    retried.result(timeout=30)  # went through once the first worker committed


def test_a_failed_claim_releases_what_it_took(two: tuple[PostgresStorage, PostgresStorage]) -> None:
    first, second = two
    claims = PartitionClaims()
    holding, release = threading.Event(), threading.Event()

    def hold(uow: object) -> None:
        claims.claim(uow, [20])  # type: ignore[arg-type]
        holding.set()
        release.wait(timeout=30)

    held = first.submit(hold)
    assert holding.wait(timeout=30)
    blocked = second.submit(lambda uow: claims.claim(uow, [19, 20]))  # takes 19, misses 20
    with pytest.raises(PartitionBusy):
        blocked.result(timeout=30)
    # 19 was rolled back with the job's savepoint: the first worker can take it at once
    holding_19 = first.submit(lambda uow: claims.claim(uow, [19]))
    release.set()
    held.result(timeout=30)
    holding_19.result(timeout=30)


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
