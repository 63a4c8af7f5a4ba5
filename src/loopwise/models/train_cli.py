"""``loopwise train`` and ``loopwise models list|rollback`` on a data directory.

``train`` opens the data directory like ``serve`` does, trains the workspace's models on its
event log (``training`` section of the workspace), stores a new version under
``<data-dir>/models/`` and makes it current; a running server picks it up on its next restart,
or at once when trained through ``POST /v1/admin/train``.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from loopwise.cli_options import (
    DEFAULT_DATA_DIR,
    DataDir,
    JsonFlag,
    WorkspaceFile,
    console,
    fail,
    open_engine,
    progress_bar,
)
from loopwise.cli_tables import print_table
from loopwise.errors import LoopwiseError

#: ``loopwise train --tune`` without ``--tune-seconds`` nor ``training.tune_seconds``.
DEFAULT_TUNE_SECONDS = 60.0

models_app = typer.Typer(help="Trained model versions: list, roll back.", no_args_is_help=True)


def metrics_table(metadata: dict[str, Any]) -> Table | None:
    metrics = metadata.get("metrics", {})
    models = metrics.get("models") if isinstance(metrics, dict) else None
    if not models:
        return None
    columns = ["ndcg@10", "recall@20", "precision@10", "map@10", "coverage@10"]
    table = Table(title="Temporal holdout (last 20% of each user's interactions)")
    table.add_column("model", no_wrap=True)
    for column in columns:
        table.add_column(column, justify="right", no_wrap=True)
    for name, values in models.items():
        table.add_row(name, *(f"{values.get(c, 0.0):.4f}" for c in columns))
    return table


def train_command(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    workspace: WorkspaceFile = None,
    as_json: JsonFlag = False,
    tune: Annotated[
        bool,
        typer.Option(
            "--tune",
            help="Tune the hybrid's settings with Optuna on a validation split carved from the "
            "training data, within --tune-seconds.",
        ),
    ] = False,
    tune_seconds: Annotated[
        float | None,
        typer.Option(
            "--tune-seconds",
            min=1.0,
            help=f"Tuning budget in seconds (implies --tune; default {DEFAULT_TUNE_SECONDS:g}, "
            "or the workspace's training.tune_seconds).",
        ),
    ] = None,
) -> None:
    """Train the workspace's models on the event log and make the new version current."""
    with open_engine(data_dir, workspace) as engine:
        budget: float | None = None
        if tune or tune_seconds is not None:
            configured = engine.workspace.training.tune_seconds
            budget = tune_seconds or configured or DEFAULT_TUNE_SECONDS
        if as_json:
            metadata = engine.train_models(tune_seconds=budget)
        else:
            with progress_bar() as progress:
                task = progress.add_task("training", total=None)

                def report(step: str, done: int, total: int) -> None:
                    progress.update(
                        task, description=f"training: {step}", completed=done, total=total
                    )

                metadata = engine.train_models(progress=report, tune_seconds=budget)
    if as_json:
        console.print_json(json.dumps(metadata))
        return
    window = metadata["data_window"]
    console.print(
        f"Trained {', '.join(metadata['models'])} on {window['events']} interactions of "
        f"{window['users']} users and {window['items']} items "
        f"({window['first_event']} .. {window['last_event']}) in "
        f"{metadata['training_seconds']:.2f} s."
    )
    tuning = (metadata.get("tuning") or {}).get("hybrid")
    if tuning:
        console.print(
            f"Tuned with Optuna: {tuning['trials']} trials in {tuning['seconds']:.1f} s; "
            f"validation ndcg@10 {tuning['default_ndcg']:.4f} (defaults) -> "
            f"{tuning['best_ndcg']:.4f}."
        )
    table = metrics_table(metadata)
    if table is not None:
        print_table(table, console)
    else:
        skipped = metadata.get("metrics", {}).get("skipped", "no holdout")
        console.print(f"No holdout metrics: {skipped}")
    console.print(f"Version [bold]{metadata['version']}[/bold] is now current.")


@models_app.command("list")
def list_command(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """List stored model versions, newest first."""
    from loopwise.models.artifacts import ArtifactStore

    listing = ArtifactStore(data_dir).listing()
    if as_json:
        console.print_json(json.dumps(listing))
        return
    if not listing["versions"]:
        console.print(f"No model versions in {data_dir / 'models'}; run `loopwise train`.")
        return
    console.print(f"Model versions in {data_dir / 'models'} (* = current):")
    for v in listing["versions"]:
        hybrid = v["metrics"].get("models", {}).get("hybrid", {}) if v["metrics"] else {}
        window = v["data_window"]
        quality = f", hybrid ndcg@10 {hybrid['ndcg@10']:.4f}" if "ndcg@10" in hybrid else ""
        console.print(
            f"{'*' if v['current'] else ' '} {v['version']}  {', '.join(v['models'])}; "
            f"{window.get('events', '?')} interactions up to {window.get('last_event', '?')}"
            f"{quality}"
        )


@models_app.command("rollback")
def rollback_command(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    version: Annotated[
        str | None, typer.Option(help="Version to make current (default: the previous one).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Make the previous (or the given) version current. A running server switches when it
    restarts; use POST /v1/admin/models/rollback to switch a running server at once."""
    from loopwise.models.artifacts import ArtifactStore

    store = ArtifactStore(data_dir)
    try:
        chosen = store.get(version) if version else store.previous()
        store.loadable(chosen)  # a version that cannot load must not become current
        store.set_current(chosen.name)
    except LoopwiseError as exc:
        raise fail(exc) from None
    if as_json:
        console.print_json(json.dumps({"current": chosen.name}))
    else:
        console.print(f"Version [bold]{chosen.name}[/bold] is now current.")
