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
users_app = typer.Typer(
    help="Users of faice serve (stored in the state file, passwords as salted scrypt hashes).\n\n"
    "Passwords are asked for without echo, or read from standard input with --password-stdin; never an argument.\n\n"
    "Examples:\n\n  faice users add alice --admin\n\n  printf '%s\\n' \"$PW\" | faice users passwd alice --password-stdin\n\n  faice users list",
    no_args_is_help=True,
    context_settings=CONTEXT,
)
app.add_typer(schema_app, name="schema")
app.add_typer(convert_app, name="convert")
app.add_typer(users_app, name="users")

FormatOption = typer.Option("yaml", "--format", "-f", help="Output format: yaml or json.")
NoMountOption = typer.Option(False, "--no-mount", help="Copy directories marked mount: true instead of mounting them (where sshfs or FUSE is missing).")
PidsLimitOption = typer.Option(DEFAULT_PIDS_LIMIT, "--pids-limit", min=0, help="Processes and threads a batch's container may have (0: no limit).")


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
    as_json: bool = typer.Option(False, "--json", help="Print only the result document as JSON on stdout."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but a line for each batch that failed (and errors); the exit code tells the rest."),
    outdir: Path = typer.Option(Path("outputs"), "--outdir", "-o", help="Where outputs without a connector go (one batch_N folder per batch when there are several)."),
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
    gpu_ids: str | None = typer.Option(None, "--gpu-ids", metavar="0,1", help="GPU device ids to give every container."),
    var: list[str] = typer.Option([], "--var", metavar="NAME=VALUE", help="Value of a {{variable}} (repeatable). Prefer --vars-file or FAICE_VAR_NAME for secrets: argv is visible to other users."),
    vars_file: Path | None = typer.Option(None, "--vars-file", help="YAML/JSON mapping of variable names to values."),
    non_interactive: bool = typer.Option(False, "--non-interactive", help="Never prompt: fail listing the variables that have no value."),
) -> None:
    """Run a RED experiment locally: every batch in its own Docker container.

    Inputs are fetched by connectors on this machine and mounted read-only under /cc/inputs;
    the tool runs as you, in /cc/outputs, which is OUTDIR (or OUTDIR/batch_N). Outputs with a
    connector are sent; all are checked, measured and recorded (see faice list / show / logs).
    Directories with mount: true are mounted from their server (ssh: sshfs) and always unmounted
    afterwards; --no-mount copies them instead. SSH host keys are trusted on first use and
    remembered in ~/.local/share/faice/known_hosts; a changed key is an error.
    Variables ({{name}} in access/auth blocks) come from --var, --vars-file, FAICE_VAR_name, or
    a prompt. Secrets are masked in everything faice prints and never stored.

    Exit codes: 0 all batches succeeded, 1 a batch failed, 2 invalid input, 3 Docker, the
    image or mounting unusable, 130 interrupted.

    Examples:

      faice exec red.yml

      faice exec red.yml --dry-run --json

      faice exec batches.yml --jobs 4 --retries 1 --timeout 600 --outdir results/
    """
    from faice.red.prepare import prepare
    from faice.runner.plan import plan

    # A dry run shows what would run even with a connector that is not installed here (a warning).
    prepared = prepare(file, variables=_parse_vars(var, vars_file), prompt=_prompter(non_interactive), connectors_required=not dry_run, local=True)
    for said in [] if quiet else [*prepared.doc.notices, *map(str, prepared.warnings)]:
        _err(said)
    mask = prepared.masker
    if dry_run:
        plans = plan(prepared.experiment, mask)
        if as_json:
            batches = [{"index": p.index, "image": mask(p.image), "argv": [mask(a) for a in p.argv]} for p in plans]
            typer.echo(json.dumps({"batches": batches}, indent=2))
            return
        import shlex

        for p in plans:
            typer.echo(f"batch {p.index}: image {mask(p.image)}")
            typer.echo(f"  argv: {mask(shlex.join(p.argv))}")
            for staged in p.staged:
                how = "mounted by" if staged.connector.mount and not no_mount else "via"
                typer.echo(f"  input {staged.key}{'' if staged.index is None else f'[{staged.index}]'}: {staged.kind} {how} {staged.connector.command} -> {staged.container_path}")
        return
    from faice.runner.batch import RunOptions
    from faice.runner.execute import local_jobs, no_mount_notice

    experiment = prepared.experiment
    default_jobs, capped = local_jobs(experiment)
    for notice in (no_mount_notice(experiment) if no_mount else None, None if jobs else capped):
        if notice and not quiet:
            _err(f"{prepared.doc.source.name}: notice: {notice}")
    options = RunOptions(
        outdir=outdir.resolve(),
        jobs=jobs or default_jobs,
        retries=retries if retries is not None else (experiment.retries or 0),
        timeout=timeout,
        network=network,
        pull=not disable_pull,
        leave_container=leave_container,
        connector_validation=not disable_connector_validation,
        preserve_environment=list(preserve_environment),
        gpu_ids=[g.strip() for g in gpu_ids.split(",") if g.strip()] if gpu_ids else None,
        mount=not no_mount,
        pids_limit=pids_limit,
    )
    _run(prepared, options, as_json, quiet)


