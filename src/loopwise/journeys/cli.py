"""``loopwise journeys list|show|outbox``: journeys of a data directory and their counts."""

from __future__ import annotations

import json
from typing import Annotated

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
)
from loopwise.cli_tables import print_table
from loopwise.errors import LoopwiseError

journeys_app = typer.Typer(
    help="Journeys of a data directory: list them, show one with its per-step counts.",
    no_args_is_help=True,
    add_completion=False,
)


@journeys_app.command("list")
def list_command(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    workspace: WorkspaceFile = None,
    as_json: JsonFlag = False,
) -> None:
    """List the workspace's journeys with how many entered, converted and left."""
    with open_engine(data_dir, workspace) as engine:
        journeys = engine.list_journeys()
    if as_json:
        typer.echo(json.dumps({"journeys": journeys}, indent=2))
        return
    table = Table(title="Journeys", title_justify="left")
    for column in ("key", "status", "trigger", "holdout", "entered", "in journey", "converted"):
        table.add_column(column)
    for j in journeys:
        trigger = ", ".join(f"{k}: {v}" for k, v in j["trigger"].items())
        table.add_row(
            j["key"], j["status"], trigger, f"{j['holdout_percent']:g}%", str(j["entered"]),
            str(j["in_journey"]), str(j["converted"]),
        )  # fmt: skip
    print_table(table, console)


@journeys_app.command("show")
def show_command(
    key: Annotated[str, typer.Argument(help="Journey key.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
    workspace: WorkspaceFile = None,
    as_json: JsonFlag = False,
) -> None:
    """One journey's steps with their counts: entered, waiting, sent, converted, exited."""
    with open_engine(data_dir, workspace) as engine:
        try:
            journey = engine.journey(key)
        except LoopwiseError as exc:
            raise fail(exc) from None
    if as_json:
        typer.echo(json.dumps(journey, indent=2))
        return
    console.print(
        f"[bold]{journey['key']}[/bold] {journey['name']} — {journey['status']}, "
        f"{journey['entered']} entered, {journey['holdout']} held out, "
        f"{journey['converted']} converted"
        + (f"; lift: loopwise experiments report {journey['experiment']}"
           if journey["experiment"] else ""),
        highlight=False,
    )  # fmt: skip
    table = Table(title="Steps", title_justify="left")
    for column in ("step", "kind", "entered", "waiting", "sent", "converted", "exited", "capped"):
        table.add_column(column)
    for s in journey["steps"]:
        kind = s["kind"] + (f" {s['action']}" if s["action"] else "")
        table.add_row(
            s["id"], kind, *(str(s[m]) for m in
                             ("entered", "waiting", "sent", "converted", "exited", "capped")),
        )  # fmt: skip
    print_table(table, console)


@journeys_app.command("outbox")
def outbox_command(
    status: Annotated[
        str | None, typer.Option(help="List deliveries in this status (e.g. dead).")
    ] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    workspace: WorkspaceFile = None,
    as_json: JsonFlag = False,
) -> None:
    """The outbox: deliveries per status, and the dead-letter list with --status dead."""
    if status is not None and status not in ("pending", "delivered", "dead", "dropped"):
        raise typer.BadParameter("use pending, delivered, dead or dropped", param_hint="--status")
    with open_engine(data_dir, workspace) as engine:
        document = engine.outbox(status, 100)
    if as_json:
        typer.echo(json.dumps(document, indent=2))
        return
    console.print(
        ", ".join(f"{name} {n}" for name, n in document["counts"].items()), highlight=False
    )
    if status is not None:
        table = Table(title=f"Deliveries ({status})", title_justify="left")
        for column in ("id", "type", "journey/segment", "attempts", "last error"):
            table.add_column(column)
        for d in document["deliveries"]:
            table.add_row(
                str(d["id"]), str(d["type"]), str(d["journey"] or d["segment"] or ""),
                str(d["attempts"]), str(d["last_error"] or ""),
            )  # fmt: skip
        print_table(table, console)
