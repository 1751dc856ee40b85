"""The exit codes of ``faice``, mapped in this one place: from error classes (faice.errors) and
from how a run ended. The codes themselves are documented in faice.errors."""

from __future__ import annotations

from faice.errors import (
    EXIT_ENVIRONMENT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_INVALID,
    EXIT_OK,
    EXIT_UNSUPPORTED,
    EnvironmentUnusable,
    FaiceError,
    InvalidInput,
    UnsupportedFeature,
)

#: by category: the nearest class in an error's MRO decides
ERROR_CODES: dict[type[FaiceError], int] = {
    UnsupportedFeature: EXIT_UNSUPPORTED,
    InvalidInput: EXIT_INVALID,
    EnvironmentUnusable: EXIT_ENVIRONMENT,
    FaiceError: EXIT_FAILED,
}

#: how a run (faice exec, faice submit) ended; anything else (cancelled, interrupted) is 130
OUTCOME_CODES = {"succeeded": EXIT_OK, "submitted": EXIT_OK, "failed": EXIT_FAILED}


def error_code(error: FaiceError) -> int:
    return next(ERROR_CODES[cls] for cls in type(error).__mro__ if cls in ERROR_CODES)


def outcome_code(outcome: str) -> int:
    return OUTCOME_CODES.get(outcome, EXIT_INTERRUPTED)
