"""``loopwise`` command line: serve, replay, import items, check a workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from loopwise import __version__
from loopwise.api.keys_cli import keys_app
from loopwise.api.server_limits import ServerLimits
from loopwise.bandits.cli import bandits_app
from loopwise.channels.cli import decide_batch_command
from loopwise.cli_options import (
    DEFAULT_DATA_DIR,
    DataDir,
    WorkspaceFile,
    console,
    fail,
    open_engine,
    progress_bar,
)
from loopwise.console.cli import users_app
from loopwise.errors import LoopwiseError
from loopwise.experiments.cli import stats_app
from loopwise.experiments.report_cli import experiments_app
from loopwise.journeys.cli import journeys_app
from loopwise.models.cli import evaluate_app
from loopwise.models.train_cli import models_app, train_command
from loopwise.ope.cli import ope_command
from loopwise.privacy.cli import audit_app, retention_app
from loopwise.scores.cli import evaluate_scores_command, train_scores_command
from loopwise.segments.cli import cluster_app
from loopwise.sim.cli import demo
from loopwise.storage.cli import backup_command, migrate_command
from loopwise.workspace.cli import history_command, workspace_app

app = typer.Typer(
    name="loopwise",
    help="Loopwise: self-hosted, real-time content personalization.",
    no_args_is_help=True,
    add_completion=False,
)
import_app = typer.Typer(help="Import data into a data directory.", no_args_is_help=True)
app.add_typer(import_app, name="import")
app.add_typer(stats_app, name="stats")
app.add_typer(evaluate_app, name="evaluate")
app.add_typer(audit_app, name="audit")
app.add_typer(retention_app, name="retention")
app.add_typer(experiments_app, name="experiments")
app.add_typer(journeys_app, name="journeys")
app.add_typer(cluster_app, name="cluster")
app.add_typer(keys_app, name="keys")
app.add_typer(models_app, name="models")
app.command("train")(train_command)
app.command("ope")(ope_command)
app.add_typer(bandits_app, name="bandits")
app.command("train-scores")(train_scores_command)
app.command("evaluate-scores")(evaluate_scores_command)
app.command("migrate")(migrate_command)
app.command("backup")(backup_command)
app.command("demo")(demo)
app.add_typer(workspace_app, name="workspace")
app.add_typer(users_app, name="users")
app.command("history")(history_command)
app.command("decide-batch")(decide_batch_command)


@app.command()
def version() -> None:
    """Print the version."""
    console.print(__version__)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    workspace: WorkspaceFile = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    event_time_clock: Annotated[
        bool,
        typer.Option(
            help="Simulation/backtest mode: the engine's clock follows the newest ingested event "
            "time (used by `loopwise demo`). Never for live traffic."
        ),
    ] = False,
    keep_alive_timeout: Annotated[
        float,
        typer.Option(
            envvar="LOOPWISE_KEEP_ALIVE_TIMEOUT",
            help="Seconds an idle kept-alive connection stays open.",
        ),
    ] = ServerLimits.keep_alive_timeout,
    header_timeout: Annotated[
        float,
        typer.Option(
            envvar="LOOPWISE_HEADER_TIMEOUT",
            help="Seconds a client has to send the request line and headers (408, closed).",
        ),
    ] = ServerLimits.header_timeout,
    body_timeout: Annotated[
        float,
        typer.Option(
            envvar="LOOPWISE_BODY_TIMEOUT",
            help="Seconds a client has to send the body after the headers (closed).",
        ),
    ] = ServerLimits.body_timeout,
    max_concurrent_requests: Annotated[
        int,
        typer.Option(
            envvar="LOOPWISE_MAX_CONCURRENT_REQUESTS",
            help="Requests in progress at once; more get 503 with Retry-After.",
        ),
    ] = ServerLimits.max_concurrent_requests,
    max_connections: Annotated[
        int,
        typer.Option(
            envvar="LOOPWISE_MAX_CONNECTIONS",
            help="Open connections at once; more "
            "get 503 and are closed (0: the open-file limit less 256).",
        ),
    ] = ServerLimits.max_connections,
) -> None:
    """Run the HTTP API (and the sample store) on SQLite."""
    import uvicorn

    from loopwise.api.app import create_app
    from loopwise.api.server_limits import ConcurrencyLimit, raise_open_file_limit
    from loopwise.api.server_protocol import protocol_class
    from loopwise.clock import EventTimeClock, system_clock
    from loopwise.engine import Engine
    from loopwise.privacy.retention import DailyRetention

    limits = ServerLimits(
        keep_alive_timeout=keep_alive_timeout,
        header_timeout=header_timeout,
        body_timeout=body_timeout,
        max_concurrent_requests=max_concurrent_requests,
        max_connections=max_connections,
    )
    try:
        limits.check()
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    open_files = raise_open_file_limit()
    try:
        clock = EventTimeClock() if event_time_clock else system_clock
        engine, new_keys = Engine.open(data_dir, workspace, clock=clock)
    except LoopwiseError as exc:
        raise fail(exc) from None
    conflict = engine.services.workspace.file_conflict
    if conflict is not None:
        console.print(
            f"[yellow]workspace:[/yellow] {conflict.message()}", markup=True, highlight=False
        )
    if engine.start_retraining():
        console.print(
            f"  retraining:  every {engine.workspace.training.retrain_every_minutes:g} minutes"
        )
    base = f"http://{host}:{port}"
    counts = engine.counts()
    console.print(
        f"[bold]Loopwise {__version__}[/bold] — workspace [cyan]{engine.workspace.workspace}[/cyan]"
    )
    console.print(
        f"  data:        {data_dir.resolve()} ({counts['events']} events, "
        f"{counts['profiles']} profiles, {counts['items']} items)"
    )
    console.print(f"  API docs:    {base}/docs   (OpenAPI: {base}/openapi.json)")
    console.print(f"  sample page: {base}/sample")
    console.print(f"  console:     {base}/ui")
    if engine.storage.users.count() == 0:
        console.print(
            "  first admin: nobody can sign in to the console yet; create the first admin with "
            "`loopwise users create --email you@example.com --role admin`"
        )
    console.print(f"  health:      {base}/healthz   metrics: {base}/metrics")
    if new_keys and console.is_terminal:
        console.print(
            "  keys (generated now, shown once — store them; server/admin are kept hashed):"
        )
        for kind, key in new_keys.items():
            console.print(f"    {kind:<7} {key}")
    elif new_keys:
        # output captured by a log: keys must not land there; make new ones to see them once
        console.print(
            f"  keys:        generated into {data_dir / 'keys.json'} (hashed; not printed to a "
            "log). Get usable ones with `loopwise keys create --kind write|server|admin`."
        )
    else:
        console.print(
            f"  keys:        from LOOPWISE_*_KEY or {data_dir / 'keys.json'} "
            "(see `loopwise keys list`)"
        )
    console.print(
        f"  retention:   daily, data older than {engine.workspace.privacy.retention_days} days"
    )
    console.print(
        f"  limits:      keep-alive {limits.keep_alive_timeout:g} s, headers "
        f"{limits.header_timeout:g} s, body {limits.body_timeout:g} s, "
        f"{limits.max_concurrent_requests} requests and "
        f"{limits.connection_cap(open_files):,} connections at once"
    )
    retention = DailyRetention(engine.run_retention).start()
    engine.start_journeys()  # journeys on the engine's clock, and the outbox's delivery
    app = ConcurrencyLimit(create_app(engine), limits.max_concurrent_requests, limits.retry_after)
    try:
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level=log_level,
            access_log=False,  # access logs would carry user ids in paths and client IPs
            http=protocol_class(limits, open_files),  # header/body deadlines, connection cap
            timeout_keep_alive=limits.keep_alive_timeout,  # type: ignore[arg-type]
        )
    finally:
        retention.stop()
        engine.close()


@app.command()
def replay(data_dir: DataDir = DEFAULT_DATA_DIR, workspace: WorkspaceFile = None) -> None:
    """Rebuild every profile from the event log with the same reducer."""
    with open_engine(data_dir, workspace) as engine:
        report = engine.replay()
    console.print(
        f"Replayed {report['events']} events into {report['profiles']} profiles; "
        f"{report['differing']} differed from the live profiles."
    )


@import_app.command("items")
def import_items(
    file: Annotated[Path, typer.Argument(help="Items as JSONL or CSV.", exists=True)],
    data_dir: DataDir = DEFAULT_DATA_DIR,
    workspace: WorkspaceFile = None,
    format: Annotated[
        str | None, typer.Option(help="jsonl or csv (default: from the file suffix).")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Items per write.")] = 1000,
) -> None:
    """Upsert catalog items from a file, with a progress bar."""
    from loopwise.catalog.importer import count_lines, read_items

    total = 0
    with open_engine(data_dir, workspace) as engine:
        items = list(read_items(file, format))  # validate the whole file before writing any
        with progress_bar() as progress:
            task = progress.add_task("importing", total=len(items) or count_lines(file))
            for start in range(0, len(items), batch_size):
                chunk = items[start : start + batch_size]
                total += engine.put_items(chunk)
                progress.advance(task, len(chunk))
    console.print(f"Imported {total} items.")


@app.command()
def check(workspace: Annotated[Path, typer.Argument(help="Workspace file to validate.")]) -> None:
    """Validate a workspace file; errors name the line and the path."""
    from loopwise.config import load_workspace_file

    try:
        loaded = load_workspace_file(workspace)
    except LoopwiseError as exc:
        raise fail(exc) from None
    console.print(
        f"{workspace}: ok — {len(loaded.slots)} slots, {len(loaded.segments)} segments "
        f"(+ built-ins: {'yes' if loaded.builtin_segments else 'no'})"
    )


def main() -> None:
    app()
