"""``faice validate``, ``faice exec`` (with its dry run) and ``faice resume``: a RED file checked, shown or run here."""

from __future__ import annotations

import inspect
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from faice.cli.app import (
    CacheOption,
    EngineOption,
    NoMountOption,
    PidsLimitOption,
    VarOption,
    VarsFileOption,
    app,
    engine_factory,
    err,
    open_store,
    parse_vars,
    print_notices,
    prompter,
)
from faice.cli.exits import outcome_code
from faice.errors import EXIT_INTERRUPTED, EXIT_INVALID, InvalidInput, LoadError

DEFAULT_OUTDIR = Path("outputs")
#: ``ctx.meta`` key: the experiment ``faice resume`` names, for ``faice exec --resume`` to take up
RESUMING = "faice.resume"


@app.command()
def validate(
    files: list[str] = typer.Argument(..., metavar="FILE", help="RED files or CWL documents: paths (or file:// URIs), - for stdin, or http(s) URLs."),
    as_json: bool = typer.Option(False, "--json", help='Print {"valid", "errors", "warnings"} as JSON instead of lines (CWL: also "runs", "embeddable", "unsupported").'),
) -> None:
    """Check RED files, or CWL documents, without running anything.

    Reports every problem at once, one per line, as FILE:LINE:COL: path.to.key: message.
    Connectors that are not installed here are warnings (the file may be meant for another
    machine).

    A CWL document (v1.0, v1.1, v1.2; YAML or JSON; a $graph too) is validated by cwltool, the
    CWL reference runner, as cwltool --validate does. A valid one then gets faice's verdict: a
    notice for each feature that faice exec does not run, or that a RED file cannot hold, at
    its line. The first CWL document of each version takes about a second longer (cwltool's
    schemas are then cached in ~/.cache/faice/cwl).

    Exit 0 when all files are valid (a valid CWL document that faice cannot run included:
    the notices say so), 2 when any is not.

    Examples:

      faice validate red.yml

      faice validate batches/*.yml --json

      faice validate tool.cwl

      faice validate workflow.cwl --json

      curl -s https://example.org/red.yml | faice validate -
    """
    from faice.red.problems import LocatedProblem

    results = []
    all_valid = True
    for location in files:
        try:
            result = _validate_one(location, as_json)
        except LoadError as exc:
            error = LocatedProblem.of_load_error(exc)
            result = {"file": error.file, "valid": False, "errors": [error.to_json()], "warnings": []}
            if not as_json:
                err(str(error))
        all_valid &= result["valid"]
        results.append(result)
    if as_json:
        document: Any = results[0] if len(results) == 1 else {"valid": all_valid, "files": results}
        typer.echo(json.dumps(document, indent=2))
    if not all_valid:
        raise typer.Exit(EXIT_INVALID)


def _validate_one(location: str, as_json: bool) -> dict[str, Any]:
    """Validate one RED file or CWL document; print its lines unless --json; its JSON document."""
    from faice.cwl import is_cwl
    from faice.red.load import check, document
    from faice.red.source import local_location, read_source

    location = local_location(location)
    source, data = read_source(location)
    if is_cwl(data):
        from faice.cwl.check import check as check_cwl

        report = check_cwl(location, source, data)
        if not as_json:
            for problem in report.errors + report.warnings + [n.problem for n in report.notices]:
                err(str(problem))
            if report.valid:
                typer.echo(report.summary())
        return report.to_json()
    doc = document(source, data)
    for notice in doc.notices:
        err(notice)
    errors, warnings = check(doc)
    if not as_json:
        for problem in errors + warnings:
            err(str(problem))
        if not errors:
            batches = len(doc.data["batches"]) if "batches" in doc.data else 1
            typer.echo(f"{doc.source.name}: valid RED 9 ({batches} batch{'es' if batches != 1 else ''})")
    return {"file": errors[0].file if errors else location, "valid": not errors,
            "errors": [e.to_json() for e in errors], "warnings": [w.to_json() for w in warnings]}


