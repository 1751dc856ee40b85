"""Starting and stopping ``faice serve``: one server per state file, a graceful end.

On start: clean up after dead ``faice exec`` runs, re-queue or fail what a previous server left
unfinished, create the first admin when there are no users (its random password is printed
once), and listen (127.0.0.1 unless told otherwise). On SIGINT or SIGTERM uvicorn stops taking
requests, then every running batch is cancelled and recorded and its container killed.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from faice.errors import EnvironmentUnusable, InvalidInput
from faice.host import is_loopback
from faice.runner.docker_engine import DEFAULT_PIDS_LIMIT
from faice.server.settings import Settings
from faice.signals import on_stop
from faice.state.store import Store

FIRST_ADMIN = "admin"


@dataclass
class ServeOptions:
    """The options of ``faice serve``."""

    host: str = "127.0.0.1"
    port: int = 8080
    jobs: int = 1
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    access_log: bool = False
    #: lifetime of access tokens and GET /token tokens (default: 900 s and 86400 s)
    token_seconds: float | None = None
    network: str | None = None
    #: non-admins' containers: no network unless the server says otherwise
    user_network: str = "none"
    max_batches: int = 100_000
    #: events a GET /events client may be behind before it is dropped
    event_buffer: int = 1000
    #: honour ``mount: true`` (False: copy those directories instead)
    mount: bool = True
    pids_limit: int = DEFAULT_PIDS_LIMIT
    #: the container engine batches run on (docker, podman)
    engine: str = "docker"
    #: every experiment's batches use the result cache (CC-Agency clients cannot ask for it)
    cache: bool = False


def _lock(store: Store) -> tuple[int, int]:
    """Hold a lock on the state file itself while serving: two servers would run the same batches
    twice, whatever names (a symbolic or hard link) they reach the file by. ``flock`` locks do not
    meet SQLite's own (POSIX record) locks. The pid goes to ``<real path>.serve.lock`` for the
    message a second server prints."""
    fd = os.open(store.path, os.O_RDONLY)
    pid_file = os.open(f"{os.path.realpath(store.path)}.serve.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        other = os.read(pid_file, 32).decode(errors="replace").strip() or "?"
        os.close(fd)
        os.close(pid_file)
        raise EnvironmentUnusable(f"another faice serve (pid {other}) uses {store.path}; stop it or use another --db") from None
    os.ftruncate(pid_file, 0)
    os.write(pid_file, str(os.getpid()).encode())
    return fd, pid_file


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on such sockets, and without it every
    # answer (headers and body are two writes) waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise EnvironmentUnusable(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class _Stopped(Exception):
    pass


def _stopped() -> None:
    raise _Stopped()


def first_admin(store: Store, say: Callable[[str], None]) -> None:
    """With no users at all, create ``admin`` with a random password and show it this once."""
    from faice.state.users import Users

    users = Users(store)
    if users.all():
        return
    password = secrets.token_urlsafe(18)
    users.add(FIRST_ADMIN, password, admin=True)
    say(f'faice serve: created the admin user "{FIRST_ADMIN}" with the password {password}')
    say("faice serve: it is shown only this once; change it with: faice users passwd admin")


def settings_for(options: ServeOptions) -> Settings:
    """The API's settings from ``faice serve``'s options (--token-seconds: access and GET /token tokens)."""
    settings = Settings(max_batches=options.max_batches, event_buffer=options.event_buffer)
    if options.token_seconds is not None:
        settings.access_seconds = settings.password_token_seconds = options.token_seconds
    return settings


def run_server(store: Store, options: ServeOptions, say: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True)) -> None:
    import uvicorn

    from faice.host import memory_mib
    from faice.runner.batch import RunOptions
    from faice.runner.budget import MemoryBudget
    from faice.runner.engine import open_engine
    from faice.runner.reconcile import reconcile
    from faice.server.app import create_app
    from faice.server.worker import Worker
    from faice.state.store import outputs_dir

    if bool(options.ssl_certfile) != bool(options.ssl_keyfile):
        raise InvalidInput("--ssl-certfile and --ssl-keyfile go together")
    lock = _lock(store)
    try:
        sock = _listen(options.host, options.port)
        reconcile(store, open_engine)
        first_admin(store, say)
        run_options = RunOptions(outdir=outputs_dir(store.path), jobs=options.jobs, engine=options.engine, network=options.network, mount=options.mount,
                                 pids_limit=options.pids_limit, cache=options.cache)
        worker = Worker(store, run_options, open_engine, memory=MemoryBudget(memory_mib()), user_network=options.user_network)
        worker.start()
        app = create_app(store, worker, settings_for(options))
        tls = options.ssl_certfile is not None
        if not is_loopback(options.host) and not tls:
            say(f"faice serve: warning: listening on {options.host} without TLS: passwords and tokens cross the network in clear text "
                "(use --ssl-certfile/--ssl-keyfile, or 127.0.0.1 behind a TLS proxy)")
        port = sock.getsockname()[1]
        scheme = "https" if tls else "http"
        shown = f"[{options.host}]" if ":" in options.host else options.host
        say(f"faice serve: CC-Agency API on {scheme}://{shown}:{port} (docs: /docs), state {store.path}, up to {options.jobs} batches at once")
        config = uvicorn.Config(app, log_level="info" if options.access_log else "warning", access_log=options.access_log,
                                ssl_certfile=str(options.ssl_certfile) if tls else None, ssl_keyfile=str(options.ssl_keyfile) if tls else None,
                                timeout_graceful_shutdown=5,
                                proxy_headers=False)  # X-Forwarded-For from any local client would escape throttling
        server = uvicorn.Server(config)
        app.state.stopping = lambda: server.should_exit  # what streams that would go on (followed logs) look at, to end cleanly
        # uvicorn shuts down on SIGINT/SIGTERM, then raises the signal again with the handlers it
        # found: these make that a normal end (exit 0) instead of a death by signal.
        try:
            with on_stop(_stopped):
                server.run(sockets=[sock])
        except _Stopped:
            pass
        finally:
            say("faice serve: stopping: cancelling running batches")
            worker.stop()
            sock.close()
        say("faice serve: stopped")
    finally:
        for fd in lock:
            os.close(fd)
