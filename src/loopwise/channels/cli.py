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
from loopwise.errors import ValidationFailed


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
    data_dir: DataDir = DEFAULT_DATA_DIR,
    workspace: WorkspaceFile = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Decide a slot for a segment or a list of users (an email campaign): respects marketing
    consent and the frequency caps, logs every decision, streams rows into --out."""
    from loopwise.channels.batch import DecideBatchRequest, read_users, write_rows

    if (segment is None) == (users is None):
        raise typer.BadParameter("give exactly one audience: --segment or --users")
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
        run = engine.decide_batch(request)
        written = write_rows(run.rows(), out)
    summary = run.summary
    skipped = ", ".join(f"{count} {why}" for why, count in sorted(summary.skipped.items()))
    rate = summary.audience / summary.seconds if summary.seconds > 0 else 0.0
    console.print(
        f"Decided {summary.decided} of {summary.audience} people for slot {slot} "
        f"({skipped or 'none skipped'}) in {summary.seconds:.1f} s ({rate:,.0f}/s); "
        f"wrote {written} rows to {out}."
    )
    if summary.anonymous:
        console.print(f"  {summary.anonymous} anonymous profiles left out (no user id).")
