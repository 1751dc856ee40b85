"""The ``faice`` command line: a thin Typer layer over :mod:`faice.red` and :mod:`faice.runner`.

Heavy modules (docker, jsonschema, the runner) are imported inside the commands that use them,
so that ``faice --help`` and ``faice --version`` stay fast.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import typer

from faice import __version__
from faice.errors import EXIT_INTERRUPTED, EXIT_INVALID, FaiceError, InvalidInput, LoadError

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
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings=CONTEXT,
)
schema_app = typer.Typer(
    help="The JSON Schemas faice validates RED files against.\n\nExamples:\n\n  faice schema list\n\n  faice schema show red --format json\n\n  faice schema validate red red.yml",
    no_args_is_help=True,
    context_settings=CONTEXT,
)
convert_app = typer.Typer(
    help="Convert a RED file: one file per batch, the cli as a CWL tool, JSON <-> YAML.\n\nExamples:\n\n  faice convert batches red.yml --prefix run_\n\n  faice convert cwl red.yml -o tool.cwl --job job.yml\n\n  faice convert format red.yml --format json",
    no_args_is_help=True,
    context_settings=CONTEXT,
)
app.add_typer(schema_app, name="schema")
app.add_typer(convert_app, name="convert")

FormatOption = typer.Option("yaml", "--format", "-f", help="Output format: yaml or json.")


class State:
    debug = False
    db: Path | None = None


state = State()


def _version(value: bool) -> None:
    if value:
        typer.echo(f"faice {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(False, "--version", "-V", callback=_version, is_eager=True, help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks of unexpected errors."),
    db: Path | None = typer.Option(None, "--db", envvar="FAICE_DB", help="SQLite state file (default: in the user's data directory)."),
) -> None:
    state.debug = debug
    state.db = db


def _err(line: str) -> None:
    sys.stderr.write(line + "\n")


def _check_format(fmt: str) -> str:
    fmt = fmt.lower()
    if fmt == "yml":
        return "yaml"
    if fmt not in ("yaml", "json"):
        raise InvalidInput(f'unknown format "{fmt}"; use yaml or json')
    return fmt


# --- validate -------------------------------------------------------------------------------


@app.command()
def validate(
    files: list[str] = typer.Argument(..., metavar="FILE", help="RED files: paths, - for stdin, or http(s) URLs."),
    as_json: bool = typer.Option(False, "--json", help='Print {"valid", "errors", "warnings"} as JSON instead of lines.'),
) -> None:
    """Check RED files without running anything.

    Reports every problem at once, one per line, as FILE:LINE:COL: path.to.key: message.
    Connectors that are not installed here are warnings (the file may be meant for another
    machine). Exit 0 when all files are valid, 2 when any is not.

    Examples:

      faice validate red.yml

      faice validate batches/*.yml --json

      curl -s https://example.org/red.yml | faice validate -
    """
    from faice.red.load import check, load

    results = []
    all_valid = True
    for location in files:
        try:
            doc = load(location)
            for notice in doc.notices:
                _err(notice)
            errors, warnings = check(doc)
        except LoadError as exc:
            from faice.red.problems import LocatedProblem

            errors = [LocatedProblem(exc.name, exc.line or 1, exc.column or 1, "", exc.message, "error")]
            warnings = []
        valid = not errors
        all_valid &= valid
        if as_json:
            results.append({"file": errors[0].file if errors else location, "valid": valid,
                            "errors": [e.to_json() for e in errors], "warnings": [w.to_json() for w in warnings]})
            continue
        for problem in errors + warnings:
            _err(str(problem))
        if valid:
            batches = len(doc.data["batches"]) if "batches" in doc.data else 1
            typer.echo(f"{doc.source.name}: valid RED 9 ({batches} batch{'es' if batches != 1 else ''})")
    if as_json:
        document: Any = results[0] if len(results) == 1 else {"valid": all_valid, "files": results}
        typer.echo(json.dumps(document, indent=2))
    if not all_valid:
        raise typer.Exit(EXIT_INVALID)


# --- exec -----------------------------------------------------------------------------------


def _parse_vars(pairs: list[str], vars_file: Path | None) -> dict[str, str]:
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


def _prompter(non_interactive: bool) -> Any:
    if non_interactive or not sys.stdin.isatty():
        return None

    def ask(name: str, protected: bool) -> str:
        return typer.prompt(f"{name}{' (protected)' if protected else ''}", hide_input=protected, err=True)

    return ask


@app.command("exec")
def exec_(
    file: str = typer.Argument(..., metavar="FILE", help="RED file: a path, - for stdin, or an http(s) URL."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate, fill variables and print each batch's image and argv; run nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print only the result as JSON on stdout."),
    var: list[str] = typer.Option([], "--var", metavar="NAME=VALUE", help="Value of a {{variable}} (repeatable). Prefer --vars-file or FAICE_VAR_NAME for secrets: argv is visible to other users."),
    vars_file: Path | None = typer.Option(None, "--vars-file", help="YAML/JSON mapping of variable names to values."),
    non_interactive: bool = typer.Option(False, "--non-interactive", help="Never prompt: fail listing the variables that have no value."),
) -> None:
    """Run a RED experiment locally (for now: --dry-run shows what would run).

    Variables ({{name}} in access/auth blocks) are filled from --var, --vars-file, the
    environment (FAICE_VAR_name), or asked for (protected ones without echo). Secrets are
    masked in everything faice prints.

    Examples:

      faice exec red.yml --dry-run

      faice exec red.yml --dry-run --json --var agency_url=http://127.0.0.1:8080

      FAICE_VAR_password=... faice exec red.yml --dry-run --non-interactive
    """
    from faice.red.prepare import prepare
    from faice.runner.plan import plan

    prepared = prepare(file, variables=_parse_vars(var, vars_file), prompt=_prompter(non_interactive), connectors_required=True)
    for notice in prepared.doc.notices:
        _err(notice)
    for warning in prepared.warnings:
        _err(str(warning))
    if not dry_run:
        raise InvalidInput("running batches in Docker is not available in this version yet; use --dry-run to see what would run")
    mask = prepared.masker
    plans = plan(prepared.experiment)
    if as_json:
        batches = [{"index": p.index, "image": mask(p.image), "argv": [mask(a) for a in p.argv]} for p in plans]
        typer.echo(json.dumps({"batches": batches}, indent=2))
        return
    import shlex

    for p in plans:
        typer.echo(f"batch {p.index}: image {mask(p.image)}")
        typer.echo(f"  argv: {mask(shlex.join(p.argv))}")
        for staged in p.staged:
            typer.echo(f"  input {staged.key}{'' if staged.index is None else f'[{staged.index}]'}: {staged.kind} via {staged.connector.command} -> {staged.container_path}")


# --- schema ---------------------------------------------------------------------------------


@schema_app.command("list")
def schema_list(fmt: str = FormatOption) -> None:
    """List the schema names (use them with show and validate).

    Example: faice schema list --format json
    """
    from faice.red.dump import dumps
    from faice.red.schema import schema_names

    typer.echo(dumps({"schemas": schema_names()}, _check_format(fmt)), nl=False)


@schema_app.command("show")
def schema_show(name: str = typer.Argument(..., help="A name from faice schema list."), fmt: str = FormatOption) -> None:
    """Print a JSON Schema.

    Example: faice schema show red --format json > red.schema.json
    """
    from faice.red.dump import dumps
    from faice.red.schema import load_schema

    typer.echo(dumps(load_schema(name), _check_format(fmt)), nl=False)


@schema_app.command("validate")
def schema_validate(
    name: str = typer.Argument(..., help="A name from faice schema list."),
    file: str = typer.Argument(..., help="The document: a path, - for stdin, or an http(s) URL."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Check a document against one schema only (structure, no RED semantics).

    Example: faice schema validate red-engine-container-docker settings.yml
    """
    from faice.red.problems import LocatedProblem, locate_problems
    from faice.red.schema import schema_problems, schema_text
    from faice.red.source import read_source

    schema_text(name)
    try:
        source, data = read_source(file)
        errors = locate_problems(source, schema_problems(name, data))
    except LoadError as exc:
        errors = [LocatedProblem(exc.name, exc.line or 1, exc.column or 1, "", exc.message, "error")]
    if as_json:
        typer.echo(json.dumps({"valid": not errors, "errors": [e.to_json() for e in errors]}, indent=2))
    else:
        for problem in errors:
            _err(str(problem))
    if errors:
        raise typer.Exit(EXIT_INVALID)


# --- convert --------------------------------------------------------------------------------


def _load_valid(file: str) -> Any:
    """Load and validate a RED file for conversion (warnings are shown, errors stop)."""
    from faice.red.load import check, load
    from faice.red.prepare import ValidationFailed

    doc = load(file)
    for notice in doc.notices:
        _err(notice)
    errors, warnings = check(doc, check_connectors=False)
    if errors:
        raise ValidationFailed(errors)
    return doc


def _write(path: Path | None, text: str) -> None:
    if path is None or str(path) == "-":
        typer.echo(text, nl=False)
        return
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot write {path}: {exc.strerror or exc}") from None


@convert_app.command("batches")
def convert_batches(
    file: str = typer.Argument(..., help="RED file (path, - or URL)."),
    prefix: str = typer.Option("faice_", "--prefix", help="File name prefix: PREFIXbatch_N.EXT."),
    fmt: str = FormatOption,
    outdir: Path = typer.Option(Path("."), "--outdir", "-o", help="Directory to write the files into."),
) -> None:
    """Write one RED file per batch (PREFIXbatch_0.yml, ...), each runnable on its own.

    Example: faice convert batches experiment.yml --prefix run_ --outdir runs/
    """
    from faice.red.convert import batch_documents
    from faice.red.dump import dumps, extension

    fmt = _check_format(fmt)
    doc = _load_valid(file)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInput(f"cannot create {outdir}: {exc.strerror or exc}") from None
    documents = batch_documents(doc.data)
    for i, document in enumerate(documents):
        _write(outdir / f"{prefix}batch_{i}.{extension(fmt)}", dumps(document, fmt))
    _err(f"wrote {len(documents)} file{'s' if len(documents) != 1 else ''} to {outdir}")


@convert_app.command("cwl")
def convert_cwl(
    file: str = typer.Argument(..., help="RED file (path, - or URL)."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write the CWL tool here instead of stdout."),
    job: Path | None = typer.Option(None, "--job", help="Also write a CWL job file with the inputs that need no connector (local files by path)."),
    batch: int = typer.Option(0, "--batch", help="Which batch the job file is for."),
    fmt: str = FormatOption,
) -> None:
    """Print the cli section as a standalone CWL CommandLineTool (runs with cwltool).

    The tool gets a DockerRequirement for the RED file's image. With --job, inputs with a
    red-connector-local connector become File/Directory paths; inputs behind other connectors
    are left out with a notice.

    Example: faice convert cwl red.yml -o tool.cwl --job job.yml && cwltool tool.cwl job.yml
    """
    from faice.red.convert import cwl_job, cwl_tool
    from faice.red.dump import dumps
    from faice.red.source import is_url

    fmt = _check_format(fmt)
    doc = _load_valid(file)
    _write(output, dumps(cwl_tool(doc.data), fmt))
    if job is not None:
        base = os.getcwd() if file == "-" or is_url(file) else os.path.dirname(os.path.abspath(file))
        try:
            job_data, skipped = cwl_job(doc.data, batch, base)
        except IndexError as exc:
            raise InvalidInput(str(exc)) from None
        if skipped:
            _err(f"notice: left out of the job (they need a connector): {', '.join(skipped)}")
        _write(job, dumps(job_data, fmt))


@convert_app.command("format")
def convert_format(
    file: str = typer.Argument(..., help="A YAML or JSON file (path, - or URL)."),
    fmt: str = typer.Option(..., "--format", "-f", help="Output format: yaml or json."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write here instead of stdout."),
) -> None:
    """Convert a YAML or JSON document to the other format (key order is kept).

    Example: faice convert format red.yml --format json > red.json
    """
    from faice.red.dump import dumps
    from faice.red.source import read_source

    fmt = _check_format(fmt)
    _, data = read_source(file)
    _write(output, dumps(data, fmt))


# --- entry point ----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """Run the CLI: one-line errors with documented exit codes, tracebacks only with --debug."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    command = typer.main.get_command(app)
    try:
        code = command.main(args=args, prog_name="faice", standalone_mode=False)
    except typer.Exit as exc:
        code = exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        _err("faice: interrupted")
        code = EXIT_INTERRUPTED
    except FaiceError as exc:
        if debug:
            raise
        _report(exc)
        code = exc.exit_code
    except BrokenPipeError:
        code = 0
        sys.stderr.close()
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback without --debug
        if _is_usage_error(exc):
            exc.show()  # type: ignore[attr-defined]
            code = exc.exit_code  # type: ignore[attr-defined]
        elif debug:
            raise
        else:
            _err(f"faice: internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)")
            code = 1
    sys.exit(code if isinstance(code, int) else 0)


def _is_usage_error(exc: Exception) -> bool:
    """Click's usage errors (Typer may vendor its own click, so match by shape, not class)."""
    return callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int)


def _report(exc: FaiceError) -> None:
    from faice.red.prepare import ValidationFailed

    if isinstance(exc, ValidationFailed):
        for problem in exc.problems:
            _err(str(problem))
        return
    _err(str(exc) if isinstance(exc, LoadError) else f"faice: {exc}")
