"""`rebalance users ...`: manage who can sign in to the service.

    echo "$PASSWORD" | rebalance users add --username asha --role locality_manager --locality Hanley
    rebalance users list
    rebalance users disable --username asha
    echo "$NEW" | rebalance users set-password --username asha

Passwords are read from standard input (never from the command line, where other users of the
machine could see them); at a terminal they are asked for twice without echo. Every change is
recorded in the audit log under the operating-system user who ran the command.
"""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from api import auth, database, users_db
from api.cli._shared import Home, console, out
from api.settings import load_settings
from features.store import Store, StoreError

users_app = typer.Typer(
    help="Manage the service's users (password from standard input).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

Username = Annotated[str, typer.Option("--username", help="Lower-case letters, digits, . _ -")]


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code=2)


def _operator() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"cli:uid {os.getuid()}"


def read_password() -> str:
    """The password from standard input: asked twice without echo at a terminal, else the
    first line of what was piped in."""
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Password again: "):
            _fail("the two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def _check_links(home: Path, *, worker_id: str | None, locality: str | None) -> None:
    """Refuse a worker id or locality the current snapshot does not know (when there is one)."""
    store = Store(home)
    if store.current_snapshot_id() is None:
        console.print("warning: no data ingested yet, so the worker id and locality are unchecked")
        return
    if worker_id is not None:
        workers = store.read_table("workers", columns=["worker_id"])
        if worker_id not in set(workers["worker_id"]):
            _fail(f"--worker-id {worker_id!r} is not in the workers table of the current snapshot")
    if locality is not None:
        households = store.read_table("households", columns=["locality"])
        known = sorted(set(households["locality"]))
        if locality not in known:
            _fail(f"--locality {locality!r} is not a known locality: {', '.join(known)}")


@users_app.command("add")
def add(
    username: Username,
    role: Annotated[str, typer.Option("--role", help=", ".join(database.ROLES))],
    worker_id: Annotated[
        str | None, typer.Option("--worker-id", help="Key workers: their worker_id.")
    ] = None,
    locality: Annotated[
        str | None, typer.Option("--locality", help="Locality managers: their locality.")
    ] = None,
    home: Home = None,
) -> None:
    """Add a user; the password is read from standard input."""
    settings = load_settings(home=home)
    try:
        auth.check_username(username)
        auth.check_role_links(role=role, worker_id=worker_id, locality=locality)
        _check_links(settings.home, worker_id=worker_id, locality=locality)
        db = database.open_service_db(settings.home)
        auth.add_user(
            db,
            username=username,
            role=role,
            password=read_password(),
            worker_id=worker_id,
            locality=locality,
            actor=_operator(),
        )
    except (ValueError, StoreError) as error:
        _fail(str(error))
    console.print(f"added {username} ({role})", markup=False)


@users_app.command("list")
def list_users(home: Home = None) -> None:
    """List the users, their roles and links (never passwords)."""
    settings = load_settings(home=home)
    db = database.open_service_db(settings.home)
    table = Table("username", "role", "worker", "locality", "status", "added")
    for user in users_db.list_users(db.read()):
        table.add_row(
            user["username"],
            user["role"],
            user["worker_id"] or "-",
            user["locality"] or "-",
            "active" if user["active"] else "disabled",
            user["created_at"][:16].replace("T", " "),
        )
    out.print(table)


@users_app.command("disable")
def disable(username: Username, home: Home = None) -> None:
    """Stop a user signing in; their sessions and tokens end at once."""
    settings = load_settings(home=home)
    try:
        auth.disable_user(
            database.open_service_db(settings.home), username=username, actor=_operator()
        )
    except ValueError as error:
        _fail(str(error))
    console.print(f"disabled {username}", markup=False)


@users_app.command("set-password")
def set_password(username: Username, home: Home = None) -> None:
    """Give a user a new password (from standard input) and re-enable them."""
    settings = load_settings(home=home)
    try:
        auth.set_password(
            database.open_service_db(settings.home),
            username=username,
            password=read_password(),
            actor=_operator(),
        )
    except ValueError as error:
        _fail(str(error))
    console.print(f"new password set for {username}", markup=False)
