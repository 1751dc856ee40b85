"""``faice why`` and ``faice cache ls|du|prune``: the result cache of ``faice exec --cache`` explained and kept in bounds."""

from __future__ import annotations

import json

import typer

from faice.cli.app import CONTEXT, app, open_store

cache_app = typer.Typer(
    help="The result cache of faice exec --cache (blobs under the cache directory, entries in the state file).\n\n"
    "Examples:\n\n  faice cache ls\n\n  faice cache du\n\n  faice cache prune --older-than 30d",
    no_args_is_help=True,
    context_settings=CONTEXT,
)
app.add_typer(cache_app, name="cache")

JsonOption = typer.Option(False, "--json", help="Print JSON.")


@app.command()
def why(
    ctx: typer.Context,
    batch_id: str = typer.Argument(..., metavar="BATCH_ID", help="A batch that ran with --cache (or a unique start of its id)."),
    other: str | None = typer.Argument(None, metavar="[OTHER_BATCH_ID]", help="Compare with this batch instead of the cache's closest entry."),
    as_json: bool = JsonOption,
) -> None:
    """Say why a batch ran instead of reusing a cached result: which parts of its cache key
    (image ID, argv, environment, GPUs, network, user, each input's content and connector,
    the output declarations) differ from the closest cache entry, or from OTHER_BATCH_ID.

    Values of access fields and environment variables are compared by fingerprint: the parts
    say which changed, never what they hold.

    Examples:

      faice why 6751a3c2

      faice why 6751a3c2 6751a3c9 --json
    """
    from faice.cache.manage import why as explain

    found = explain(open_store(ctx), batch_id, other)
    if as_json:
        typer.echo(json.dumps(found.to_json(), indent=2))
        return
    typer.echo(f"batch {found.batch_id}: {found.summary}")
    for line in found.differences:
        typer.echo(f"  {line}")


@cache_app.command("ls")
def ls(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """List the cache's entries, the most recently used first."""
    from faice.cache.manage import listing

    rows = listing(open_store(ctx))
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    import shlex
    import time

    from faice.view import print_table, size

    print_table(["key", "stored by batch", "last used", "hits", "size", "argv"],
                [[r["key"][:12], r["batchId"] or "", time.strftime("%Y-%m-%d %H:%M", time.localtime(r["usedAt"])), str(r["hits"]), size(r["bytes"]),
                  shlex.join(r["argv"] or [])[:60]] for r in rows], title=f"{len(rows)} cache entr{'y' if len(rows) == 1 else 'ies'}")


@cache_app.command()
def du(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """Show what the cache holds and takes on disk (a content shared by entries is stored once)."""
    from faice.cache.manage import usage

    found = usage(open_store(ctx))
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    from faice.view import size

    typer.echo(f"{found['entries']} entr{'y' if found['entries'] == 1 else 'ies'}, {size(found['bytes'])} of results, "
               f"{size(found['diskBytes'])} on disk in {found['path']}")


@cache_app.command()
def prune(
    ctx: typer.Context,
    older_than: str | None = typer.Option(None, "--older-than", metavar="DURATION", help="Only entries not used for this long (30d, 12h, 90m, 2w); default: all."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say how many entries would go; remove nothing."),
    as_json: bool = JsonOption,
) -> None:
    """Remove cache entries (all, or those not used for --older-than), then every blob no entry needs.

    Outputs already linked into an output directory stay there.
    """
    from faice.cache.manage import prune as prune_cache
    from faice.state.cleanup import parse_duration

    found = prune_cache(open_store(ctx), parse_duration(older_than) if older_than else None, dry_run)
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    from faice.view import size

    n = found["entries"]
    if dry_run:
        typer.echo(f"would remove {n} entr{'y' if n == 1 else 'ies'}")
    else:
        typer.echo(f"removed {n} entr{'y' if n == 1 else 'ies'}, freed {size(found['freedBytes'])}")
