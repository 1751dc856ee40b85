"""The ``faice`` command line: it parses and prints; the work is done by the library.

Heavy modules (typer, jsonschema, the runner, the server) are imported when they are used: here
by ``main`` (typer and the command modules), else inside the commands that use them, so that
``faice --help`` and ``faice --version`` stay fast. Errors end a command here, in ``main``: one
line, the exit code of its category (faice.cli.exits), tracebacks only with --debug.
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
from typing import Any

from faice.cli.exits import error_code
from faice.errors import EXIT_INTERRUPTED, FaiceError, LoadError

__all__ = ["main"]

#: the modules that register the commands, in the order ``faice --help`` lists them
COMMAND_MODULES = ("run", "recorded", "watch", "cache", "export", "report", "serve", "schema", "convert", "users")
#: the module that registers each command (and command group)
COMMANDS = {
    "validate": "run", "exec": "run", "resume": "run",
    "list": "recorded", "show": "recorded", "logs": "recorded", "cancel": "recorded", "rm": "recorded", "prune": "recorded",
    "watch": "watch",
    "why": "cache", "cache": "cache", "export": "export", "report": "report",
    "submit": "serve", "serve": "serve",
    "schema": "schema", "convert": "convert", "users": "users",
}
#: the root options that take a value (faice.cli.app.root), and those that show the root's help
ROOT_VALUE_OPTIONS = ("--db",)
ROOT_HELP_OPTIONS = ("--help", "-h")


def command(args: list[str] | None = None) -> Any:
    """The click command of the ``faice`` Typer app with what ``args`` can reach registered: the
    module of the command they name, else (help, completion, a typo to suggest a fix for) all.

    Typer builds every registered command's parameters from its signature, some ten
    milliseconds that a one-batch ``faice exec`` would otherwise spend on commands it never runs."""
    import typer

    from faice.cli.app import app

    name = None if args is None or "_FAICE_COMPLETE" in os.environ else invoked(args)
    for module in [COMMANDS[name]] if name in COMMANDS else COMMAND_MODULES:
        importlib.import_module(f"faice.cli.{module}")
    return typer.main.get_command(app)


def invoked(args: list[str]) -> str | None:
    """The command that ``args`` name: their first word that is not a root option (or its value);
    None when a root ``--help`` comes first (that help lists every command)."""
    words = iter(args)
    for word in words:
        if word in ROOT_VALUE_OPTIONS:
            next(words, None)
        elif word in ROOT_HELP_OPTIONS:
            return None
        elif not word.startswith("-"):
            return word
    return None


def main(argv: list[str] | None = None) -> None:
    """Run the CLI: one-line errors with documented exit codes, tracebacks only with --debug."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    program = argv is None  # the faice program itself, whose process ends here (not a caller that goes on)
    if program:
        # Start-up makes some 25,000 objects that live as long as the process and no garbage: the
        # collector's passes over them cost about a tenth of a one-batch `faice exec`. Frozen,
        # they are left out of every later pass, the interpreter's teardown included.
        gc.disable()
    import typer

    from faice.cli.app import err

    cli = command(args)
    if program:
        gc.freeze()
        gc.enable()
    try:
        code = cli.main(args=args, prog_name="faice", standalone_mode=False)
    except typer.Exit as exc:
        code = exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        err("faice: interrupted")
        code = EXIT_INTERRUPTED
    except FaiceError as exc:
        if debug:
            raise
        _report(exc)
        code = error_code(exc)
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
            err(f"faice: internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)")
            code = 1
    code = code if isinstance(code, int) else 0
    if program:
        end_process(code)
    sys.exit(code)


def end_process(code: int) -> None:
    """End the faice process without the interpreter's teardown, which frees every object of
    every module one by one: some 5 ms, a twentieth of a one-batch ``faice exec``. The command's
    work is done by now (its threads joined, its files closed, its records committed); what was
    registered to run at exit still runs first, as it would (closing idle SSH connections and the
    state file's connections), then the standard streams are flushed. Python's ordinary exit
    takes over where something is left for it: a thread that is not a daemon still runs (it
    waits for it), or a stream cannot be flushed (a full disk: it says so and exits 120)."""
    import atexit
    import threading

    if any(not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        if stream is None or stream.closed:
            continue  # started without it, or closed after a broken pipe
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - Python's own exit reports it as it always has
            sys.exit(code)
    os._exit(code)


def _is_usage_error(exc: Exception) -> bool:
    """Click's usage errors (Typer may vendor its own click, so match by shape, not class)."""
    return callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int)


def _report(exc: FaiceError) -> None:
    from faice.cli.app import err
    from faice.red.prepare import ValidationFailed

    if isinstance(exc, ValidationFailed):
        for problem in exc.problems:
            err(str(problem))
        return
    err(str(exc) if isinstance(exc, LoadError) else f"faice: {exc}")
