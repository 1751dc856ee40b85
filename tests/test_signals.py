"""faice.signals: Ctrl-C and SIGTERM call what a command chose while inside, and only then."""

from __future__ import annotations

import os
import signal

import pytest

from faice.signals import on_stop


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_signal_calls_the_chosen_stop_and_the_earlier_handlers_come_back(sig: signal.Signals):
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    asked: list[str] = []
    with on_stop(lambda: asked.append("cancel")):
        os.kill(os.getpid(), sig)  # os.kill runs this process's handlers before it returns
    assert asked == ["cancel"]
    assert {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)} == before


def test_by_default_sigterm_interrupts_as_ctrl_c_does():
    with pytest.raises(KeyboardInterrupt), on_stop():
        os.kill(os.getpid(), signal.SIGTERM)
