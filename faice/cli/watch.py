"""``faice watch``: state changes as they happen, from the state file or a faice serve."""

from __future__ import annotations

import sys

import typer

from faice.cli.app import app, open_store, prompter
from faice.cli.exits import outcome_code
from faice.errors import EXIT_OK


@app.command()
def watch(
    ctx: typer.Context,
    id: str | None = typer.Argument(None, metavar="[ID]", help="An experiment or batch id (locally a unique start of one will do): end when it has ended."),
    url: str | None = typer.Option(None, "--url", help="Watch this faice serve (its GET /events) instead of the state file."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per event and line (its kind, id and data)."),
    non_interactive: bool = typer.Option(False, "--non-interactive", help="With --url: never prompt for credentials."),
) -> None:
    """Show experiment and batch state changes as they happen.

    Without ID, every change from now on (Ctrl-C ends it); with an experiment's or a batch's
    ID, that one's changes, starting with where it stands, until it has ended. Locally the state
    file is read (experiments of faice exec in other terminals and of faice serve alike); with
    --url a faice serve's event stream, reconnecting after a break without missing a change.
    Credentials for --url come from FAICE_AGENCY_USER and FAICE_AGENCY_PASSWORD, else a prompt.

    Exit codes: 0 the watched experiment or batch succeeded (or Ctrl-C ended a watch of every
    change), 1 it failed, 2 an unknown id or refused credentials, 3 the server unreachable, 130
    it was cancelled, or Ctrl-C.

    Examples:

      faice watch

      faice watch 6751a3c2 --json

      FAICE_AGENCY_USER=alice faice watch --url http://127.0.0.1:8080 6751a3c2e4b0a1b2c3d4e5f6
    """
    from faice.signals import on_stop
    from faice.watch import watch_local, watch_remote

    try:
        with on_stop():
            if url is None:
                outcome = watch_local(open_store(ctx), id, json_lines=as_json)
            else:
                outcome = watch_remote(_client(url, non_interactive), id, json_lines=as_json)
    except KeyboardInterrupt:
        sys.stdout.flush()
        raise typer.Exit(EXIT_OK if id is None else outcome_code("interrupted")) from None
    raise typer.Exit(outcome_code(outcome or "interrupted"))


def _client(url: str, non_interactive: bool) -> object:
    import os

    from faice.red.secrets import Masker
    from faice.submit import AgencyClient, agency_url, credentials

    target = agency_url({}, url)
    creds = credentials({}, os.environ, prompter(non_interactive))
    return AgencyClient(target, creds, Masker([creds.password]))