def _run(prepared: Any, options: Any, as_json: bool, quiet: bool = False) -> None:
    """Run the batches with a live view (or plain lines), then print the result; exit by its state.
    ``quiet``: only a line for each failed batch."""
    import signal

    from faice.runner.execute import execute
    from faice.view import Progress, print_summary

    def terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    store = _store()
    live = not as_json and not quiet and sys.stderr.isatty()
    with Progress(len(prepared.experiment.batches), live, quiet) as progress:
        result = execute(prepared, options, store, progress.event)
    document = result.to_json()
    if as_json:
        typer.echo(json.dumps(document, indent=2))
    elif not quiet:
        print_summary(document)
        typer.echo(f"outputs: {result.outdir}")
    raise typer.Exit(EXIT_INTERRUPTED if result.interrupted else {"succeeded": 0, "failed": 1}.get(result.state, EXIT_INTERRUPTED))


# --- inspect and control --------------------------------------------------------------------


def _store() -> Any:
    """The state file, after cleaning up runs whose faice process died (faice/runner/reconcile.py)."""
    from faice.runner.reconcile import reconcile
    from faice.state.store import Store

    store = Store(state.db)
    reconcile(store)
    return store


@app.command("list")
def list_(
    limit: int = typer.Option(50, "--limit", "-n", min=1, help="How many experiments to show."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List experiments, newest first, with the number of batches in each state.

    Example: faice list -n 10
    """
    from faice.state.cleanup import footprint
    from faice.view import experiment_summary

    store = _store()
    rows = [experiment_summary(row, footprint(store, row).bytes) for row in store.experiments(limit)]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    from faice.view import print_experiments

    print_experiments(rows)


@app.command()
def show(
    id: str = typer.Argument(..., metavar="ID", help="An experiment id or a batch id (or a unique start of one, 4 characters at least)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show an experiment (with its batches) or a batch (with its state history).

    Example: faice show 6751a3c2e4b0a1b2c3d4e5f6 --json
    """
    store = _store()
    kind, id = store.resolve_id(id)
    experiment = store.experiment(id) if kind == "experiment" else None
    if experiment is not None:
        from faice.state.cleanup import footprint
        from faice.view import experiment_document

        batches = store.batches(id)
        document: dict[str, Any] = experiment_document(experiment, [b.to_json() for b in batches], footprint(store, experiment).to_json())
    else:
        batch = store.batch(id)
        assert batch is not None
        document = {**batch.to_json(), "history": store.history(id)}
    if as_json:
        typer.echo(json.dumps(document, indent=2))
        return
    from faice.view import print_batch, print_experiment

    if experiment is not None:
        print_experiment(document)
    else:
        print_batch(document)


@app.command()
def logs(
    batch_id: str = typer.Argument(..., metavar="BATCH_ID", help="A batch id (or a unique start of one, 4 characters at least)."),
    stderr: bool = typer.Option(False, "--stderr", help="Show the standard error stream instead of standard output."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing while the batch runs."),
) -> None:
    """Print what a batch's tool wrote to stdout (or --stderr).

    Example: faice logs 6751a3c2e4b0a1b2c3d4e5f6 --stderr
    """
    import time as _time

    from faice.state.store import FINAL_STATES, log_path

    store = _store()
    kind, batch_id = store.resolve_id(batch_id)
    if kind == "experiment":
        batches = store.batches(batch_id)
        shown = ", ".join(f"{b.id} ({b.state})" for b in batches[:5]) + (f", and {len(batches) - 5} more (faice show {batch_id})" if len(batches) > 5 else "")
        raise InvalidInput(f"{batch_id} is an experiment; logs belong to its batches: {shown}")
    batch = store.batch(batch_id)
    path = log_path(store.path, batch_id, "stderr" if stderr else "stdout")
    while follow and not path.exists() and batch is not None and batch.state not in FINAL_STATES:
        if batch.state == "processing" and batch.container:
            from faice.runner.engine import open_engine

            if open_engine().follow_logs(batch.container, stderr=stderr, out=sys.stdout.buffer):
                return
        _time.sleep(0.5)
        batch = store.batch(batch_id)
    if not path.exists():
        raise InvalidInput(f"batch {batch_id} has no captured {'stderr' if stderr else 'stdout'} (state: {batch.state if batch else 'unknown'})")
    with open(path, "rb") as handle:
        sys.stdout.buffer.write(handle.read())


@app.command()
def cancel(id: str = typer.Argument(..., metavar="ID", help="An experiment id or a batch id (or a unique start of one, 4 characters at least).")) -> None:
    """Cancel an experiment or a batch, also when it runs in another terminal.

    Batches that have not finished are recorded as cancelled and their containers are killed.

    Example: faice cancel 6751a3c2e4b0a1b2c3d4e5f6
    """
    from faice.runner.cancel import cancel_ids

    store = _store()
    cancelled = cancel_ids(store, store.resolve_id(id)[1])
    typer.echo(f"cancelled {cancelled} batch{'es' if cancelled != 1 else ''}")


@app.command("rm")
def rm(
    ids: list[str] = typer.Argument(..., metavar="EXPERIMENT_ID...", help="Experiments to remove (unique starts of ids will do)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would be removed; remove nothing."),
) -> None:
    """Remove finished experiments: their records, captured logs and outputs.

    Outputs are removed only where faice's marker in them names the experiment (a folder a later
    run took over stays). A running experiment is refused: cancel it first.

    Example: faice rm 6751a3c2e4b0 6751a3c2f0e1 --dry-run
    """
    from faice.state.cleanup import remove

    store = _store()
    resolved = []
    for given in ids:
        kind, full = store.resolve_id(given)
        if kind != "experiment":
            raise InvalidInput(f"{full} is a batch; faice rm removes whole experiments (faice show {full} names its experiment)")
        resolved.append(full)
    _say_removed(remove(store, resolved, dry_run), dry_run)


@app.command()
def prune(
    older_than: str = typer.Option("30d", "--older-than", metavar="AGE", help="Only experiments made longer ago than this (30d, 12h, 90m, 2w)."),
    states: list[str] = typer.Option([], "--state", help="Only experiments that ended so: succeeded, failed or cancelled (repeatable)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would be removed; remove nothing."),
) -> None:
    """Remove finished experiments older than --older-than, with their logs and outputs.

    Works on faice serve's state file too (--db), its outputs beside it included.

    Examples:

      faice prune --dry-run

      faice prune --older-than 7d --state failed --state cancelled
    """
    from faice.state.cleanup import parse_duration
    from faice.state.cleanup import prune as prune_experiments

    unknown = [s for s in states if s not in ("succeeded", "failed", "cancelled")]
    if unknown:
        raise InvalidInput(f"--state {unknown[0]}: an experiment ends succeeded, failed or cancelled")
    _say_removed(prune_experiments(_store(), parse_duration(older_than), tuple(states) or None, dry_run), dry_run)


def _say_removed(removed: list[Any], dry_run: bool) -> None:
    from faice.view import size

    verb = "would remove" if dry_run else "removed"
    for found in removed:
        where = f", outputs {found.outputs}" if found.outputs else ""
        typer.echo(f"{verb} {found.experiment_id}: {size(found.bytes)} ({len(found.logs)} log files{where})")
    typer.echo(f"{verb} {len(removed)} experiment{'s' if len(removed) != 1 else ''}, {size(sum(f.bytes for f in removed))}")


# --- submit ---------------------------------------------------------------------------------


@app.command()
def submit(
    file: str = typer.Argument(..., metavar="FILE", help="RED file: a path, - for stdin, or an http(s) URL."),
    url: str | None = typer.Option(None, "--url", help="The agency's base URL (default: execution.settings.access.url of the RED file)."),
    wait: bool = typer.Option(False, "--wait", help="Follow the batches until all have ended; exit by their result."),
    poll: float = typer.Option(1.0, "--poll", min=0.1, metavar="SECONDS", help="With --wait: seconds between two looks at the batches."),
    as_json: bool = typer.Option(False, "--json", help='Print only {"experimentId"} (with --wait: {"experimentId", "state", "batches"}) as JSON.'),
    disable_retry: bool = typer.Option(False, "--disable-retry", help="Ask the agency not to retry failed batches (RED 8 retryIfFailed: false does the same)."),
    disable_connector_validation: bool = typer.Option(False, "--disable-connector-validation", help="Ask the agency to skip the connectors' own *-validate checks."),
    var: list[str] = typer.Option([], "--var", metavar="NAME=VALUE", help="Value of a {{variable}} (repeatable). Prefer --vars-file or FAICE_VAR_NAME for secrets: argv is visible to other users."),
    vars_file: Path | None = typer.Option(None, "--vars-file", help="YAML/JSON mapping of variable names to values."),
    non_interactive: bool = typer.Option(False, "--non-interactive", help="Never prompt: fail when a variable or the credentials have no value."),
) -> None:
    """Send a RED file to a CC-Agency server (or faice serve) and print the experimentId.

    The file is validated and its variables filled as for faice exec; connectors need not be
    installed here (the agency runs them). The agency's URL and credentials are never part of the
    body. Credentials come from execution.settings.access.auth, else FAICE_AGENCY_USER and
    FAICE_AGENCY_PASSWORD, else a prompt; never from an option. With --wait the batches are
    followed until they end; Ctrl-C stops waiting but not the batches.

    Exit codes: 0 submitted (with --wait: all batches succeeded), 1 a batch failed or the agency
    answered an error, 2 invalid input or refused credentials, 3 the agency unreachable, 130
    interrupted or a batch cancelled.

    Examples:

      faice submit red.yml --vars-file secrets.yml

      FAICE_AGENCY_USER=alice faice submit red.yml --url https://agency.example.org/cc --wait

      faice submit batches.yml --wait --json --disable-retry
    """
    from faice.red.prepare import prepare
    from faice.submit import submit as send

    prompt = _prompter(non_interactive)
    prepared = prepare(file, variables=_parse_vars(var, vars_file), prompt=prompt, connectors_required=False)
    for notice in prepared.doc.notices:
        _err(notice)
    for warning in prepared.warnings:
        _err(str(warning))
    raise typer.Exit(send(prepared, url=url, wait_for_batches=wait, poll=poll, as_json=as_json, disable_retry=disable_retry,
                          disable_connector_validation=disable_connector_validation, ask=prompt))


# --- users ----------------------------------------------------------------------------------

PasswordStdin = typer.Option(False, "--password-stdin", help="Read the password from the first line of standard input.")


def _users() -> Any:
    from faice.state.users import Users

    return Users(_store())


def _new_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise InvalidInput("no terminal to ask for the password: use --password-stdin")
    return typer.prompt("password", hide_input=True, confirmation_prompt=True, err=True)


def _user_call(action: Any) -> None:
    from faice.state.users import UserError

    try:
        action()
    except UserError as exc:
        raise InvalidInput(str(exc)) from None


@users_app.command("add")
def users_add(name: str = typer.Argument(..., help="The user name."), admin: bool = typer.Option(False, "--admin", help="The user sees and cancels everyone's experiments."),
              password_stdin: bool = PasswordStdin) -> None:
    """Add a user. Example: faice users add alice --admin"""
    password = _new_password(password_stdin)
    _user_call(lambda: _users().add(name, password, admin=admin))
    typer.echo(f"added {'admin ' if admin else ''}user {name}")


@users_app.command("list")
def users_list(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List users. Example: faice users list --json"""
    users = _users().all()
    if as_json:
        typer.echo(json.dumps([{"name": u.name, "isAdmin": u.is_admin, "createdAt": u.created_at} for u in users], indent=2))
        return
    from faice.view import print_table

    print_table(["user", "admin"], [[u.name, "yes" if u.is_admin else ""] for u in users])


@users_app.command("remove")
def users_remove(name: str = typer.Argument(..., help="The user name.")) -> None:
    """Remove a user (their tokens stop working at once). Example: faice users remove alice"""
    _user_call(lambda: _users().remove(name))
    typer.echo(f"removed user {name}")


@users_app.command("passwd")
def users_passwd(name: str = typer.Argument(..., help="The user name."), password_stdin: bool = PasswordStdin) -> None:
    """Set a new password (ends the user's tokens). Example: faice users passwd alice"""
    password = _new_password(password_stdin)
    _user_call(lambda: _users().set_password(name, password))
    typer.echo(f"changed the password of {name}")


# --- serve ----------------------------------------------------------------------------------


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (anything but loopback without TLS gets a warning)."),
    port: int = typer.Option(8080, "--port", "-p", min=0, max=65535, help="TCP port (0: any free port, printed at start)."),
    jobs: int | None = typer.Option(None, "--jobs", "-j", min=1, help="Batches running at once, over all experiments (default: the CPU count)."),
    network: str | None = typer.Option(None, "--network", help="Docker network mode for admins' containers (default: Docker's bridge)."),
    user_network: str = typer.Option("none", "--user-network", help="Docker network mode for other users' containers (default: none: Docker's bridge would let them reach this machine and its networks)."),
    token_seconds: float | None = typer.Option(None, "--token-seconds", min=1, help="Lifetime of access tokens and GET /token tokens (default: 900 and 86400)."),
    ssl_certfile: Path | None = typer.Option(None, "--ssl-certfile", exists=True, dir_okay=False, help="Serve HTTPS with this certificate (PEM)."),
    ssl_keyfile: Path | None = typer.Option(None, "--ssl-keyfile", exists=True, dir_okay=False, help="The certificate's private key (PEM)."),
    access_log: bool = typer.Option(False, "--access-log", help="Log every request on stderr."),
    max_batches: int = typer.Option(100_000, "--max-batches", min=1, help="Most batches POST /red takes in one experiment."),
    no_mount: bool = NoMountOption,
    pids_limit: int = PidsLimitOption,
) -> None:
    """Serve the CC-Agency REST API on this machine; its batches run here in Docker.

    Clients written for CC-Agency (requests scripts, upstream faice exec with the ccagency
    engine, dashboards) work unchanged: POST /red registers an experiment, GET /batches and
    /experiments list them, DELETE /batches/ID cancels. Experiments started with faice exec in
    any terminal are listed too, under your user name. OpenAPI at /openapi.json, docs at /docs.

    Users: faice users add NAME [--admin]. With no users, the first start creates "admin" and
    prints its random password once. Protected routes take HTTP Basic credentials or a Bearer
    token from POST /login. Ctrl-C or SIGTERM cancels and records the running batches.

    Exit codes: 0 stopped, 2 invalid options, 3 the port or the state file is in use.

    Examples:

      faice serve

      faice serve --port 9000 --jobs 4

      curl -u admin http://127.0.0.1:8080/batches?limit=10
    """
    from faice.host import cpu_count
    from faice.server.run import ServeOptions, run_server
    from faice.state.store import Store

    options = ServeOptions(host=host, port=port, jobs=jobs or cpu_count(), ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile,
                           access_log=access_log, token_seconds=token_seconds, network=network, user_network=user_network, max_batches=max_batches,
                           mount=not no_mount, pids_limit=pids_limit)
    run_server(Store(state.db), options)


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
    force: bool = typer.Option(False, "--force", help="Replace files of these names that exist already."),
) -> None:
    """Write one RED file per batch (PREFIXbatch_0.yml, ...), each runnable on its own.

    Relative red-connector-local paths are rewritten for where the new files go. Existing files
    are not replaced without --force.

    Example: faice convert batches experiment.yml --prefix run_ --outdir runs/
    """
    from faice.red.convert import batch_documents
    from faice.red.dump import dumps, extension

    fmt = _check_format(fmt)
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
