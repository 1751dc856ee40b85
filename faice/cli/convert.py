"""``faice convert``: a RED file as one file per batch, its cli as a CWL tool, JSON <-> YAML."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer

from faice.cli.app import CONTEXT, FormatOption, app, check_format, err
from faice.errors import InvalidInput

convert_app = typer.Typer(
    help="Convert a RED file: one file per batch, the cli as a CWL tool, JSON <-> YAML; or a CWL tool and its jobs to a RED file.\n\nExamples:\n\n  faice convert batches red.yml --prefix run_\n\n  faice convert cwl red.yml -o tool.cwl --job job.yml\n\n  faice convert red tool.cwl job.yml -o red.yml\n\n  faice convert format red.yml --format json",
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


@convert_app.command("red")
def convert_red(
    tool: str = typer.Argument(..., metavar="TOOL", help="CWL CommandLineTool (path, - or URL)."),
    jobs: list[str] = typer.Argument(None, metavar="[JOB]...", help="CWL job files (each one job, or a list of jobs); none: the tool's defaults."),
    image: str | None = typer.Option(None, "--image", help="Container image (default: the tool's DockerRequirement dockerPull or dockerImageId)."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write the RED file here instead of stdout."),
    fmt: str = FormatOption,
) -> None:
    """Write a RED 9 file that runs a CWL CommandLineTool as cwltool TOOL JOB would.

    The tool becomes the RED file's cli (cwlVersion v1.0, map forms, T[] and T? types; hints and
    metadata but doc left out) and its image container.settings.image.url. Each job becomes one
    batch (one job: inputs at the top level): File and Directory values get a connector
    (local paths: red-connector-local with the absolute path, relative to the job file's folder;
    http(s) locations: red-connector-http), the tool's defaults fill what a job leaves out. The
    outputs stay in faice exec's output directory. A tool a RED file cannot hold (arguments,
    stdin, JavaScript, requirements but Docker, ...) is refused with each feature located;
    faice exec runs most of those tools directly.

    \b
    Examples:
      faice convert red tool.cwl job.yml -o red.yml && faice exec red.yml
      faice convert red tool.cwl a.yml b.yml --image busybox   # 2 batches
      faice convert red tool.cwl jobs.yml -f json   # a YAML list of jobs
      faice convert red tool.cwl   # the tool's defaults only
    """
    from faice.cwl import is_cwl
    from faice.cwl.check import check_valid
    from faice.cwl.jobs import base_of, read_jobs
    from faice.cwl.to_red import ConvertError, to_red, unknown_inputs
    from faice.red.dump import dumps
    from faice.red.prepare import ValidationFailed
    from faice.red.problems import LocatedProblem
    from faice.red.source import local_location, read_source

    fmt = check_format(fmt)
    source, data = read_source(local_location(tool))
    if not is_cwl(data):
        raise InvalidInput(f"{source.name}: not a CWL document (no cwlVersion, class or $graph)")
    report = check_valid(tool, source, data)
    for problem in report.remarks("run", "embed"):
        err(str(problem))
    refused = report.refusals("run", "embed")
    if refused:
        runs = report.runs
        err(f"{source.name}: a RED file cannot hold this tool" + ("; faice exec runs it directly" if runs else "") + ":")
        raise ValidationFailed([LocatedProblem(p.file, p.line, p.column, p.path, _directly(p.message) if runs else p.message, "error") for p in refused])
    job_values: list[Any] = []
    bases: list[str] = []
    for job in (one for location in jobs or [] for one in read_jobs(location)):
        extra = unknown_inputs(data, job.values)
        if extra:
            err(f"notice: {job.name}: left out (the tool has no such input; cwltool ignores them too): {', '.join(extra)}")
        job_values.append(job.values)
        bases.append(job.base)
    try:
        red = to_red(data, job_values, bases, base_of(local_location(tool)), image)
    except ConvertError as exc:
        raise InvalidInput(str(exc)) from None
    _check_red(red)
    _write(output, dumps(red, fmt))
    if output is not None and str(output) != "-":
        count = len(red.get("batches") or [red])
        err(f"wrote {output}: RED 9, {count} batch{'es' if count != 1 else ''}")


def _directly(message: str) -> str:
    """A refusal's message saying that faice exec runs the tool as it is."""
    if "(faice exec runs it)" in message:
        return message.replace("(faice exec runs it)", "(faice exec runs it directly)")
    return f"{message} (faice exec runs it directly)"


def _check_red(red: dict[str, Any]) -> None:
    """The made RED file is valid, or the jobs' values do not fit the tool: say which."""
    from faice.red.problems import format_path
    from faice.red.validate import validate_data

    errors = [p for p in validate_data(red, check_connectors=False) if p.severity == "error"]
    if errors:
        reasons = "; ".join(f"{format_path(p.path)}: {p.message}" for p in errors[:5])
        raise InvalidInput(f"the jobs do not fit the tool: {reasons}")


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
