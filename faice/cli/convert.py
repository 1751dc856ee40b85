"""``faice convert``: a RED file as one file per batch, its cli as a CWL tool, JSON <-> YAML."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer

from faice.cli.app import CONTEXT, FormatOption, app, check_format, err
from faice.errors import InvalidInput

convert_app = typer.Typer(
    help="Convert a RED file: one file per batch, the cli as a CWL tool, JSON <-> YAML.\n\nExamples:\n\n  faice convert batches red.yml --prefix run_\n\n  faice convert cwl red.yml -o tool.cwl --job job.yml\n\n  faice convert format red.yml --format json",
    no_args_is_help=True,
    context_settings=CONTEXT,
)
app.add_typer(convert_app, name="convert")


def _load_valid(file: str) -> Any:
    """Load and validate a RED file for conversion (warnings are shown, errors stop)."""
    from faice.red.load import check, load
    from faice.red.prepare import ValidationFailed

    doc = load(file)
    for notice in doc.notices:
        err(notice)
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
    force: bool = typer.Option(False, "--force", help="Replace files of these names that exist already."),
) -> None:
    """Write one RED file per batch (PREFIXbatch_0.yml, ...), each runnable on its own.

    Relative red-connector-local paths are rewritten for where the new files go. Existing files
    are not replaced without --force.

    Example: faice convert batches experiment.yml --prefix run_ --outdir runs/
    """
    from faice.red.convert import batch_documents
    from faice.red.dump import dumps, extension

    fmt = check_format(fmt)
    doc = _load_valid(file)
    source = doc.source.name
    source_dir = os.path.dirname(os.path.realpath(source)) if os.path.exists(source) else os.getcwd()  # as exec resolves it
    documents = batch_documents(doc.data, source_dir, os.path.realpath(outdir))
    targets = [outdir / f"{prefix}batch_{i}.{extension(fmt)}" for i in range(len(documents))]
    existing = [t for t in targets if t.exists()]
    if existing and not force:
        more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
        raise InvalidInput(f"{existing[0]}{more} exist{'s' if len(existing) == 1 else ''} already; --force replaces them")
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInput(f"cannot create {outdir}: {exc.strerror or exc}") from None
    for target, document in zip(targets, documents, strict=True):
        _write(target, dumps(document, fmt))
    err(f"wrote {len(documents)} file{'s' if len(documents) != 1 else ''} to {outdir}")


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

    fmt = check_format(fmt)
    doc = _load_valid(file)
    _write(output, dumps(cwl_tool(doc.data), fmt))
    if job is not None:
        base = os.getcwd() if file == "-" or is_url(file) else os.path.dirname(os.path.abspath(file))
        try:
            job_data, skipped = cwl_job(doc.data, batch, base)
        except IndexError as exc:
            raise InvalidInput(str(exc)) from None
        if skipped:
            err(f"notice: left out of the job (they need a connector): {', '.join(skipped)}")
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

    fmt = check_format(fmt)
    _, data = read_source(file)
    _write(output, dumps(data, fmt))
