"""``loopwise history`` and ``loopwise workspace diff|pull|push|restore``.

The live workspace (admin API, console) and the workspace file can drift apart; a server started
on a file that changed while the live workspace changed too keeps the live one and says so. These
commands reconcile them: ``diff`` shows how the file differs from the live workspace, ``pull``
writes the live workspace into the file (the old file is kept beside it as ``.bak``), ``push``
applies the file over the live workspace. Every change is a revision in the history, which
``history`` prints and ``restore`` goes back to. A running server picks the change up within a
second or so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.markup import escape

from loopwise.cli_options import (
    DEFAULT_DATA_DIR,
    DataDir,
    JsonFlag,
    WorkspaceFile,
    console,
    fail,
    open_engine,
    plain_console,
)
from loopwise.clock import isoformat
from loopwise.config import SAMPLE_WORKSPACE, load_workspace_file
from loopwise.errors import LoopwiseError, ValidationFailed
from loopwise.workspace.diff import diff_documents
from loopwise.workspace.history import Author, change_summary
from loopwise.workspace.service import mark_file_loaded

workspace_app = typer.Typer(
    help="Reconcile the live workspace with the workspace file; restore a revision.",
    no_args_is_help=True,
    add_completion=False,
)

Comment = Annotated[str, typer.Option("--comment", "-m", help="Why (kept in the history).")]


def history_command(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Newest revisions shown.")] = 50,
    json_out: JsonFlag = False,
) -> None:
    """Print the workspace's change history, newest first: who, when, how, why, what changed."""
    from loopwise.storage import open_storage

    if not (data_dir / "loopwise.db").exists():
        raise fail(ValidationFailed(f"No Loopwise data in {data_dir}.", field="--data-dir"))
    storage = open_storage(None, data_dir)
    try:
        changes = storage.workspace_history.list(limit)
    finally:
        storage.close()
    if json_out:
        typer.echo(json.dumps([change_summary(c) for c in changes], indent=2))
        return
    for change in changes:
        comment = f" — {change.comment}" if change.comment else ""
        plain_console.print(
            f"[bold]revision {change.revision}[/bold]  {isoformat(change.at)}  "
            + escape(f"{change.actor} ({change.source}){comment}")
        )
        for line in change.diff[:20] or ["(no change to the document)"]:
            plain_console.print(f"    {line}", markup=False)
        if len(change.diff) > 20:
            plain_console.print(f"    ... and {len(change.diff) - 20} more")


def _file(workspace: Path | None) -> Path:
    return workspace or SAMPLE_WORKSPACE


@workspace_app.command("diff")
def diff(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    workspace: WorkspaceFile = None,
    json_out: JsonFlag = False,
) -> None:
    """How the workspace file differs from the live workspace (what ``push`` would change)."""
    path = _file(workspace)
    with open_engine(data_dir, workspace) as engine:
        revision, live = engine.services.workspace.snapshot()
        lines = diff_documents(live, load_workspace_file(path).document())
    if json_out:
        typer.echo(json.dumps({"revision": revision, "file": str(path), "changes": lines}))
        return
    if not lines:
        console.print(f"{path} and the live workspace (revision {revision}) are the same.")
        return
    console.print(escape(f"live workspace (revision {revision}) → {path}:"))
    for line in lines:
        plain_console.print(f"  {line}", markup=False)


@workspace_app.command("pull")
def pull(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    workspace: Annotated[
        Path, typer.Option("--workspace", help="The workspace file to write.")
    ] = Path("loopwise.yaml"),
) -> None:
    """Write the live workspace into the workspace file (the old file is kept as .bak)."""
    with open_engine(data_dir, workspace if workspace.exists() else None) as engine:
        revision, live = engine.services.workspace.snapshot()
        if workspace.exists():
            workspace.with_name(workspace.name + ".bak").write_bytes(workspace.read_bytes())
        header = (
            f"# Loopwise workspace, written by `loopwise workspace pull` from revision {revision}"
            "\n# of the live workspace (comments of the previous file are in the .bak beside it).\n"
        )
        workspace.write_text(
            header + yaml.safe_dump(live, sort_keys=False, allow_unicode=True), encoding="utf-8"
        )
        written = load_workspace_file(workspace).document()
        engine.storage.write(lambda uow: mark_file_loaded(uow, written))
    console.print(f"Wrote the live workspace (revision {revision}) to {workspace}.")


@workspace_app.command("push")
def push(
    data_dir: DataDir = DEFAULT_DATA_DIR, workspace: WorkspaceFile = None, comment: Comment = ""
) -> None:
    """Apply the workspace file over the live workspace (recorded in the history)."""
    path = _file(workspace)
    with open_engine(data_dir, workspace) as engine:
        document = load_workspace_file(path).document()
        service = engine.services.workspace
        author = Author(f"file {path.name}", "push", comment or f"pushed {path}")
        changes = diff_documents(service.document(), document)
        if not changes:
            engine.storage.write(lambda uow: mark_file_loaded(uow, document))
            console.print(f"{path} is already the live workspace (revision {service.revision}).")
            return
        applied = service.apply(lambda _: document, author=author)
        engine.storage.write(lambda uow: mark_file_loaded(uow, document))
    console.print(f"Applied {path} as revision {applied.revision} ({len(changes)} changes).")


@workspace_app.command("restore")
def restore(
    revision: Annotated[int, typer.Argument(min=1, help="The revision to go back to.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
    workspace: WorkspaceFile = None,
    comment: Comment = "",
) -> None:
    """Make an earlier revision live again (as a new revision)."""
    with open_engine(data_dir, workspace) as engine:
        try:
            applied = engine.services.workspace.restore(
                revision, author=Author("cli", "restore", comment)
            )
        except LoopwiseError as exc:
            raise fail(exc) from None
    console.print(f"Restored revision {revision} as revision {applied.revision}.")
