"""AuditLog contract: append-only records in ``seq`` order; the hash chain (kept by
``loopwise.privacy.audit``) still verifies after retention drops old records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from loopwise.clock import isoformat
from loopwise.privacy.audit import ANCHOR_META_KEY, chain, consent_record, verify_chain
from tests.storage.conftest import at


def body(subject: str, when: datetime) -> dict[str, Any]:
    return consent_record(
        user=subject,
        subject=subject,
        before={},
        after={"personalization": True},
        source="api",
        policy_version="1",
        at=when,
    )


def append_chained(uow: Any, subject: str, when: datetime) -> dict[str, Any]:
    """What the privacy service does: link the next record to the head in the same job."""
    record = chain(uow.audit.head(), uow.config.meta(ANCHOR_META_KEY), body(subject, when))
    uow.audit.append(record)
    return record


def test_an_empty_log(storage: Any) -> None:
    assert storage.audit.head() is None
    assert list(storage.audit.iter()) == []
    assert list(storage.audit.iter(["s1"])) == []


def test_records_chain_in_order_and_filter_by_subject(storage: Any) -> None:
    subjects = ["s1", "s2", "s1", "s3", "s2"]
    written = [
        storage.write(lambda uow, s=s, n=n: append_chained(uow, s, at(n)))
        for n, s in enumerate(subjects)
    ]
    assert list(storage.audit.iter()) == written
    assert storage.audit.head() == written[-1]
    assert [r["seq"] for r in storage.audit.iter(["s2", "s3"])] == [2, 4, 5]
    assert list(storage.audit.iter([])) == []
    assert verify_chain(storage.audit.iter()).ok


def test_many_appends_in_one_job_see_each_other(storage: Any) -> None:
    storage.write(lambda uow: [append_chained(uow, f"s{n % 3}", at(n)) for n in range(1200)])
    records = list(storage.audit.iter())
    assert [r["seq"] for r in records] == list(range(1, 1201))
    assert verify_chain(records).ok
    assert len(list(storage.audit.iter(["s0"]))) == 400


def test_a_record_is_never_replaced(storage: Any) -> None:
    first = storage.write(lambda uow: append_chained(uow, "s1", at(0)))
    forged = {**first, "subject": "someone-else"}
    with pytest.raises(Exception):  # noqa: B017 - each backend raises its own integrity error
        storage.write(lambda uow: uow.audit.append(forged))
    assert list(storage.audit.iter()) == [first]


def test_purge_before_keeps_the_newest_and_the_chain_verifies_from_the_anchor(
    storage: Any,
) -> None:
    for n in range(5):
        storage.write(lambda uow, n=n: append_chained(uow, "s", at(n * 10)))

    def purge(uow: Any) -> tuple[int, Any]:
        removed, first = uow.audit.purge_before(at(20))
        uow.config.put_meta(ANCHOR_META_KEY, first["prev_hash"])
        return removed, first

    removed, first = storage.write(purge)
    kept = list(storage.audit.iter())
    assert removed == 2 and [r["seq"] for r in kept] == [3, 4, 5]
    assert first == kept[0] and first["at"] == isoformat(at(20))  # the cutoff itself is kept
    assert verify_chain(kept, storage.config.meta(ANCHOR_META_KEY)).ok
    assert not verify_chain(kept).ok  # without its anchor the shortened chain does not verify
    storage.write(lambda uow: append_chained(uow, "s", at(60)))  # the chain goes on
    assert verify_chain(storage.audit.iter(), storage.config.meta(ANCHOR_META_KEY)).ok

    removed, first = storage.write(lambda uow: uow.audit.purge_before(at(1000)))
    assert removed == 3 and first["seq"] == 6  # never the newest record
    assert [r["seq"] for r in storage.audit.iter()] == [6]


def test_purging_an_empty_log(storage: Any) -> None:
    assert storage.write(lambda uow: uow.audit.purge_before(at(0))) == (0, None)
