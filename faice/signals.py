"""What Ctrl-C and SIGTERM do while faice works: the one place that sets signal handlers.

SIGTERM is treated like Ctrl-C, so that ``kill`` and a terminal's Ctrl-C stop faice the same
way; while batches run, both only ask for a cancel (the workers then record their batches).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def interrupt() -> None:
    """Stop as Ctrl-C does: with a KeyboardInterrupt in the main thread."""
    raise KeyboardInterrupt


@contextmanager
def on_stop(stop: Callable[[], None] = interrupt) -> Iterator[None]:
    """While inside, Ctrl-C and SIGTERM call ``stop``; the earlier handlers come back after.

    (Raising KeyboardInterrupt while batches run would leave them unrecorded, and on CPython 3.11
    an interrupted Thread.join forgets the thread it was waiting for: pass a ``stop`` that asks
    for a cancel instead.) Outside the main thread, where Python allows no handlers, it does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda signum, frame: stop())
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
