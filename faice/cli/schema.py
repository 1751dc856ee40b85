"""``faice schema``: the JSON Schemas faice validates RED files against, listed, shown or applied."""

from __future__ import annotations

import json

import typer

from faice.cli.app import CONTEXT, FormatOption, app, check_format, err
from faice.errors import EXIT_INVALID, LoadError

schema_app = typer.Typer(
    help="The JSON Schemas faice validates RED files against.\n\nExamples:\n\n  faice schema list\n\n  faice schema show red --format json\n\n  faice schema validate red red.yml",
    no_args_is_help=True,
    context_settings=CONTEXT,
)
app.add_typer(schema_app, name="schema")


@schema_app.command("list")
def schema_list(fmt: str = FormatOption) -> None:
    """List the schema names (use them with show and validate).

    Example: faice schema list --format json
    """
    from faice.red.dump import dumps
    from faice.red.schema import schema_names

    typer.echo(dumps({"schemas": schema_names()}, check_format(fmt)), nl=False)


@schema_app.command("show")
def schema_show(name: str = typer.Argument(..., help="A name from faice schema list."), fmt: str = FormatOption) -> None:
    """Print a JSON Schema.

    Example: faice schema show red --format json > red.schema.json
    """
    from faice.red.dump import dumps
    from faice.red.schema import load_schema

    typer.echo(dumps(load_schema(name), check_format(fmt)), nl=False)


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
        errors = [LocatedProblem.of_load_error(exc)]
    if as_json:
        typer.echo(json.dumps({"valid": not errors, "errors": [e.to_json() for e in errors]}, indent=2))
    else:
        for problem in errors:
            err(str(problem))
    if errors:
        raise typer.Exit(EXIT_INVALID)
