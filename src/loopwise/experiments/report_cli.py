"""``loopwise experiments list|report``: experiment results from a data directory.

Opens the engine on the data directory (like ``serve``), so the report is computed from the same
exposure and event logs as ``GET /v1/experiments/{key}/results``. Tables by default, ``--json``
for scripts (the API's document).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from loopwise.cli_options import (
    DEFAULT_DATA_DIR,
    DataDir,
    JsonFlag,
    WorkspaceFile,
    console,
    open_engine,
)
from loopwise.cli_tables import print_table

experiments_app = typer.Typer(
    help="Experiments of a data directory: list them, report results per arm and segment.",
    no_args_is_help=True,
    add_completion=False,
)


def _num(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}g}"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:+.1f}%"


@experiments_app.command("list")
def list_command(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    workspace: WorkspaceFile = None,
    as_json: JsonFlag = False,
) -> None:
    """List the workspace's experiments with status and exposed users."""
    with open_engine(data_dir, workspace) as engine:
        experiments = engine.list_experiments()
    if as_json:
        typer.echo(json.dumps({"experiments": experiments}, indent=2))
        return
    table = Table(title="Experiments", title_justify="left")
    for column in ("key", "slot", "status", "arms", "metrics", "exposed users"):
        table.add_column(column)
    for e in experiments:
        arms = ", ".join(f"{a['key']} {a['weight']:.0%}" for a in e["arms"])
        table.add_row(
            e["key"], e["slot"], e["status"], arms, ", ".join(e["metrics"]), str(e["exposed_users"])
        )
    print_table(table, console)


def _metric_table(metric: dict[str, Any]) -> Table:
    kind = "guardrail " if metric["guardrail"] else ""
    table = Table(title=f"{kind}metric {metric['key']} ({metric['kind']})", title_justify="left")
    for column in (
        "arm",
        "users",
        "conversions",
        "value",
        "lift",
        "95% CI",
        "p-value",
        "chance to win",
        "always-valid CI",
        "CUPED lift",
    ):
        table.add_column(column)
    for row in metric["results"]:
        found = row.get("lift")
        sequential = row.get("sequential") or {}
        cuped = row.get("cuped") or {}
        table.add_row(
            row["arm"],
            str(row["users"]),
            str(row["conversions"]),
            _num(row["value"]),
            _pct(found["relative"]) if found else ("control" if "lift" not in row else "—"),
            f"{_pct(found['ci_low'])} to {_pct(found['ci_high'])}" if found else "",
            _num(row.get("p_value"), 3),
            f"{row['chance_to_win']:.1%}" if found else "",
            f"{_pct(sequential['ci_low'])} to {_pct(sequential['ci_high'])}" if sequential else "",
            _pct(cuped.get("relative")) if cuped else "",
        )
    return table


def print_report(report: dict[str, Any], console: Console) -> None:
    """The results document as tables and the verdict."""
    segment = f" — users in segment {report['segment']}" if report["segment"] else ""
    console.print(
        f"[bold]{report['experiment']}[/bold] on slot {report['slot']} ({report['status']}), "
        f"control {report['control']}{segment}",
        highlight=False,
    )
    arms = ", ".join(f"{a['key']}: {a['users']} users ({a['weight']:.0%})" for a in report["arms"])
    console.print(f"Arms: {arms}", highlight=False)
    srm = report["srm"]
    if srm["p_value"] is not None:
        status = "[red]MISMATCH[/red]" if srm["flagged"] else "ok"
        console.print(f"Sample ratio: {status} (p = {srm['p_value']:.3g})", highlight=False)
    for metric in report["metrics"]:
        print_table(_metric_table(metric), console)
    significant = [s for s in report["segments"] if s["significant"]]
    if significant:
        table = Table(title="Segments with a significant lift (BH-adjusted)", title_justify="left")
        for column in ("segment", "metric", "arm", "lift", "p adjusted"):
            table.add_column(column)
        for s in significant:
            table.add_row(
                s["segment"],
                s["metric"],
                s["arm"],
                _pct(s["lift"]["relative"]),
                _num(s["p_adjusted"], 3),
            )
        print_table(table, console)
    console.print(f"[bold]Verdict:[/bold] {report['verdict']}", highlight=False)


@experiments_app.command("report")
def report_command(
    key: Annotated[str, typer.Argument(help="Experiment key (or holdout).")],
    segment: Annotated[
        str | None, typer.Option("--segment", help="Only users in this segment at exposure.")
    ] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    workspace: WorkspaceFile = None,
    as_json: JsonFlag = False,
) -> None:
    """Results per arm and metric (lift, CI, p-value, chance to win, SRM) and a verdict."""
    with open_engine(data_dir, workspace) as engine:
        report = engine.experiment_results(key, segment)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    print_report(report, console)