@app.command("exec")
def exec_(
    ctx: typer.Context,
    file: str = typer.Argument(..., metavar="FILE", help="RED file or CWL CommandLineTool: a path (or a file:// URI), - for stdin, or an http(s) URL."),
    job_files: list[str] | None = typer.Argument(None, metavar="[JOB]...", show_default=False,
                                                 help="A CWL tool's job files (YAML or JSON); a file holding a list of jobs, or several files, run as batches."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate, fill variables and print each batch's image and argv; run nothing."),
    resume: bool = typer.Option(False, "--resume", help="Run again only the batches of FILE's last experiment that did not succeed (see faice resume --help)."),
    as_json: bool = typer.Option(False, "--json", help="Print only the result document as JSON on stdout."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but a line for each batch that failed (and errors); the exit code tells the rest."),
    outdir: Path | None = typer.Option(None, "--outdir", "-o", show_default=False,
                                       help="Where outputs without a connector go (one batch_N folder per batch when there are several; default: outputs)."),
    jobs: int | None = typer.Option(None, "--jobs", "-j", min=1, help="Batches run in parallel (default: batchConcurrencyLimit, at most the CPU count and what memory holds)."),
    retries: int | None = typer.Option(None, "--retries", min=0, help="Retries of a failed batch (default: from the RED file, else 0)."),
    timeout: float | None = typer.Option(None, "--timeout", min=0.1, help="Seconds a batch's container may run before it is killed."),
    network: str | None = typer.Option(None, "--network", help="Docker network mode for the containers (default: Docker's bridge; 'none' cuts them off)."),
    disable_pull: bool = typer.Option(False, "--disable-pull", help="Never pull the image; fail (exit 3) when it is not here."),
    leave_container: bool = typer.Option(False, "--leave-container", help="Keep each batch's stopped container for inspection."),
    preserve_environment: list[str] = typer.Option([], "--preserve-environment", metavar="VAR", help="Pass this environment variable into the containers (repeatable)."),
    disable_connector_validation: bool = typer.Option(False, "--disable-connector-validation", help="Skip the connectors' own *-validate checks."),
    no_mount: bool = NoMountOption,
    pids_limit: int = PidsLimitOption,
    engine: str | None = EngineOption,
    gpu_ids: str | None = typer.Option(None, "--gpu-ids", metavar="0,1", help="GPU device ids to give every container."),
    image: str | None = typer.Option(None, "--image", metavar="IMAGE", help="CWL: the image to run the tool in (overrides its DockerRequirement)."),
    cache: bool | None = CacheOption,
    var: list[str] = VarOption,
    vars_file: Path | None = VarsFileOption,
    non_interactive: bool = typer.Option(False, "--non-interactive", help="Never prompt: fail listing the variables that have no value."),
) -> None:
    """Run a RED experiment, or a CWL tool's jobs, locally: every batch in its own Docker (or Podman) container.

    Inputs are fetched by connectors on this machine and mounted read-only under /cc/inputs;
    the tool runs as you, in /cc/outputs, which is OUTDIR (or OUTDIR/batch_N). Outputs with a
    connector are sent; all are checked, measured and recorded (see faice list / show / logs).
    Directories with mount: true are mounted from their server (ssh: sshfs) and always unmounted
    afterwards; --no-mount copies them instead. SSH host keys are trusted on first use and
    remembered in ~/.local/share/faice/known_hosts; a changed key is an error.
    Variables ({{name}} in access/auth blocks) come from --var, --vars-file, FAICE_VAR_name, or
    a prompt. Secrets are masked in everything faice prints and never stored.

    With --cache (or FAICE_CACHE=1), a batch whose image ID, argv, environment and input
    contents match an earlier success reuses its result: no container starts, its outputs are
    linked into OUTDIR, and outputs with a connector are sent again (faice why ID explains a
    miss; faice cache ls|du|prune manages the cache).

    --resume takes up FILE's last experiment again, keeping its id, history and outputs: only
    its batches that did not succeed run (see faice resume --help).

    A CWL CommandLineTool runs as cwltool tool.cwl job.yml runs it, each job a batch: File and
    Directory inputs from local paths (mounted, not copied) or http(s) URLs, defaults,
    secondaryFiles, the image of its DockerRequirement (or --image), ResourceRequirement (memory
    limit, cores), EnvVarRequirement, ShellCommandRequirement, parameter references. stdout is
    the output object in cwltool's shape (a list of them for several jobs; --json gives faice's
    result document instead), progress goes to stderr. A tool using anything else (JavaScript,
    InitialWorkDirRequirement, a workflow, ...) is refused before anything runs, at its line:
    cwltool runs it.

    Exit codes: 0 all batches succeeded, 1 a batch failed, 2 invalid input, 3 Docker, the
    image or mounting unusable, 33 a CWL feature faice does not run (cwltool's code), 130
    interrupted.

    Examples:

      faice exec red.yml

      faice exec tool.cwl job.yml

      faice exec tool.cwl jobs.yml --image debian:bookworm --jobs 4

      faice exec red.yml --dry-run --json

      faice exec batches.yml --jobs 4 --retries 1 --timeout 600 --outdir results/

      faice exec red.yml --cache

      faice exec batches.yml --resume
    """
    from faice.red.prepare import prepare
    from faice.red.source import local_location

    file = local_location(file)
    if dry_run and resume:
        raise InvalidInput("--dry-run shows every batch of the file and runs nothing: leave out --resume")
    store = resumed = None
    if resume:  # found before any variable is asked for
        from faice.runner.resume import last_experiment

        store = open_store(ctx, read_heavy=False)
        resumed = ctx.meta.get(RESUMING) or last_experiment(store, file)
    from faice.cwl import is_cwl
    from faice.red.load import document
    from faice.red.source import read_source

    source, data = read_source(file)
    if is_cwl(data):
        from faice.cwl.prepare import prepare_cwl

        if var or vars_file:
            raise InvalidInput("--var and --vars-file fill a RED file's {{variables}}; a CWL tool's values come from its job files")
        cwl = prepare_cwl(file, source, data, job_files or [], image)
        prepared, plans = cwl.prepared, cwl.plans
        for remark in [] if quiet else cwl.remarks:
            err(str(remark))
    else:
        if job_files or image:
            raise InvalidInput(f"{source.name} is a RED file: job files and --image are for CWL tools (a RED file names its inputs and image)")
        # A dry run shows what would run even with a connector that is not installed here (a warning).
        prepared = prepare(document(source, data), variables=parse_vars(var, vars_file), prompt=prompter(non_interactive), connectors_required=not dry_run, local=True)
        plans = None
        if not quiet:
            print_notices(prepared)
    if dry_run:
        _print_dry_run(prepared, plans, as_json, mount=not no_mount)
        return
    from faice.runner.engine import engine_name
    from faice.runner.exec_options import cache_default, exec_options
    from faice.runner.resume import resumed_outdir

    store = store or open_store(ctx, read_heavy=False)
    if resumed is not None:
        outdir = resumed_outdir(store, resumed, outdir)
    options, notices = exec_options(
        prepared.experiment, outdir=outdir or DEFAULT_OUTDIR, jobs=jobs, retries=retries, gpu_ids=gpu_ids, timeout=timeout, network=network, pull=not disable_pull,
        leave_container=leave_container, connector_validation=not disable_connector_validation, preserve_environment=list(preserve_environment),
        mount=not no_mount, pids_limit=pids_limit, engine=engine_name(engine), cache=cache_default() if cache is None else cache,
    )
    for notice in [] if quiet else notices:
        err(f"{prepared.doc.source.name}: notice: {notice}")
    _run(ctx, store, prepared, options, as_json, quiet, resumed, plans)


def options_of(command: Callable[..., Any], *, leave_out: tuple[str, ...]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a command (whose ``**options`` take them) the parameters of ``command`` but
    ``leave_out``, after its own: one list, so that faice resume takes every option faice exec
    has, now and when exec gains one."""

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        own = [p for p in inspect.signature(function, eval_str=True).parameters.values() if p.kind != p.VAR_KEYWORD]
        theirs = [p for name, p in inspect.signature(command, eval_str=True).parameters.items() if name not in leave_out and name not in {q.name for q in own}]
        function.__signature__ = inspect.Signature([*own, *theirs], return_annotation=None)  # type: ignore[attr-defined]
        function.__annotations__ = {p.name: p.annotation for p in [*own, *theirs]}
        return function

    return decorate


@app.command(name="resume")
@options_of(exec_, leave_out=("file", "job_files", "dry_run", "resume", "image"))
def resume_(
    ctx: typer.Context,
    experiment_id: str = typer.Argument(..., metavar="EXPERIMENT_ID", help="The experiment (its id, or a unique start of it, 4 characters at least)."),
    file: str | None = typer.Argument(None, metavar="[FILE]", show_default=False,
                                      help="The RED file to read again (default: the path it was read from; - for stdin)."),
    **options: Any,
) -> None:
    """Run again the batches of an experiment that did not succeed: failed, cancelled (Ctrl-C)
    or cut off when faice was killed.

    The same as faice exec FILE --resume, which takes up FILE's last experiment (found by
    FILE's absolute path, a URL as given; none: exit 2, run it without --resume). The
    experiment keeps its id and history (each batch taken up again says "resumed (run N)");
    its succeeded batches and their outputs stay as they are, and the result lists them with
    the rest. The RED file is read again (variables and secrets are asked for as by exec:
    they are never stored) and must still describe the same batches: as many, the same image
    (still the same image ID) and the same argv each. Outputs stay in the experiment's
    output directory (--outdir may only name that one); only the directory of a batch that
    runs again is set aside (batch_N.old-TIME) and made anew. A run still going on (another
    terminal) is refused; every batch succeeded: nothing runs, exit 0, the result is printed.
    Ctrl-C stops a resumed run as any other, and it can be resumed again.

    Exit codes as faice exec; 2 also when the file no longer describes the experiment's
    batches, or the experiment cannot be resumed.

    Examples:

      faice resume 6751a3c2

      faice resume 6751a3c2 red.yml --jobs 2 --retries 1

      faice exec red.yml --resume
    """
    from faice.runner.resume import experiment_source

    experiment_id, source = experiment_source(open_store(ctx), experiment_id)
    ctx.meta[RESUMING] = experiment_id
    exec_(ctx, file=file or source, job_files=None, dry_run=False, resume=True, image=None, **options)


def _print_dry_run(prepared: Any, plans: list[Any] | None, as_json: bool, mount: bool) -> None:
    """Each batch's image and argv, and how its inputs would arrive."""
    from faice.runner.plan import plan

    mask = prepared.masker
    plans = plan(prepared.experiment, mask) if plans is None else plans
    if as_json:
        batches = [{"index": p.index, "image": mask(p.image), "argv": [mask(a) for a in p.argv]} for p in plans]
        typer.echo(json.dumps({"batches": batches}, indent=2))
        return
    import shlex

    for p in plans:
        typer.echo(f"batch {p.index}: image {mask(p.image)}")
        typer.echo(f"  argv: {mask(shlex.join(p.argv))}")
        for staged in p.staged:
            how = "mounted by" if staged.connector.mount and mount else "via"
            typer.echo(f"  input {staged.key}{'' if staged.index is None else f'[{staged.index}]'}: {staged.kind} {how} {staged.connector.command} -> {staged.container_path}")
        if p.stdin:
            typer.echo(f"  stdin: {p.stdin}")
        if p.environment:
            typer.echo(f"  environment: {mask(' '.join(f'{k}={shlex.quote(v)}' for k, v in p.environment.items()))}")
        limits = [f"{p.ram_mib} MiB" if p.ram_mib else "", f"{p.cores:g} CPUs" if p.cores else ""]
        if any(limits):
            typer.echo(f"  limits: {', '.join(x for x in limits if x)}")


def _run(ctx: typer.Context, store: Any, prepared: Any, options: Any, as_json: bool, quiet: bool, resume: str | None,
         plans: list[Any] | None = None) -> None:
    """Run the batches with a live view (or plain lines), then print the result; exit by its state.
    ``quiet``: only a line for each failed batch. ``resume``: the experiment to take up again.
    ``plans``: a CWL tool's batches, whose result is its output object on stdout."""
    from faice.runner.execute import execute
    from faice.signals import on_stop
    from faice.view import Progress, print_summary

    with on_stop():
        live = not as_json and not quiet and sys.stderr.isatty()
        with Progress(len(prepared.experiment.batches), live, quiet) as progress:
            result = execute(prepared, options, store, progress.event, engine_factory(ctx), resume=resume, plans=plans)
        if result.kept and result.kept == len(result.records) and not quiet:
            err(f"faice: nothing to resume: every batch of experiment {result.experiment_id} succeeded")
        document = result.to_json()
        if as_json:
            typer.echo(json.dumps(document, indent=2))
        elif plans is not None:
            _print_output_objects([o.key for o in plans[0].cli.outputs], document, quiet)
        elif not quiet:
            print_summary(document)
            typer.echo(f"outputs: {result.outdir}")
    raise typer.Exit(EXIT_INTERRUPTED if result.interrupted else outcome_code(result.state))


def _print_output_objects(keys: list[str], document: dict[str, Any], quiet: bool) -> None:
    """cwltool's stdout: the output object of the job (a list for several jobs; null for one that
    failed); what failed, and where the outputs are, on stderr."""
    from faice.cwl.outputs import output_object

    objects = [output_object(b["outputs"], keys) if b["state"] == "succeeded" else None for b in document["batches"]]
    typer.echo(json.dumps(objects[0] if len(objects) == 1 else objects, indent=4, ensure_ascii=False))
    for batch in document["batches"]:
        if batch["state"] != "succeeded" and not quiet:
            err(f"faice: job {batch['index']} {batch['state']}: {batch['error']} (faice logs {batch['batchId']})")
    if not quiet:
        err(f"faice: experiment {document['experimentId']} {document['state']}")
