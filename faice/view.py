"""What a person sees while batches run: a live table on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from faice.state.states import BatchState

LIVE_ROWS = 15


class LiveTable:
    """A table of batches on stderr, redrawn four times a second while they run and gone at the end.

    ``render`` gives the title, the column names (the first is the batch number) and the rows,
    each time it is drawn; disabled (not a terminal), it shows nothing.
    """

    def __init__(self, render: Callable[[], tuple[str, list[str], list[list[str]]]], enabled: bool) -> None:
        self.render = render
        self.enabled = enabled
        self._live: Any = None

    @property
    def shown(self) -> bool:
        return self._live is not None

    def __enter__(self) -> LiveTable:
        if self.enabled:
            from rich.console import Console
            from rich.live import Live

            self._live = Live(console=Console(stderr=True), refresh_per_second=4, transient=True, get_renderable=self._table)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)
            self._live = None

    def _table(self) -> Any:
        from rich.table import Table

        title, columns, rows = self.render()
        table = Table(title=title, title_justify="left", show_edge=False, expand=False)
        for i, column in enumerate(columns):
            table.add_column(column, justify="right" if i == 0 else "left")
        for row in rows[:LIVE_ROWS]:
            table.add_row(*row)
        return table


View = TypeVar("View", bound="LiveView")


class LiveView:
    """What owns a live table: entering shows it, leaving takes it away."""

    _table: LiveTable

    def __enter__(self: View) -> View:
        self._table.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._table.__exit__(*exc)


class Progress(LiveView):
    """Receives scheduler events (from worker threads) and shows them on stderr."""

    def __init__(self, total: int, live: bool, quiet: bool = False) -> None:
        self.total = total
        #: only failures are said (one line each)
        self.quiet = quiet
        self.started = time.monotonic()
        self.state: dict[int, str] = {}
        self.phase: dict[int, str] = {}
        self.errors: dict[int, str] = {}
        self._lock = threading.Lock()
        self._table = LiveTable(self._render, live)

    def event(self, index: int, kind: str, detail: str) -> None:
        with self._lock:
            if kind == "phase":
                self.phase[index] = detail
            elif kind == "retry":
                self.state[index] = "retrying"
                self.errors[index] = detail
            else:
                self.state[index] = kind
                if kind in (BatchState.FAILED, BatchState.CANCELLED):
                    self.errors[index] = detail
        if not self._table.shown and kind in ((BatchState.FAILED,) if self.quiet else (BatchState.SUCCEEDED, BatchState.FAILED, BatchState.CANCELLED, "retry")):
            word = "retrying" if kind == "retry" else kind
            tail = f": {detail}" if detail else ""
            sys.stderr.write(f"batch {index} {word}{tail}\n")

    def counts(self) -> dict[str, int]:
        with self._lock:
            states = list(self.state.values())
        done = states.count(BatchState.SUCCEEDED)
        failed = states.count(BatchState.FAILED)
        cancelled = states.count(BatchState.CANCELLED)
        running = sum(1 for s in states if s in (BatchState.PROCESSING, "retrying"))
        return {"done": done, "failed": failed, "cancelled": cancelled, "running": running, "waiting": self.total - done - failed - cancelled - running}

    def _render(self) -> tuple[str, list[str], list[list[str]]]:
        counts = self.counts()
        elapsed = time.monotonic() - self.started
        title = (f"{counts['done']}/{self.total} done, {counts['failed']} failed, {counts['running']} running, "
                 f"{counts['waiting']} waiting — {elapsed:.0f} s")
        if self.phase.get(-1) == "pull" and not self.state:
            title += " — checking the image"
        with self._lock:
            active = [i for i, s in sorted(self.state.items()) if s in (BatchState.PROCESSING, "retrying")]
            recent_failed = [i for i, s in sorted(self.state.items()) if s == "failed"]
            rows = [[str(i), self.state.get(i, ""), self.phase.get(i, "") if self.state.get(i) != BatchState.FAILED else self.errors.get(i, "")[:80]]
                    for i in active + recent_failed]
        return title, ["batch", "state", "phase"], rows


ID_COLUMNS = frozenset({"id", "experiment"})
ID_WIDTH = 24


def print_table(columns: list[str], rows: list[list[str]], title: str | None = None) -> None:
    """A rich table on a terminal; plain aligned text (never truncated) when stdout is a pipe or file."""
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title, title_justify="left")
        for column in columns:
            if column in ID_COLUMNS:  # a copied id must be whole: never wrapped, never cut
                table.add_column(column, no_wrap=True, overflow="ignore", min_width=ID_WIDTH)
            else:
                table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*row)
        Console().print(table)
        return
    if title:
        print(title)
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(columns)]
    for row in [columns, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def print_summary(result: dict[str, Any]) -> None:
    rows = []
    for b in result["batches"]:
        detail = b["error"] or ", ".join(f"{k}: {v['path']}" for k, v in _each_output(b["outputs"]) if v.get("path")) or "-"
        rows.append([str(b["index"]), b["batchId"], b["state"], "" if b["exitCode"] is None else str(b["exitCode"]), detail])
    print_table(["batch", "id", "state", "exit", "outputs / error"], rows, title=f"experiment {result['experimentId']}: {result['state']}")


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def size(n: int) -> str:
    """Bytes for people: 0 B, 812 B, 3.4 KiB, 12 MiB, 1.5 GiB."""
    value, unit = float(n), "B"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            break
        value /= 1024
    return f"{value:.0f} {unit}" if unit == "B" or value >= 10 else f"{value:.1f} {unit}"


def print_experiments(rows: list[dict[str, Any]]) -> None:
    """``faice list``: one line per experiment (as ``faice.records.experiment_summary``) with its batches per state."""
    table = []
    for row in rows:
        s = row["states"]
        table.append([row["experimentId"], _when(row["createdAt"]), str(row["batchCount"]), str(s["succeeded"]), str(s["failed"]), str(s["processing"]),
                      str(s["registered"] + s["scheduled"]), str(s["cancelled"]), size(row["diskBytes"]), row["source"]])
    print_table(["experiment", "created", "batches", "succeeded", "failed", "running", "waiting", "cancelled", "disk", "source"], table)


def print_experiment(document: dict[str, Any]) -> None:
    """``faice show EXPERIMENT`` (as ``faice.records.experiment_document``)."""
    print(f"experiment {document['experimentId']} from {document['source']} ({document['batchCount']} batches, image {document['image']}), created {_when(document['createdAt'])}")
    disk = document.get("disk") or {}
    print(f"on disk: {size(disk.get('diskBytes', 0))} (logs {size(disk.get('logBytes', 0))}, outputs {size(disk.get('outputBytes', 0))}"
          + (f" in {disk['outputs']}" if disk.get("outputs") else "") + ")")
    rows = [[str(b["index"]), b["batchId"], b["state"], str(b["attempts"]), "" if b["exitCode"] is None else str(b["exitCode"]),
             _used(b.get("peakMemory"), size), _used(b.get("cpuSeconds"), cpu_time), b["error"] or ""] for b in document["batches"]]
    print_table(["batch", "id", "state", "attempts", "exit", "peak mem", "cpu", "error"], rows)


def _used(value: Any, shown: Callable[[Any], str]) -> str:
    return "" if value is None else shown(value)


def cpu_time(seconds: float) -> str:
    """CPU seconds for people: 0.42 s, 12.3 s, 3 m 05 s."""
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} m {rest:02d} s"


def _each_output(outputs: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(label, found output) pairs; an array output's items are ``KEY[N]``."""
    from faice.runner.outputs import each_recorded

    return [(key if index is None else f"{key}[{index}]", item) for key, index, item in each_recorded(outputs)]


