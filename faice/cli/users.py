"""``faice users``: the users of ``faice serve``, kept in its state file."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer

from faice.cli.app import CONTEXT, app, open_store
from faice.errors import InvalidInput

users_app = typer.Typer(
    help="Users of faice serve (stored in the state file, passwords as salted scrypt hashes).\n\n"
    "Passwords are asked for without echo, or read from standard input with --password-stdin; never an argument.\n\n"
    "Examples:\n\n  faice users add alice --admin\n\n  printf '%s\\n' \"$PW\" | faice users passwd alice --password-stdin\n\n  faice users list",
    no_args_is_help=True,
    context_settings=CONTEXT,
)
app.add_typer(users_app, name="users")


PasswordStdin = typer.Option(False, "--password-stdin", help="Read the password from the first line of standard input.")
UserName = typer.Argument(..., help="The user name.")


def _users(ctx: typer.Context) -> Any:
    from faice.state.users import Users

    return Users(open_store(ctx))


def _new_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise InvalidInput("no terminal to ask for the password: use --password-stdin")
    return typer.prompt("password", hide_input=True, confirmation_prompt=True, err=True)


@users_app.command("add")
def users_add(ctx: typer.Context, name: str = UserName, admin: bool = typer.Option(False, "--admin", help="The user sees and cancels everyone's experiments."),
              password_stdin: bool = PasswordStdin) -> None:
    """Add a user. Example: faice users add alice --admin"""
    password = _new_password(password_stdin)
    _users(ctx).add(name, password, admin=admin)
    typer.echo(f"added {'admin ' if admin else ''}user {name}")


@users_app.command("list")
def users_list(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List users. Example: faice users list --json"""
    users = _users(ctx).all()
    if as_json:
        typer.echo(json.dumps([{"name": u.name, "isAdmin": u.is_admin, "createdAt": u.created_at} for u in users], indent=2))
        return
    from faice.view import print_table

    print_table(["user", "admin"], [[u.name, "yes" if u.is_admin else ""] for u in users])


@users_app.command("remove")
def users_remove(ctx: typer.Context, name: str = UserName) -> None:
    """Remove a user (their tokens stop working at once). Example: faice users remove alice"""
    _users(ctx).remove(name)
    typer.echo(f"removed user {name}")


@users_app.command("passwd")
def users_passwd(ctx: typer.Context, name: str = UserName, password_stdin: bool = PasswordStdin) -> None:
    """Set a new password (ends the user's tokens). Example: faice users passwd alice"""
    password = _new_password(password_stdin)
    _users(ctx).set_password(name, password)
    typer.echo(f"changed the password of {name}")
