"""Reproducible speed benchmarks: ``python -m benchmarks`` writes benchmarks/RESULTS.md."""
