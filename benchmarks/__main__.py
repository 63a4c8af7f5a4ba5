"""``python -m benchmarks [--quick] [--only NAME ...]`` — run the benchmarks and write
benchmarks/RESULTS.md.

Each benchmark is one entry of ``BENCHMARKS``: its name, the keyword arguments of its quick and
full runs, its ``run`` function and a ``report`` that renders its result as Markdown lines. To add
one, add an entry.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import (
    bench_bandits,
    bench_channels,
    bench_decide,
    bench_freshness,
    bench_http,
    bench_ingest,
    bench_journeys,
    bench_memory,
    bench_models,
    bench_ope,
    bench_results,
    bench_scores,
    bench_startup,
    bench_storage,
)
from benchmarks import report as r
from benchmarks.machine import describe

RESULTS = Path(__file__).parent / "RESULTS.md"


@dataclass(frozen=True)
class Benchmark:
    name: str
    run: Callable[..., Any]
    report: Callable[[Any], list[str]]
    quick: dict[str, Any]
    full: dict[str, Any]


BENCHMARKS: list[Benchmark] = [
    Benchmark(
        "decide",
        bench_decide.run,
        r.decide,
        quick={"profiles": 5_000, "items": 2_000, "requests": 1_000},
        full={"profiles": 100_000, "items": 10_000, "requests": 5_000},
    ),
    Benchmark(
        "http",
        bench_http.run,
        r.http,
        quick={"users": 300, "seconds": 3, "rates": (100.0,)},
        full={"users": 2_000, "seconds": 15, "rates": (100.0, 500.0)},
    ),
    Benchmark(
        "ingest",
        bench_ingest.run,
        r.ingest,
        quick={"batches": 40},
        full={"batches": 400},
    ),
    Benchmark(
        "freshness",
        bench_freshness.run,
        r.freshness,
        quick={"trials": 30, "background_rate": 500.0},
        full={"trials": 300, "background_rate": 2000.0},
    ),
    Benchmark(
        "startup",
        bench_startup.run,
        bench_startup.markdown,
        quick={"sizes": (10_000,), "repeats": 1},
        full={"sizes": (10_000, 100_000, 1_000_000), "repeats": 3},
    ),
    Benchmark(
        "results",
        bench_results.run,
        bench_results.markdown,
        quick={"sizes": (1_000, 5_000), "requests": 30},
        full={"sizes": (1_000, 10_000, 50_000), "requests": 200},
    ),
    Benchmark(
        "memory",
        bench_memory.run,
        r.memory,
        quick={"sizes": (10_000,), "reducer_size": 1_000},
        full={"sizes": (100_000, 1_000_000), "reducer_size": 10_000},
    ),
    Benchmark(
        "storage",
        bench_storage.run,
        bench_storage.markdown,
        quick={"batches": 40, "rounds": 1},
        full={"batches": 500, "rounds": 3},
    ),
    Benchmark(
        "journeys",
        bench_journeys.run,
        bench_journeys.markdown,
        quick={"people": 5_000},
        full={"people": 100_000},
    ),
    Benchmark(
        "channels",
        bench_channels.run,
        bench_channels.markdown,
        quick={"profiles": 5_000, "items": 2_000, "requests": 300},
        full={"profiles": 100_000, "items": 10_000, "requests": 2_000},
    ),
    Benchmark(
        "models",
        bench_models.run,
        bench_models.markdown,
        quick={"quick": True},
        full={"quick": False},
    ),
    Benchmark(
        "bandits",
        bench_bandits.run,
        bench_bandits.markdown,
        quick={"visitors": 1500, "requests": 300, "warm": 300, "log": 1000},
        full={"visitors": 6000, "requests": 2000, "warm": 1000, "log": 5000},
    ),
    Benchmark(
        "ope",
        bench_ope.run,
        bench_ope.markdown,
        quick={"decisions": 1000, "bootstrap": 200},
        full={"decisions": 5000, "bootstrap": 1000},
    ),
    Benchmark(
        "scores",
        bench_scores.run,
        bench_scores.markdown,
        quick={"users": 400, "days": 28, "repeats": 2},
        full={"users": 3000, "days": 42, "repeats": 3},
    ),
]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small runs (a smoke test, < 2 min)")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=[b.name for b in BENCHMARKS],
        help="run only these benchmarks",
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the results")
    parser.add_argument("--note", default="", help="a line about the run (e.g. a busy machine)")
    args = parser.parse_args(argv)
    chosen = [b for b in BENCHMARKS if args.only is None or b.name in args.only]
    machine = describe()
    command = "python -m benchmarks" + (" --quick" if args.quick else "")
    if args.only:
        command += " --only " + " ".join(args.only)
    run_line = [
        f"- date: {machine['date']}",
        f"- machine: {machine['cpu']}, {machine['memory']}, {machine['platform']}",
        f"- python: {machine['python']}",
        f"- command: `{command}`",
        *([f"- note: {args.note}"] if args.note else []),
        "",
    ]
    sections = read_sections(args.output)
    for bench in chosen:
        print(f"{bench.name}...", flush=True)
        start = time.perf_counter()
        result = bench.run(**(bench.quick if args.quick else bench.full))
        print(f"{bench.name}: {result} ({time.perf_counter() - start:.0f} s)", flush=True)
        sections[bench.name] = "\n".join([*run_line, *bench.report(result)])
    write_sections(args.output, sections)
    print(f"wrote {args.output}")


HEADER = (
    "# Benchmark results\n\n"
    "Each section is rewritten by `python -m benchmarks --only <name>` and says when, where and "
    "by which command it was measured; the others are kept as they were.\n"
)


def read_sections(path: Path) -> dict[str, str]:
    """The sections of a results file, by benchmark name (text outside markers is dropped)."""
    if not path.exists():
        return {}
    sections: dict[str, str] = {}
    name: str | None = None
    body: list[str] = []
    for line in path.read_text().splitlines():
        if (
            line.startswith("<!-- bench:")
            and line.endswith("-->")
            and not line.startswith("<!-- bench:/")
        ):
            name, body = line[len("<!-- bench:") : -len("-->")].strip(), []
        elif line.startswith("<!-- bench:/"):
            if name is not None:
                sections[name] = "\n".join(body).strip("\n")
            name = None
        elif name is not None:
            body.append(line)
    return sections


def write_sections(path: Path, sections: dict[str, str]) -> None:
    order = [b.name for b in BENCHMARKS] + sorted(set(sections) - {b.name for b in BENCHMARKS})
    parts = [HEADER]
    for name in order:
        if name in sections:
            parts.append(f"<!-- bench:{name} -->\n{sections[name]}\n<!-- bench:/{name} -->\n")
    path.write_text("\n".join(parts))


if __name__ == "__main__":
    main()
