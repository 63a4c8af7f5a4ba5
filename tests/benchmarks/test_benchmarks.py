"""Smoke tests of the benchmark helpers at tiny sizes (no timings asserted: figures live in
benchmarks/RESULTS.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmarks.__main__ import BENCHMARKS, main
from benchmarks.population import build_engine, catalog, sample_workspace

from benchmarks import bench_decide, bench_http, bench_memory, report

WRK_OUTPUT = """Running 10s test @ http://127.0.0.1:8000/healthz
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     5.10ms    2.00ms  40.00ms   90.00%
  Latency Distribution
     50%    4.88ms
     75%    6.00ms
     90%    7.00ms
     99%    1.20s
  28000 requests in 10.00s, 4.00MB read
  Non-2xx or 3xx responses: 3
Requests/sec:   2800.50
Transfer/sec:    400.00KB
"""


def test_wrk_output_is_read_with_units() -> None:
    parsed = bench_http.parse_wrk(WRK_OUTPUT)
    assert parsed["requests_per_s"] == 2800.5
    assert parsed["p50_ms"] == 4.88
    assert parsed["p99_ms"] == 1200.0
    assert parsed["non_2xx"] == 3


def test_the_catalog_grows_by_copies_with_new_ids() -> None:
    items = catalog(450, sample_workspace())
    assert len(items) == 450
    assert len({i.id for i in items}) == 450
    assert items[300].categories == items[100].categories


def test_a_cloned_population_is_linked_and_warm() -> None:
    engine, ids = build_engine(profiles=30, items=250, templates=10, events_per_user=3)
    assert len(ids) == 30
    assert len(engine.services.views.profiles) == 30
    view = engine.profile_view(ids[25])
    assert view is not None and view["profile"]["events"] == 3


def test_decide_and_memory_runs_render_their_tables() -> None:
    decide = bench_decide.run(profiles=20, items=220, requests=10)
    assert decide["profiles"] == 20 and decide["p50_ms"] <= decide["p99_ms"]
    assert "| 20 | 220 | 10 |" in "\n".join(report.decide(decide))
    rows = bench_memory.run(sizes=(20,), events_per_profile=4, reducer_size=20)
    assert [row["method"] for row in rows] == ["reducer", "profile view"]
    assert all(row["traced_bytes_per_profile"] > 0 for row in rows)
    assert "| reducer | 20 | 4 |" in "\n".join(report.memory(rows))


def test_only_runs_the_chosen_benchmark(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    names = [b.name for b in BENCHMARKS]
    assert names == [
        "decide", "http", "ingest", "freshness", "startup", "results", "memory", "storage",
        "journeys", "channels", "models", "bandits", "ope", "scores", "sequence",
        "scale",
    ]  # fmt: skip
    out = tmp_path / "RESULTS.md"
    bench = next(b for b in BENCHMARKS if b.name == "memory")
    monkeypatch.setitem(bench.quick, "sizes", (10,))
    monkeypatch.setitem(bench.quick, "reducer_size", 10)
    main(["--quick", "--only", "memory", "--output", str(out), "--note", "test run"])
    text = out.read_text()
    assert "`python -m benchmarks --quick --only memory`" in text
    assert "- note: test run" in text
    assert "## memory per profile" in text and "## decide" not in text


def test_the_channels_run_renders_its_tables(tmp_path: Path) -> None:
    from benchmarks import bench_channels

    result = bench_channels.run(profiles=40, items=220, requests=5)
    assert result["batch_list"]["decided"] == 40
    assert result["batch_capped"]["skipped"] == {"frequency_cap": 40}
    text = "\n".join(bench_channels.markdown(result))
    assert "| rerank, 100 candidates |" in text and "people/s" in text
    workers = result["workers"]  # the CLI with 1 and 2 worker processes, on SQLite
    for run in ("newsletter", "email-hero"):  # every tenth person withdrew marketing
        assert [workers[f"{run}_{n}"]["decided"] for n in (1, 2)] == [36, 36]
    one, two = workers["segment_1"], workers["segment_2"]
    assert (one["audience"], one["decided"]) == (two["audience"], two["decided"])
    assert 0 < one["decided"] < one["audience"] <= 40
    assert "| users → `newsletter` (list, 3 items) | 2 | 40 | 36 |" in text
