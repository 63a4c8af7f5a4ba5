"""``loopwise audit verify|export`` and ``loopwise retention run`` (sub-apps of ``loopwise``).

``audit verify`` reads only the database (no workspace needed): exit 0 when the chain holds, 1
naming the first broken record, 2 on an error. Output is plain text, ``--json`` for scripts.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from loopwise.cli_options import (
    DEFAULT_DATA_DIR,
    DataDir,
    JsonFlag,
    WorkspaceFile,
    err_console,
    fail,
    open_engine,
)
from loopwise.cli_options import plain_console as console
from loopwise.errors import LoopwiseError

audit_app = typer.Typer(
    help="The consent audit trail: verify the hash chain, export records.",
    no_args_is_help=True,
    add_completion=False,
)
retention_app = typer.Typer(
    help="Purge behavioural data older than the workspace's privacy.retention_days.",
    no_args_is_help=True,
    add_completion=False,
)

DATABASE = "loopwise.db"


def _emit(report: Any) -> None:
    typer.echo(json.dumps(report, indent=2, ensure_ascii=False))


@audit_app.command("verify")
def verify(data_dir: DataDir = DEFAULT_DATA_DIR, as_json: JsonFlag = False) -> None:
    """Check every record's hash and link; name the first broken record (exit code 1)."""
    from loopwise.privacy.audit import ANCHOR_META_KEY, verify_chain
    from loopwise.storage.sqlite import SqliteStorage

    path = data_dir / DATABASE
    if not path.is_file():
        err_console.print(f"[red]error:[/red] no database at {path}; check --data-dir.")
        raise typer.Exit(code=2)
    storage = SqliteStorage(path)
    try:
        result = verify_chain(storage.audit.iter(), storage.config.meta(ANCHOR_META_KEY))
    except LoopwiseError as exc:
        raise fail(exc) from None
    finally:
        storage.close()
    if as_json:
        _emit(result.to_dict())
    elif result.ok:
        console.print(f"audit trail ok: {result.checked} records, chain intact")
    else:
        console.print(
            f"audit trail BROKEN at record {result.broken_seq}: {result.problem} "
            f"({result.checked} records before it are intact)"
        )
    if not result.ok:
        raise typer.Exit(code=1)


@audit_app.command("export")
def export(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    workspace: WorkspaceFile = None,
    user: Annotated[
        str | None, typer.Option("--user", help="Only this person's records (any of their ids).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Print audit records, oldest first: JSON lines, or one JSON array with --json."""
    with open_engine(data_dir, workspace) as engine:
        if user is not None:
            records = engine.consent_history(user)
        else:
            records = list(engine.storage.audit.iter())
    if as_json:
        _emit(records)
        return
    for record in records:
        typer.echo(json.dumps(record, sort_keys=True, ensure_ascii=False))


@retention_app.command("run")
def run(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    workspace: WorkspaceFile = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be removed; remove nothing.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Purge events, decisions, segment history and profiles older than retention_days; keep
    consent and the audit log."""
    with open_engine(data_dir, workspace) as engine:
        report = engine.run_retention(dry_run=dry_run)
    if as_json:
        _emit(report)
        return
    verb = "would remove" if dry_run else "removed"
    removed = ", ".join(f"{count} {table}" for table, count in report["removed"].items())
    console.print(f"retention (data before {report['cutoff']}): {verb} {removed}")
    console.print(f"kept: consent states; audit records since {report['audit_cutoff']}")
