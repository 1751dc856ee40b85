"""``faice submit`` and ``faice serve``: a CC-Agency talked to, or served here."""

from __future__ import annotations

from pathlib import Path

import typer

from faice.cli.app import (
    CacheOption,
    EngineOption,
    NoMountOption,
    PidsLimitOption,
    VarOption,
    VarsFileOption,
    app,
    parse_vars,
    print_notices,
    prompter,
    settings,
)
from faice.cli.exits import outcome_code


@app.command()
def submit(
    file: str = typer.Argument(..., metavar="FILE", help="RED file: a path, - for stdin, or an http(s) URL."),
    url: str | None = typer.Option(None, "--url", help="The agency's base URL (default: execution.settings.access.url of the RED file)."),
    wait: bool = typer.Option(False, "--wait", help="Follow the batches until all have ended; exit by their result."),
    poll: float = typer.Option(1.0, "--poll", min=0.1, metavar="SECONDS", help="With --wait, at an agency without GET /events: seconds between two looks at the batches."),
    as_json: bool = typer.Option(False, "--json", help='Print only {"experimentId"} (with --wait: {"experimentId", "state", "batches"}) as JSON.'),
    disable_retry: bool = typer.Option(False, "--disable-retry", help="Ask the agency not to retry failed batches (RED 8 retryIfFailed: false does the same)."),
    disable_connector_validation: bool = typer.Option(False, "--disable-connector-validation", help="Ask the agency to skip the connectors' own *-validate checks."),
    notify: list[str] = typer.Option([], "--notify", metavar="URL", help="faice serve: POST each state change of the experiment to URL, signed (repeatable; see GET /webhooks/secret)."),
    var: list[str] = VarOption,
    vars_file: Path | None = VarsFileOption,
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

      faice submit red.yml --url http://127.0.0.1:8080 --notify https://hooks.example.org/faice
    """
    from faice.red.prepare import prepare
    from faice.submit import submit as send

    prompt = prompter(non_interactive)
    prepared = prepare(file, variables=parse_vars(var, vars_file), prompt=prompt, connectors_required=False)
    print_notices(prepared)
    outcome = send(prepared, url=url, wait_for_batches=wait, poll=poll, as_json=as_json, disable_retry=disable_retry,
                   disable_connector_validation=disable_connector_validation, ask=prompt, notify=notify)
    raise typer.Exit(outcome_code(outcome))


@app.command()
def serve(
    ctx: typer.Context,
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
    event_buffer: int = typer.Option(1000, "--event-buffer", min=1, help="Events a GET /events client may be behind before it is dropped (it resumes with Last-Event-ID)."),
    no_mount: bool = NoMountOption,
    pids_limit: int = PidsLimitOption,
    engine: str | None = EngineOption,
    cache: bool | None = CacheOption,
) -> None:
    """Serve the CC-Agency REST API on this machine; its batches run here in Docker (or Podman: --engine podman).

    Clients written for CC-Agency (requests scripts, upstream faice exec with the ccagency
    engine, dashboards) work unchanged: POST /red registers an experiment, GET /batches and
    /experiments list them, DELETE /batches/ID cancels, GET /events streams every state change
    (faice watch --url reads it). Experiments started with faice exec in
    any terminal are listed too, under your user name. OpenAPI at /openapi.json, docs at /docs.

    Users: faice users add NAME [--admin]. With no users, the first start creates "admin" and
    prints its random password once. With --cache (or FAICE_CACHE=1), every experiment's
    batches use the result cache as faice exec --cache does, each user's entries their own.
    Protected routes take HTTP Basic credentials or a Bearer
    token from POST /login. Ctrl-C or SIGTERM cancels and records the running batches.

    Exit codes: 0 stopped, 2 invalid options, 3 the port or the state file is in use.

    Examples:

      faice serve

      faice serve --port 9000 --jobs 4

      curl -u admin http://127.0.0.1:8080/batches?limit=10
    """
    from faice.host import cpu_count
    from faice.runner.engine import engine_name
    from faice.runner.exec_options import cache_default
    from faice.server.run import ServeOptions, run_server
    from faice.state.store import Store

    options = ServeOptions(host=host, port=port, jobs=jobs or cpu_count(), ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile,
                           access_log=access_log, token_seconds=token_seconds, network=network, user_network=user_network, max_batches=max_batches,
                           event_buffer=event_buffer,
                           mount=not no_mount, pids_limit=pids_limit, engine=engine_name(engine), cache=cache_default() if cache is None else cache)
    run_server(Store(settings(ctx).db), options)
