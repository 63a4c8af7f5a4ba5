"""ConfigStore contract: documents by key, metadata strings, change counters."""

from __future__ import annotations

from typing import Any

import pytest

from loopwise.errors import ValidationFailed
from tests.storage.conftest import Raw


def test_documents_overwrite_by_key(storage: Any) -> None:
    assert storage.config.get("workspace") is None
    storage.write(lambda uow: uow.config.put("workspace", {"slots": [{"id": "hero"}]}))
    storage.write(lambda uow: uow.config.put("clusters", {"k": 3}))
    assert storage.config.get("workspace") == {"slots": [{"id": "hero"}]}
    storage.write(lambda uow: uow.config.put("workspace", {"slots": []}))
    assert storage.config.get("workspace") == {"slots": []}
    assert storage.config.get("clusters") == {"k": 3}


def test_meta_overwrites_by_key(storage: Any) -> None:
    assert storage.config.meta("model") is None
    storage.write(lambda uow: uow.config.put_meta("model", "v1"))
    storage.write(lambda uow: uow.config.put_meta("model", "v2"))
    assert storage.config.meta("model") == "v2"


def test_bump_counts_changes_per_name(storage: Any) -> None:
    assert storage.config.revisions() == {}
    assert storage.write(lambda uow: uow.config.bump("catalog")) == 1
    assert storage.write(lambda uow: [uow.config.bump("catalog"), uow.config.bump("catalog")]) == [
        2,
        3,
    ]
    assert storage.write(lambda uow: uow.config.bump("workspace")) == 1
    assert storage.config.revisions() == {"catalog": 3, "workspace": 1}


def test_reads_inside_a_unit_of_work_see_its_own_writes(storage: Any) -> None:
    def job(uow: Any) -> tuple[Any, ...]:
        uow.config.put("workspace", {"v": 1})
        uow.config.put_meta("model", "m1")
        uow.config.bump("workspace")
        return uow.config.get("workspace"), uow.config.meta("model"), uow.config.revisions()

    assert storage.write(job) == ({"v": 1}, "m1", {"workspace": 1})


def test_a_damaged_document_is_a_validation_problem_naming_it(storage: Any, raw: Raw) -> None:
    storage.write(lambda uow: uow.config.put("workspace", {"v": 1}))
    raw.corrupt("config", "workspace")
    with pytest.raises(ValidationFailed) as caught:
        storage.config.get("workspace")
    assert caught.value.field == "config.workspace" and "damaged" in caught.value.detail
    storage.write(lambda uow: uow.config.put("workspace", {"v": 2}))  # writing it again heals
    assert storage.config.get("workspace") == {"v": 2}