def print_batch(document: dict[str, Any]) -> None:
    """``faice show BATCH``: result, outputs and the history of its states."""
    import shlex

    print(f"batch {document['batchId']} (#{document['index']} of experiment {document['experimentId']}): {document['state']}, {document['attempts']} attempt(s)")
    print(f"argv: {shlex.join(document['argv'])}")
    if document["exitCode"] is not None:
        print(f"exit code: {document['exitCode']}")
    if document["error"]:
        print(f"error: {document['error']}")
    for key, out in _each_output(document["outputs"]):
        print(f"output {key}: {out.get('path')} ({out.get('size')} bytes, {out.get('checksum')})")
    if document.get("peakMemory") is not None or document.get("cpuSeconds") is not None:
        print(f"used: peak memory {_used(document.get('peakMemory'), size) or 'not measured'}, "
              f"CPU time {_used(document.get('cpuSeconds'), cpu_time) or 'not measured'}")
    if document.get("cachedFrom"):
        print(f"cache: hit, the result of batch {document['cachedFrom']} (key {document['cacheKey'][:12]})")
    elif document.get("cacheKey"):
        print(f"cache: key {document['cacheKey'][:12]} (faice why {document['batchId']} tells why it ran)")
    print_table(["time", "state", "reason"], [[_when(h["time"]), h["state"], h["reason"]] for h in document["history"]])
