"""``loopwise demo``: run the simulated store against a live engine and report the experiment."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from loopwise.cli_options import console, fail
from loopwise.cli_tables import print_table
from loopwise.errors import LoopwiseError
from loopwise.sim.demo import CLICK_METRIC, DemoConfig, DemoResult, run_demo
from loopwise.sim.report import (
    ARM_HEADERS,
    PRIMARY_METRIC,
    arm_rows,
    lift_text,
    render_html,
    treatment_row,
)


def demo(
    days: Annotated[int, typer.Option(min=1, max=365, help="Simulated days.")] = 14,
    users: Annotated[int, typer.Option(min=50, max=200_000, help="Simulated users.")] = 4000,
    seed: Annotated[int, typer.Option(help="Seed of the simulated population.")] = 7,
    in_process: Annotated[
        bool, typer.Option("--in-process", help="Call the engine in process instead of HTTP.")
    ] = False,
    report: Annotated[
        Path, typer.Option("--report", help="Where to write the HTML report.")
    ] = Path("loopwise-demo-report.html"),
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="Keep the demo's engine data here (default: temporary)."),
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the engine's results as JSON.")
    ] = None,
    strategy: Annotated[
        str,
        typer.Option(help="The personalized arm's strategy (e.g. category_affinity, hybrid)."),
    ] = "category_affinity",
    train_every: Annotated[
        int,
        typer.Option(
            min=0,
            help="Train the engine's models after day 1 and then every this many days; the "
            "experiment then starts on day 2 (0 = never; use with a model --strategy).",
        ),
    ] = 0,
    bandit_visitors: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Also run the bandit-vs-A/B/n simulation (in process) with this many visitors "
            "and add its regret curve to the report (default: --users, at most 6000; 0 = skip; "
            "docs/bandits.md).",
        ),
    ] = None,
) -> None:
    """Simulate shoppers against a live engine with a personalized-vs-popular experiment."""
    config = DemoConfig(
        days=days,
        users=users,
        seed=seed,
        in_process=in_process,
        personalized_strategy=strategy,
        train_every_days=train_every,
    )
    for path in (report, json_out):  # before the run: a missing folder must not lose its output
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
    mode = "in process" if in_process else "over HTTP (a server on a free port)"
    console.print(f"[bold]Loopwise demo[/bold]: {users} users, {days} days, engine {mode}")
    with tempfile.TemporaryDirectory(prefix="loopwise-demo-") as scratch:
        where = data_dir or Path(scratch)
        with Progress(
            TextColumn("simulating"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("days · {task.fields[visits]} visits"),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("days", total=days, visits=0)
            try:
                result = run_demo(
                    config,
                    where,
                    on_day=lambda day, visits: progress.update(
                        task, completed=day + 1, visits=visits
                    ),
                )
            except LoopwiseError as exc:
                raise fail(exc) from None
    print_result(result)
    bandits = None
    if bandit_visitors is None:
        bandit_visitors = min(users, 6000)
    if bandit_visitors:
        from loopwise.bandits.simulate import simulate

        console.print(f"bandit vs A/B/n: {bandit_visitors} visitors (in process)...")
        bandits = simulate(bandit_visitors, seed)
        rates = bandits.expected_rate
        console.print(
            f"  bandit {rates['bandit']:.2%} vs A/B/n {rates['ab']:.2%} click rate "
            f"({bandits.gain:+.1%}); regret {bandits.to_dict()['final_regret']}"
        )
    report.write_text(render_html(result, bandits), encoding="utf-8")
    console.print(f"report: {report.resolve()}")
    if json_out is not None:
        document = {"results": result.results, "segments": result.by_segment}
        json_out.write_text(json.dumps(document, indent=2), encoding="utf-8")


def print_result(result: DemoResult) -> None:
    for metric in (PRIMARY_METRIC, "revenue", CLICK_METRIC):
        table = Table(title=f"{metric} per exposed user (the engine's results)")
        for header in ARM_HEADERS:
            table.add_column(header)
        for cells in arm_rows(result.results, metric):
            table.add_row(*cells)
        print_table(table, console)
    srm = result.results.get("srm") or {}
    srm_p = srm.get("p_value")  # null before anyone was exposed
    shown = f"{srm_p:.4f}" if isinstance(srm_p, int | float) else "-"
    console.print(
        f"sample ratio: p = {shown}"
        + (" [red]MISMATCH[/red]" if srm.get("flagged") else " (no mismatch)")
    )
    segments = Table(title=f"{PRIMARY_METRIC}: lift of the personalized arm per segment")
    for header in ("segment", "lift", "p-value"):
        segments.add_column(header)
    for key, found in result.by_segment.items():
        row = treatment_row(found, PRIMARY_METRIC)
        if row is not None:
            p = row.get("p_value")
            segments.add_row(key, lift_text(row), f"{p:.4f}" if isinstance(p, float) else "-")
    print_table(segments, console)
    truth = Table(title="simulator ground truth (per visit; not seen by the engine)")
    for header in ("arm", "visits", "with an order", "rate", "shown items clicked"):
        truth.add_column(header)
    for arm, summary in sorted(result.ground_truth.items()):
        truth.add_row(
            arm,
            str(summary.sessions),
            str(summary.conversions),
            f"{summary.conversion_rate:.2%}",
            f"{summary.click_rate:.2%}",
        )
    print_table(truth, console)
    console.print(f"[bold]verdict:[/bold] {result.results.get('verdict', 'none')}")
    journey = {a["key"]: a.get("users", 0) for a in result.journey.get("arms", [])}
    row = treatment_row(result.journey, "converted") if result.journey else None
    lift = "-" if row is None else row.get("note") or lift_text(row)
    console.print(
        f"cart-abandonment journey: {journey.get('journey', 0)} people in it, "
        f"{journey.get('holdout', 0)} held out; conversion lift against the holdout: {lift} "
        "(the simulated shoppers do not read reminders, so expect none)",
        highlight=False,
    )
    cache = result.cache
    console.print(
        f"pre-render cache: {cache.get('hit', 0)} of {sum(cache.values())} slot decisions "
        f"served from it ({result.cache_hit_ratio:.1%}); {cache.get('miss', 0)} decided and "
        f"cached, {cache.get('live', 0)} live (personal)"
    )
    console.print(
        f"{result.visits} visits, {result.events} events in {result.seconds:.0f} s ({result.mode})"
    )
