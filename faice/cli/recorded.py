"""``faice list``, ``show``, ``logs``, ``cancel``, ``rm`` and ``prune``: what faice recorded in
its state file, shown or cleaned up (the documents come from faice.records)."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer

from faice.cli.app import app, engine_factory, open_store
from faice.errors import InvalidInput

IdArgument = typer.Argument(..., metavar="ID", help="An experiment id or a batch id (or a unique start of one, 4 characters at least).")
DryRunOption = typer.Option(False, "--dry-run", help="Say what would be removed; remove nothing.")


@app.command("list")
def list_(
    ctx: typer.Context,
    limit: int = typer.Option(50, "--limit", "-n", min=1, help="How many experiments to show."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List experiments, newest first, with the number of batches in each state.

    Example: faice list -n 10
    """
    from faice.records import experiment_summaries

    rows = experiment_summaries(open_store(ctx), limit)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    from faice.view import print_experiments

    print_experiments(rows)


@app.command()
def show(ctx: typer.Context, id: str = IdArgument, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show an experiment (with its batches) or a batch (with its state history).

    Example: faice show 6751a3c2e4b0a1b2c3d4e5f6 --json
    """
    from faice.records import show as shown

    found = shown(open_store(ctx), id)
    if as_json:
        typer.echo(json.dumps(found.document, indent=2))
        return
    from faice.view import print_batch, print_experiment

    (print_experiment if found.kind == "experiment" else print_batch)(found.document)


@app.command()
def logs(
    ctx: typer.Context,
    batch_id: str = typer.Argument(..., metavar="BATCH_ID", help="A batch id (or a unique start of one, 4 characters at least)."),
    stderr: bool = typer.Option(False, "--stderr", help="Show the standard error stream instead of standard output."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing while the batch runs."),
) -> None:
    """Print what a batch's tool wrote to stdout (or --stderr).

    Example: faice logs 6751a3c2e4b0a1b2c3d4e5f6 --stderr
    """
    from faice.records import write_log

    write_log(open_store(ctx), batch_id, sys.stdout.buffer, stderr=stderr, follow=follow, notes=sys.stderr.buffer)


@app.command()
def cancel(ctx: typer.Context, id: str = IdArgument) -> None:
    """Cancel an experiment or a batch, also when it runs in another terminal.

    Batches that have not finished are recorded as cancelled and their containers are killed.

    Example: faice cancel 6751a3c2e4b0a1b2c3d4e5f6
    """
    from faice.runner.lifecycle import cancel

    store = open_store(ctx)
    cancelled = cancel(store, store.resolve_id(id)[1], "cancelled by faice cancel", engine_factory(ctx))
    typer.echo(f"cancelled {cancelled} batch{'es' if cancelled != 1 else ''}")


@app.command("rm")
def rm(
    ctx: typer.Context,
    ids: list[str] = typer.Argument(..., metavar="EXPERIMENT_ID...", help="Experiments to remove (unique starts of ids will do)."),
    dry_run: bool = DryRunOption,
) -> None:
    """Remove finished experiments: their records, captured logs and outputs.

    Outputs are removed only where faice's marker in them names the experiment (a folder a later
    run took over stays). A running experiment is refused: cancel it first.

    Example: faice rm 6751a3c2e4b0 6751a3c2f0e1 --dry-run
    """
    from faice.records import experiment_ids
    from faice.state.cleanup import remove

    store = open_store(ctx)
    _say_removed(remove(store, experiment_ids(store, ids), dry_run), dry_run)


@app.command()
def prune(
    ctx: typer.Context,
    older_than: str = typer.Option("30d", "--older-than", metavar="AGE", help="Only experiments made longer ago than this (30d, 12h, 90m, 2w)."),
    states: list[str] = typer.Option([], "--state", help="Only experiments that ended so: succeeded, failed or cancelled (repeatable)."),
    dry_run: bool = DryRunOption,
) -> None:
    """Remove finished experiments older than --older-than, with their logs and outputs.

    Works on faice serve's state file too (--db), its outputs beside it included.

    Examples:

      faice prune --dry-run

      faice prune --older-than 7d --state failed --state cancelled
    """
    from faice.state.cleanup import parse_duration
    from faice.state.cleanup import prune as prune_experiments
    from faice.state.states import FINAL_STATES

    unknown = [s for s in states if s not in FINAL_STATES]
    if unknown:
        raise InvalidInput(f"--state {unknown[0]}: an experiment ends succeeded, failed or cancelled")
    _say_removed(prune_experiments(open_store(ctx), parse_duration(older_than), tuple(states) or None, dry_run), dry_run)


def _say_removed(removed: list[Any], dry_run: bool) -> None:
    from faice.view import size

    verb = "would remove" if dry_run else "removed"
    for found in removed:
        where = f", outputs {found.outputs}" if found.outputs else ""
        typer.echo(f"{verb} {found.experiment_id}: {size(found.bytes)} ({len(found.logs)} log files{where})")
    typer.echo(f"{verb} {len(removed)} experiment{'s' if len(removed) != 1 else ''}, {size(sum(f.bytes for f in removed))}")
