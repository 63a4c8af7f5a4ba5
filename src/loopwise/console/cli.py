"""``loopwise users create|list|revoke``: the people who sign in to the console at ``/ui``.

The password is asked at the terminal (twice), or read from standard input with
``--password-stdin`` (one line; for scripts). A running server sees new and revoked users at once
(they live in the database, not in the server's memory).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from loopwise.cli_options import (
    DEFAULT_DATA_DIR,
    DatabaseUrl,
    DataDir,
    JsonFlag,
    console,
    fail,
)
from loopwise.clock import isoformat
from loopwise.console.people import People
from loopwise.errors import LoopwiseError

users_app = typer.Typer(
    help="People who sign in to the console (/ui): viewer, editor or admin.",
    no_args_is_help=True,
    add_completion=False,
)


@contextmanager
def _people(data_dir: Path, database_url: str | None = None) -> Iterator[People]:
    from loopwise.storage import open_storage

    try:
        storage = open_storage(database_url, data_dir)
    except LoopwiseError as exc:
        raise fail(exc) from None
    try:
        yield People(storage)
    except LoopwiseError as exc:
        raise fail(exc) from None
    finally:
        storage.close()


@users_app.command("create")
def create(
    email: Annotated[str, typer.Option("--email", help="The person's email (their sign-in).")],
    role: Annotated[
        str, typer.Option("--role", help="viewer (reads), editor (changes), admin (everything).")
    ],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    database_url: DatabaseUrl = None,
) -> None:
    """Create a console user."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    with _people(data_dir, database_url) as people:
        user = people.create(email, role, password)
    console.print(f"Created {user.role} {user.email}; they sign in at /ui/login.")


@users_app.command("list")
def list_users(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    json_out: JsonFlag = False,
    database_url: DatabaseUrl = None,
) -> None:
    """List console users with their role and live sessions."""
    with _people(data_dir, database_url) as people:
        rows = [
            {
                "email": user.email,
                "role": user.role,
                "created_at": isoformat(user.created_at),
                "live_sessions": sum(not s.revoked for s in people.sessions_of(user.email)),
                "failed_sign_ins": user.failed_logins,
            }
            for user in people.users()
        ]
    if json_out:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=f"{len(rows)} console users")
    for column in ("email", "role", "created_at", "live_sessions", "failed_sign_ins"):
        table.add_column(column.replace("_", " "))
    for row in rows:
        table.add_row(*(str(row[name]) for name in row))
    console.print(table)


@users_app.command("revoke")
def revoke(
    email: Annotated[str, typer.Argument(help="The user to remove.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
    database_url: DatabaseUrl = None,
) -> None:
    """Remove a user and end every session they have."""
    with _people(data_dir, database_url) as people:
        ended = people.revoke(email)
    console.print(f"Revoked {email.strip().lower()}; {ended} live sessions ended.")
