"""Versioned model artifacts: save, list, load, keep the last K, roll back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from scipy.sparse import csr_matrix

from loopwise.config import TrainingSettings
from loopwise.errors import Conflict, NotFound
from loopwise.models.artifacts import ArtifactStore
from loopwise.models.training import TrainedModels, train
from tests.models.test_training import synthetic

T0 = datetime(2026, 11, 23, 10, 15, tzinfo=UTC)


@pytest.fixture(scope="module")
def trained() -> TrainedModels:
    return train(synthetic(), None, TrainingSettings(models=["ease", "als"], min_interactions=10))


def test_save_writes_a_version_with_metadata_and_points_current(
    tmp_path: Path, trained: TrainedModels
) -> None:
    store = ArtifactStore(tmp_path)
    version = store.save(trained, T0)
    assert version.name == "v1-20261123T101500Z"
    assert (tmp_path / "models" / "current").read_text().strip() == version.name
    meta = version.metadata()
    assert meta["version"] == version.name and meta["created_at"].startswith("2026-11-23T10:15")
    assert meta["data_window"]["events"] == 400
    assert store.current() == version
    assert not [p for p in (tmp_path / "models").iterdir() if p.name.startswith(".")]


def test_a_loaded_version_scores_like_the_trained_one(
    tmp_path: Path, trained: TrainedModels
) -> None:
    store = ArtifactStore(tmp_path)
    loaded = store.load(store.save(trained, T0))
    row = csr_matrix(np.eye(1, len(trained.item_ids), 3, dtype=np.float32))
    for name in ("ease", "als"):
        np.testing.assert_allclose(
            loaded.models[name].score_users(row), trained.models[name].score_users(row), rtol=1e-5
        )
    assert loaded.item_ids == trained.item_ids
    assert loaded.metadata["version"].startswith("v1-")


def test_keeps_the_last_k_versions_and_numbers_keep_rising(
    tmp_path: Path, trained: TrainedModels
) -> None:
    store = ArtifactStore(tmp_path, keep=2)
    names = [store.save(trained, T0 + timedelta(minutes=i)).name for i in range(4)]
    assert [v.name for v in store.versions()] == names[2:]
    assert names[3].startswith("v4-")
    listing = store.listing()
    assert listing["current"] == names[3]
    assert [v["version"] for v in listing["versions"]] == [names[3], names[2]]
    assert listing["versions"][0]["current"] is True


def test_rollback_points_current_to_the_previous_version(
    tmp_path: Path, trained: TrainedModels
) -> None:
    store = ArtifactStore(tmp_path)
    first = store.save(trained, T0)
    second = store.save(trained, T0 + timedelta(hours=1))
    assert store.rollback() == first
    assert store.current() == first
    with pytest.raises(Conflict, match="oldest"):
        store.rollback()
    assert store.set_current(second.name) == second
    # a version saved after a rollback gets a new number, never an old one's
    assert store.save(trained, T0 + timedelta(hours=2)).name.startswith("v3-")


def test_rollback_without_versions_and_unknown_versions(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    assert store.versions() == [] and store.current() is None
    assert store.listing() == {"current": None, "versions": []}
    with pytest.raises(Conflict, match="train one first"):
        store.rollback()
    with pytest.raises(NotFound):
        store.set_current("v9-20260101T000000Z")


def test_the_current_version_survives_pruning(tmp_path: Path, trained: TrainedModels) -> None:
    store = ArtifactStore(tmp_path, keep=1)
    first = store.save(trained, T0)
    store.save(trained, T0 + timedelta(minutes=1))
    assert [v.name for v in store.versions()] != [first.name]
    store2 = ArtifactStore(tmp_path, keep=5)
    a = store2.save(trained, T0 + timedelta(minutes=2))
    store2.save(trained, T0 + timedelta(minutes=3))
    store2.set_current(a.name)
    ArtifactStore(tmp_path, keep=1).prune()
    assert a.name in [v.name for v in store2.versions()]


def test_a_damaged_metadata_file_does_not_break_the_listing(
    tmp_path: Path, trained: TrainedModels
) -> None:
    store = ArtifactStore(tmp_path)
    first = store.save(trained, T0)
    second = store.save(trained, T0 + timedelta(hours=1))
    (first.path / "metadata.json").write_text("{half written", "utf-8")
    listing = store.listing()
    assert [v["version"] for v in listing["versions"]] == [second.name, first.name]
    assert listing["versions"][1]["damaged"] is True
    assert "damaged" not in listing["versions"][0]


def test_an_unloadable_version_is_a_conflict_naming_it(
    tmp_path: Path, trained: TrainedModels
) -> None:
    store = ArtifactStore(tmp_path)
    version = store.save(trained, T0)
    (version.path / "models.pkl").write_bytes(b"not a pickle")
    with pytest.raises(Conflict, match=version.name):
        store.loadable(version)


def test_a_damaged_current_pointer_means_no_current_version(
    tmp_path: Path, trained: TrainedModels
) -> None:
    store = ArtifactStore(tmp_path)
    store.save(trained, T0)
    (tmp_path / "models" / "current").write_bytes(b"\xff\xfe\x00garbage")
    assert store.current() is None
    assert store.listing()["current"] is None
