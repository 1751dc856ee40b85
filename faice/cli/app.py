"""The ``faice`` Typer apps, the options every command group shares, and the state the root
callback hands to each command through the Typer context (``ctx.obj``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, NamedTuple

import typer

from faice import __version__
from faice.errors import InvalidInput
from faice.runner.docker_engine import DEFAULT_PIDS_LIMIT

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

app = typer.Typer(
    name="faice",
    help=(
        "Run RED experiments on your own machine.\n\n"
        "A RED file describes a containerised command-line tool (a CWL CommandLineTool), its "
        "inputs and outputs with connectors, and the container to run it in. faice validates it, "
        "shows what would run, and runs it locally.\n\n"
        "Examples:\n\n"
        "  faice validate red.yml\n\n"
        "  faice exec red.yml --dry-run\n\n"
        "  faice convert cwl red.yml -o tool.cwl --job job.yml\n\n"
        "Exit codes: 0 success, 1 a batch failed, 2 invalid input, 3 environment unusable, 130 interrupted."
    ),
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings=CONTEXT,
)

FormatOption = typer.Option("yaml", "--format", "-f", help="Output format: yaml or json.")
NoMountOption = typer.Option(False, "--no-mount", help="Copy directories marked mount: true instead of mounting them (where sshfs or FUSE is missing).")
EngineOption = typer.Option(None, "--engine", metavar="docker|podman", show_default=False,
                            help="Container engine (default: $FAICE_ENGINE, else docker): podman runs through its Docker-compatible service, started when none runs, rootless for a non-root user.")
PidsLimitOption = typer.Option(DEFAULT_PIDS_LIMIT, "--pids-limit", min=0, help="Processes and threads a batch's container may have (0: no limit).")
CacheOption = typer.Option(None, "--cache/--no-cache", show_default=False,
                          help="Reuse the results of batches that ran before with the same image ID, argv, environment and inputs, and store new ones (default: $FAICE_CACHE, else no).")
VarOption = typer.Option([], "--var", metavar="NAME=VALUE", help="Value of a {{variable}} (repeatable). Prefer --vars-file or FAICE_VAR_NAME for secrets: argv is visible to other users.")
VarsFileOption = typer.Option(None, "--vars-file", help="YAML/JSON mapping of variable names to values.")


class Settings(NamedTuple):
    """The root options, for every command (``ctx.obj``)."""

    debug: bool = False
    db: Path | None = None


def _version(value: bool) -> None:
    if value:
        typer.echo(f"faice {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", "-V", callback=_version, is_eager=True, help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks of unexpected errors."),
    db: Path | None = typer.Option(None, "--db", envvar="FAICE_DB", help="SQLite state file (default: in the user's data directory)."),
) -> None:
    ctx.obj = Settings(debug=debug, db=db)


def settings(ctx: typer.Context) -> Settings:
    return ctx.obj if isinstance(ctx.obj, Settings) else Settings()


def open_store(ctx: typer.Context, *, read_heavy: bool = True) -> Any:
    """The state file of ``--db``, after cleaning up runs whose faice process died (faice/runner/reconcile.py)."""
    from faice.runner.reconcile import reconcile
    from faice.state.store import Store

    store = Store(settings(ctx).db, read_heavy=read_heavy)
    reconcile(store, engine_factory(ctx))
    return store


def engine_factory(ctx: typer.Context) -> Any:
    """What reaches a container engine by name when a command first needs one: cancel, logs and
    cleanup ask for the engine an experiment's record names."""
    from faice.runner.engine import open_engine

    return open_engine


def err(line: str) -> None:
    sys.stderr.write(line + "\n")


def check_format(fmt: str) -> str:
    fmt = fmt.lower()
    if fmt == "yml":
        return "yaml"
    if fmt not in ("yaml", "json"):
        raise InvalidInput(f'unknown format "{fmt}"; use yaml or json')
    return fmt


def parse_vars(pairs: list[str], vars_file: Path | None) -> dict[str, str]:
    """The values of ``--vars-file`` and then ``--var NAME=VALUE`` (the later wins)."""
    values: dict[str, str] = {}
    if vars_file is not None:
        from faice.red.source import load_mapping

        _, data = load_mapping(str(vars_file))
        values.update({str(k): "" if v is None else str(v) for k, v in data.items()})
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise InvalidInput(f'--var needs NAME=VALUE, got "{name}"')
        values[name] = value
    return values


def prompter(non_interactive: bool) -> Any:
    """What asks for a variable's value on the terminal, or None where no one can be asked."""
    if non_interactive or not sys.stdin.isatty():
        return None

    def ask(name: str, protected: bool) -> str:
        return typer.prompt(f"{name}{' (protected)' if protected else ''}", hide_input=protected, err=True)

    return ask


def print_notices(prepared: Any) -> None:
    """A prepared file's notices and warnings, one per line on stderr."""
    for said in [*prepared.doc.notices, *map(str, prepared.warnings)]:
        err(said)
