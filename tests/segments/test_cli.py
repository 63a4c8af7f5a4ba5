"""``loopwise cluster`` on a data directory: report, JSON, publication, refusal."""

from __future__ import annotations

from pathlib import Path

import orjson
from typer.testing import CliRunner

from loopwise.cli import app
from loopwise.engine import Engine
from tests.segments.population import ingest_groups

runner = CliRunner()
ENV = {"LOOPWISE_WRITE_KEY": "w", "LOOPWISE_SERVER_KEY": "s", "LOOPWISE_ADMIN_KEY": "a"}


def data_dir_with(tmp_path: Path, per_group: int) -> Path:
    data = tmp_path / "data"
    engine, _ = Engine.open(data, environ=ENV)
    try:
        ingest_groups(engine, engine.clock, per_group)
    finally:
        engine.close()
    return data


def test_cluster_prints_the_clusters_and_publishes_them(tmp_path: Path) -> None:
    data = data_dir_with(tmp_path, per_group=8)
    result = runner.invoke(
        app, ["cluster", "--data-dir", str(data), "--k-min", "2", "--k-max", "5"], env=ENV
    )
    assert result.exit_code == 0, result.output
    assert "silhouette by k: k=2:" in result.output and "k=5:" in result.output
    assert "chose k=3" in result.output
    assert "cluster_1" in result.output and "Lapsed" in result.output
    engine, _ = Engine.open(data, environ=ENV)
    try:
        published = engine.clusters()
        assert published["published"] and published["k"] == 3
        view = engine.profile_view("hiker-2")
        assert view is not None
        hiker_cluster = view["profile"]["cluster"]
        assert hiker_cluster in view["segments"]
        names = {c["key"]: c["name"] for c in published["clusters"]}
        assert names[hiker_cluster].startswith("Lapsed")
    finally:
        engine.close()


def test_cluster_json_is_machine_readable(tmp_path: Path) -> None:
    data = data_dir_with(tmp_path, per_group=8)
    result = runner.invoke(app, ["cluster", "--data-dir", str(data), "--json"], env=ENV)
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.output)
    assert report["k"] == 3 and report["profiles"] == 24
    assert set(report["silhouette_by_k"]) == {str(k) for k in range(2, 9)}
    assert sum(c["size"] for c in report["clusters"]) == 24
    assert all(c["distinctive"] for c in report["clusters"])


def test_cluster_refuses_too_few_profiles(tmp_path: Path) -> None:
    data = data_dir_with(tmp_path, per_group=2)
    result = runner.invoke(app, ["cluster", "--data-dir", str(data)], env=ENV)
    assert result.exit_code == 2
    assert "Only 6 profiles" in result.output and "at least 20" in result.output
    bad = runner.invoke(app, ["cluster", "--data-dir", str(data), "--k-min", "1"], env=ENV)
    assert bad.exit_code == 2 and "k_min" in bad.output
