"""``loopwise decide-batch``: a slot decided for a whole audience, written to a file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from loopwise.cli_options import (
    DEFAULT_DATA_DIR,
    DatabaseUrl,
    DataDir,
    WorkspaceFile,
    console,
    fail,
    open_engine,
)
from loopwise.errors import LoopwiseError, ValidationFailed


def decide_batch_command(
    slot: Annotated[str, typer.Option("--slot", help="The slot to decide (its key).")],
    out: Annotated[Path, typer.Option("--out", help="Output file: .jsonl or .csv.")],
    segment: Annotated[
        str | None, typer.Option("--segment", help="Audience: everyone known in this segment.")
    ] = None,
    users: Annotated[
        Path | None,
        typer.Option(
            "--users",
            help="Audience: a file of user ids (one per line, a CSV with a user_id column, or "
            "JSON Lines of {user_id}).",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    campaign: Annotated[
        str, typer.Option("--campaign", help="The campaign's name, logged with each decision.")
    ] = "campaign",
    n: Annotated[int | None, typer.Option("--n", help="List slots: items per person.")] = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            help="Processes deciding the audience in parallel (up to one per core; each "
            "holds its own engine in memory). Rows are written once all are done.",
        ),
    ] = 1,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    workspace: WorkspaceFile = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Decide a slot for a segment or a list of users (an email campaign): respects marketing
    consent and the frequency caps, logs every decision, streams rows into --out."""
    from loopwise.channels.batch import DecideBatchRequest, read_users, write_rows
    from loopwise.channels.workers import EngineSource, check_workers, decide_in_workers

    if (segment is None) == (users is None):
        raise typer.BadParameter("give exactly one audience: --segment or --users")
    try:
        check_workers(workers)
    except LoopwiseError as exc:
        raise fail(exc) from None
    suffix = out.suffix.lower()
    if suffix not in (".jsonl", ".csv"):
        raise fail(ValidationFailed("Name the output file .jsonl or .csv.", field="--out"))
    with open_engine(data_dir, workspace, database_url) as engine:
        people = read_users(users) if users is not None else None
        try:
            request = DecideBatchRequest(
                slot=slot, segment=segment, users=people, n=n, campaign=campaign
            )
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"]) or "request"
            raise fail(ValidationFailed(f"{where}: {error['msg']}", field=where)) from None
        run = engine.decide_batch(request)  # validated here, before any worker starts
        if workers == 1:
            written = write_rows(run.rows(), out)
            summary = run.summary
    if workers > 1:  # the command's engine is closed: each worker opens its own
        file = workspace.resolve() if workspace is not None else None
        source = EngineSource(data_dir.resolve(), file, database_url)
        try:
            parallel = decide_in_workers(source, request, workers, out)
        except LoopwiseError as exc:
            raise fail(exc) from None
        summary, written = parallel.summary, parallel.written
    skipped = ", ".join(f"{count} {why}" for why, count in sorted(summary.skipped.items()))
    rate = summary.audience / summary.seconds if summary.seconds > 0 else 0.0
    by = f", {workers} workers" if workers > 1 else ""
    console.print(
        f"Decided {summary.decided} of {summary.audience} people for slot {slot} "
        f"({skipped or 'none skipped'}) in {summary.seconds:.1f} s ({rate:,.0f}/s{by}); "
        f"wrote {written} rows to {out}."
    )
    if summary.anonymous:
        console.print(f"  {summary.anonymous} anonymous profiles left out (no user id).")
