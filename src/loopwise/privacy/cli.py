"""``loopwise audit verify|export`` and ``loopwise retention run`` (sub-apps of ``loopwise``).

``audit verify`` reads only the database (no workspace needed): exit 0 when the chain holds, 1
naming the first broken record, 2 on an error. Output is plain text, ``--json`` for scripts.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

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

DataDir = Annotated[
    Path,
    typer.Option("--data-dir", help="Where the SQLite database and keys live."),
]
WorkspaceFile = Annotated[
    Path | None,
    typer.Option(
        "--workspace", help="Workspace file (loopwise.yaml). Default: the bundled demo store."
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]
DEFAULT_DATA_DIR = Path(os.environ.get("LOOPWISE_DATA_DIR", "loopwise-data"))
DATABASE = "loopwise.db"

console = Console(soft_wrap=True, highlight=False)


def _fail(exc: LoopwiseError) -> typer.Exit:
    where = f" (at {exc.field})" if exc.field else ""
    Console(stderr=True, soft_wrap=True).print(
        f"[red]error:[/red] {exc.detail}{where}", highlight=False
    )
    return typer.Exit(code=2)


def _emit(report: Any) -> None:
    typer.echo(json.dumps(report, indent=2, ensure_ascii=False))


@audit_app.command("verify")
def verify(data_dir: DataDir = DEFAULT_DATA_DIR, as_json: AsJson = False) -> None:
    """Check every record's hash and link; name the first broken record (exit code 1)."""
    from loopwise.privacy.audit import ANCHOR_META_KEY, verify_chain
    from loopwise.storage.sqlite import SqliteStorage

    path = data_dir / DATABASE
    if not path.is_file():
        Console(stderr=True).print(f"[red]error:[/red] no database at {path}; check --data-dir.")
        raise typer.Exit(code=2)
    storage = SqliteStorage(path)
    try:
        result = verify_chain(storage.iter_audit(), storage.get_meta(ANCHOR_META_KEY))
    except LoopwiseError as exc:
        raise _fail(exc) from None
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
    as_json: AsJson = False,
) -> None:
    """Print audit records, oldest first: JSON lines, or one JSON array with --json."""
    from loopwise.engine import Engine

    try:
        engine, _ = Engine.open(data_dir, workspace)
    except LoopwiseError as exc:
        raise _fail(exc) from None
    try:
        if user is not None:
            records = engine.consent_history(user)
        else:
            records = list(engine.storage.iter_audit())
    finally:
        engine.close()
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
    as_json: AsJson = False,
) -> None:
    """Purge events, decisions, segment history and profiles older than retention_days; keep
    consent and the audit log."""
    from loopwise.engine import Engine

    try:
        engine, _ = Engine.open(data_dir, workspace)
    except LoopwiseError as exc:
        raise _fail(exc) from None
    try:
        report = engine.run_retention(dry_run=dry_run)
    except LoopwiseError as exc:
        raise _fail(exc) from None
    finally:
        engine.close()
    if as_json:
        _emit(report)
        return
    verb = "would remove" if dry_run else "removed"
    removed = ", ".join(f"{count} {table}" for table, count in report["removed"].items())
    console.print(f"retention (data before {report['cutoff']}): {verb} {removed}")
    console.print(f"kept: consent states; audit records since {report['audit_cutoff']}")
