"""What every ``loopwise`` sub-command shares: its options, consoles, error exit and engine.

* ``DataDir``, ``WorkspaceFile``, ``JsonFlag`` — the ``--data-dir``, ``--workspace`` and ``--json``
  options, declared once so their names, help and defaults agree across commands.
  ``DEFAULT_DATA_DIR`` is ``$LOOPWISE_DATA_DIR`` or ``loopwise-data``.
* ``console`` / ``plain_console`` (no highlighting of numbers and strings, for keys and plain
  reports) write to stdout, ``err_console`` to stderr.
* ``fail(exc)`` prints a :class:`~loopwise.errors.LoopwiseError` as ``error: <detail> (at
  <field>)`` on stderr and returns the ``typer.Exit(code=2)`` to raise.
* ``open_engine(data_dir, workspace)`` opens the engine on a data directory for one command.
* ``progress_bar()`` is the bar long commands (import, train) draw on ``console``.

Command modules import these; this module imports none of them (``loopwise.cli`` imports the
sub-apps, so the reverse would be a cycle).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from loopwise.errors import LoopwiseError

if TYPE_CHECKING:
    from loopwise.engine import Engine

DATA_DIR_ENV = "LOOPWISE_DATA_DIR"
DEFAULT_DATA_DIR = Path(os.environ.get(DATA_DIR_ENV, "loopwise-data"))

DataDir = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        envvar=DATA_DIR_ENV,
        help="Where the SQLite database, keys and models live.",
    ),
]
WorkspaceFile = Annotated[
    Path | None,
    typer.Option(
        "--workspace", help="Workspace file (loopwise.yaml). Default: the bundled demo store."
    ),
]
JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print JSON (for scripts) instead of text and tables.")
]

console = Console(soft_wrap=True)
plain_console = Console(soft_wrap=True, highlight=False)
err_console = Console(stderr=True, soft_wrap=True)


def fail(exc: LoopwiseError) -> typer.Exit:
    """Print the error (and the field it is about) on stderr; the caller raises the returned
    exit, code 2, ``from None`` so no traceback is shown."""
    where = f" (at {exc.field})" if exc.field else ""
    err_console.print(f"[red]error:[/red] {exc.detail}{where}", highlight=False)
    return typer.Exit(code=2)


DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="LOOPWISE_DATABASE_URL",
        help="PostgreSQL URL when the server runs on PostgreSQL (default: the data directory's "
        "SQLite file).",
    ),
]


@contextmanager
def open_engine(
    data_dir: Path, workspace: Path | None, database_url: str | None = None
) -> Iterator[Engine]:
    """The engine on ``data_dir`` (its stores on PostgreSQL when ``database_url`` names it) for
    the ``with`` block, closed after it. A LoopwiseError while opening or inside the block ends
    the command through :func:`fail` (exit code 2)."""
    from loopwise.engine import Engine  # heavy: only commands that need it pay for the import

    try:
        engine, _ = Engine.open(data_dir, workspace, database_url=database_url)
    except LoopwiseError as exc:
        raise fail(exc) from None
    try:
        yield engine
    except LoopwiseError as exc:
        raise fail(exc) from None
    finally:
        engine.close()


def progress_bar() -> Progress:
    """Description, bar, done/total and elapsed time, drawn on :data:`console`."""
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )
