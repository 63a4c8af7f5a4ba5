"""``loopwise train-scores`` and ``loopwise evaluate-scores`` on a data directory.

``train-scores`` opens the data directory like ``serve`` does, builds point-in-time examples from
its event log, trains and calibrates every score of the workspace's ``scores:`` section, stores a
new version under ``<data-dir>/scores/`` (with its report and calibration plots) and makes it
current; a running server on the same data directory serves it within about a second (its
change watcher reads the ``current`` pointer). ``evaluate-scores`` measures a stored version on
the log as it is now and writes the report and plots.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
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


def report_table(title: str, report: dict[str, Any]) -> Table:
    table = Table(title=title)
    for column in ("score", "label", "moments", "base rate", "AUC", "PR-AUC", "Brier", "ECE"):
        table.add_column(column, justify="left" if column in ("score", "label") else "right")
    for key, result in report.items():
        overall = result.get("overall")
        if overall is None:
            table.add_row(key, str(result.get("skipped", "")), "", "", "", "", "", "")
            continue
        table.add_row(
            key,
            str(result.get("label", "")),
            f"{overall['n']:,}",
            f"{overall['base_rate']:.3f}",
            _fmt(overall.get("auc")),
            _fmt(overall.get("pr_auc")),
            _fmt(overall.get("brier")),
            _fmt(overall.get("ece")),
        )
    return table


def segment_table(report: dict[str, Any], limit: int = 8) -> Table:
    table = Table(title="Per segment (largest first)")
    for column in ("score", "segment", "moments", "base rate", "AUC", "Brier", "ECE"):
        table.add_column(column, justify="left" if column in ("score", "segment") else "right")
    for key, result in report.items():
        segments = sorted(
            (result.get("segments") or {}).items(), key=lambda kv: -int(kv[1].get("n", 0))
        )
        for segment, values in segments[:limit]:
            table.add_row(
                key,
                segment,
                f"{values['n']:,}",
                f"{values['base_rate']:.3f}",
                _fmt(values.get("auc")),
                _fmt(values.get("brier")),
                _fmt(values.get("ece")),
            )
    return table


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else "-"


def train_scores_command(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    workspace: WorkspaceFile = None,
    as_json: JsonFlag = False,
) -> None:
    """Train the workspace's predictive scores (profile.scores.*) on the event log and make the
    new version current."""
    with open_engine(data_dir, workspace) as engine:
        metadata = engine.train_scores()
    if as_json:
        console.print_json(json.dumps(metadata))
        return
    window = metadata["data_window"]
    console.print(
        f"Trained {', '.join(metadata['scores'])} on {window['moments']:,} moments of "
        f"{window['people']:,} people ({window['events']:,} events, {window['first_event']} .. "
        f"{window['last_event']}) in {metadata['training_seconds']:.1f} s."
    )
    for key, why in metadata.get("skipped", {}).items():
        console.print(f"Skipped {key}: {why}")
    report = metadata["report"]
    print_table(report_table("Test slice: the latest moments, never trained on", report), console)
    print_table(segment_table(report), console)
    console.print(f"Calibration plots: {metadata['path']}/calibration-<score>.png")
    console.print(f"Version [bold]{metadata['version']}[/bold] is now current.")


def evaluate_scores_command(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    workspace: WorkspaceFile = None,
    version: Annotated[
        str | None, typer.Option(help="Version to measure (default: the current one).")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(help="Directory for report.json and the plots (default: in the version)."),
    ] = None,
    list_versions: Annotated[
        bool, typer.Option("--list", help="List the stored versions instead.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Measure a score model version on the event log as it is now: AUC, PR-AUC, Brier score,
    calibration (table and plot), overall and per segment."""
    with open_engine(data_dir, workspace) as engine:
        if list_versions:
            listing = engine.score_versions()
            if as_json:
                console.print_json(json.dumps(listing))
                return
            for v in listing["versions"]:
                mark = "*" if v["current"] else " "
                aucs = ", ".join(f"{k} AUC {a:.3f}" for k, a in v["auc"].items() if a is not None)
                console.print(f"{mark} {v['version']}  {', '.join(v['scores'])}; {aucs}")
            if not listing["versions"]:
                console.print("No score model versions yet; run `loopwise train-scores`.")
            return
        result = engine.evaluate_scores(version, output)
    if as_json:
        console.print_json(json.dumps(result))
        return
    console.print(
        f"Version {result['version']} on {result['moments']:,} moments of {result['events']:,} "
        "events."
    )
    report = result["report"]
    print_table(report_table("Scores now", report), console)
    print_table(segment_table(report), console)
    console.print(f"Report and calibration plots: {result['path']}")
