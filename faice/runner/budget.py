"""The memory budget every driver schedules by: batches reserve their ``ram`` before they start,
and the sum never exceeds this machine's memory."""

from __future__ import annotations

import threading


class MemoryBudget:
    def __init__(self, total_mib: int | None) -> None:
        self.total = total_mib
        self.used = 0
        self._cond = threading.Condition()

    def try_acquire(self, mib: int | None) -> bool:
        """Reserve ``mib`` if it fits now (a dispatcher decides again on its next wake-up)."""
        if not self.total or not mib:
            return True
        need = min(mib, self.total)  # a batch asking for more than there is still runs, alone
        with self._cond:
            if self.used + need > self.total:
                return False
            self.used += need
            return True

    def acquire(self, mib: int | None, cancelled: threading.Event) -> bool:
        """Wait until ``mib`` fits; False when ``cancelled`` is set first."""
        with self._cond:
            while not cancelled.is_set():
                if self.try_acquire(mib):
                    return True
                self._cond.wait(0.2)
        return False

    def release(self, mib: int | None) -> None:
        if not self.total or not mib:
            return
        with self._cond:
            self.used -= min(mib, self.total)
            self._cond.notify_all()
