"""The sequence benchmark on a tiny log: every baseline and the hybrid are measured and
rendered (figures come from ``python -m benchmarks --only sequence``)."""

from __future__ import annotations

from pathlib import Path

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


def test_a_real_movielens_file_is_read_and_named_in_the_report(tmp_path: Path) -> None:
    generated = bench_sequence.movielens_like(40, 200, 1_200, seed=5).interactions
    ratings = tmp_path / "ml-100k.inter"
    lines = [f"{i.user}\t{i.item}\t4\t{int(i.timestamp)}" for i in generated]
    ratings.write_text(
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n" + "\n".join(lines) + "\n"
    )
    data = bench_sequence.movielens(ratings)
    assert data.name == "MovieLens (real): ml-100k.inter"
    assert len(data.interactions) == len(generated)
    run = bench_sequence.compare(data, tune_seconds=1.0)
    text = "\n".join(bench_sequence.markdown({"tune_seconds": 1.0, "runs": [run]}))
    assert "**MovieLens (real): ml-100k.inter**" in text and "not in the repository" in text
