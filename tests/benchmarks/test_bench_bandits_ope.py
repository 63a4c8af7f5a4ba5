"""Smoke tests of the bandit and OPE benchmarks at tiny sizes (no timings asserted)."""

from __future__ import annotations

from benchmarks import bench_bandits, bench_ope


def test_bandits_benchmark_renders() -> None:
    result = bench_bandits.run(visitors=120, requests=20, warm=20, log=30)
    text = "\n".join(bench_bandits.markdown(result))
    assert "fixed A/B/n" in text and "linear Thompson" in text
    assert result["rebuild"]["decisions"] == 30


def test_ope_benchmark_renders() -> None:
    result = bench_ope.run(decisions=150, bootstrap=100)
    text = "\n".join(bench_ope.markdown(result))
    assert "decision log: 150 decisions" in text
    if result["obd"] is not None:
        assert "0.00455" in text
