"""``loopwise bandits show|reset``: what each bandit slot has learned, and starting over."""

from __future__ import annotations

import json

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

bandits_app = typer.Typer(
    help="Bandit block slots: what they learned (rebuilt from the decision log), or reset them.",
    no_args_is_help=True,
    add_completion=False,
)


@bandits_app.command("show")
def show_command(
    data_dir: DataDir = DEFAULT_DATA_DIR, workspace: WorkspaceFile = None, as_json: JsonFlag = False
) -> None:
    """Per bandit slot and bucket: each variant's decisions, successes and rate."""
    with open_engine(data_dir, workspace) as engine:
        state = engine.bandit_state()
    if as_json:
        typer.echo(json.dumps({"bandits": state}, indent=2))
        return
    if not state:
        console.print("No bandit has decided anything yet.")
        return
    table = Table(title="Bandits", title_justify="left")
    for column in ("slot", "bucket", "algorithm", "variant", "decisions", "successes", "rate"):
        table.add_column(column)
    for learner in state:
        for variant, arm in learner["arms"].items():
            rate = "-" if arm["rate"] is None else f"{arm['rate']:.2%}"
            table.add_row(
                learner["slot"], learner["bucket"], learner["algorithm"], variant,
                str(arm["decisions"]), str(arm["successes"]), rate,
            )  # fmt: skip
    console.print(table)


@bandits_app.command("reset")
def reset_command(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    workspace: WorkspaceFile = None,
    yes: bool = typer.Option(False, "--yes", help="Do not ask."),
) -> None:
    """Forget what every bandit learned (decisions logged so far no longer count)."""
    if not yes and not typer.confirm("Forget what every bandit learned?"):
        raise typer.Exit(code=1)
    with open_engine(data_dir, workspace) as engine:
        engine.services.bandits.reset()
    console.print("Bandits reset: they start again from their priors.")
