"""Errors that end a command with a one-line reason, in three categories told apart by class:
``InvalidInput`` (the user's to fix), ``EnvironmentUnusable`` (this machine's), and any other
``FaiceError`` (something failed). The command line maps them to its exit codes in one place
(``faice.cli.exits``), the HTTP server to its statuses in another.

Exit codes (the same for every command):

* 0 -- success
* 1 -- the experiment ran and a batch failed
* 2 -- invalid input: a RED file, an option, a missing variable
* 3 -- the environment is unusable before anything ran (Docker unreachable, image missing)
* 33 -- a valid CWL tool uses a feature faice exec does not run (cwltool's code for an
  unsupported feature, which CWL conformance tests such as cwltest count as "unsupported")
* 130 -- interrupted (Ctrl-C, SIGTERM)
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_ENVIRONMENT = 3
EXIT_UNSUPPORTED = 33
EXIT_INTERRUPTED = 130


class FaiceError(Exception):
    """Base class: ``str(error)`` is the one-line reason shown to the user; by itself, a failure."""


class InvalidInput(FaiceError):
    """A RED file, an option, a variable or an id the user gave is wrong."""


class UnsupportedFeature(InvalidInput):
    """Valid input that asks for something faice does not do (a CWL requirement it does not run)."""


class LoadError(InvalidInput):
    """A document that cannot be read or parsed, located as ``FILE[:LINE:COL]: message``."""

    def __init__(self, name: str, message: str, line: int | None = None, column: int | None = None) -> None:
        self.name = name
        self.message = message
        self.line = line
        self.column = column
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.name if self.line is None else f"{self.name}:{self.line}:{self.column}"
        return f"{where}: {self.message}"


class EnvironmentUnusable(FaiceError):
    """This machine cannot do the work: Docker unreachable, an image missing, a port in use."""
