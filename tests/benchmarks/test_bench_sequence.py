"""The sequence benchmark on a tiny log: every baseline and the hybrid are measured and
rendered (figures come from ``python -m benchmarks --only sequence``)."""

from __future__ import annotations

from benchmarks import bench_sequence


def test_compare_measures_baselines_and_hybrid_and_renders() -> None:
    data = bench_sequence.movielens_like(60, 300, 1_800, seed=4)
    run = bench_sequence.compare(data, tune_seconds=1.0)
    assert set(run["models"]) == {
        "implicit ALS (tuned)", "EASE (tuned, all items)", "hybrid (default)",
    }  # fmt: skip
    hybrid = run["models"]["hybrid (default)"]
    assert hybrid["fit_and_tune_seconds"] >= hybrid["fit_seconds"] > 0
    assert run["tuning"]["ease"]["trials"] >= 1
    text = "\n".join(bench_sequence.markdown({"tune_seconds": 1.0, "runs": [run]}))
    assert "| hybrid (default) |" in text and "nDCG@10" in text
