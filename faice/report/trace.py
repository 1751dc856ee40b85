"""A Nextflow-like trace of an experiment: one tab-separated line per batch, with Nextflow's field
names and its default (not ``trace.raw``) formats, so tools that read Nextflow traces read it.

Only the fields faice can fill truthfully. ``-`` marks a value that is not known (not measured, not
reached yet), as in Nextflow's own traces.
"""

from __future__ import annotations

import math
import time

from faice.report.model import BatchFacts, ExperimentFacts

#: the columns, in order: Nextflow's names
FIELDS = ("task_id", "native_id", "name", "status", "exit", "container", "attempt", "submit", "start", "complete",
          "duration", "realtime", "%cpu", "peak_rss", "error")
#: faice's batch states as Nextflow's task statuses
STATUS = {"registered": "SUBMITTED", "scheduled": "SUBMITTED", "processing": "RUNNING", "succeeded": "COMPLETED",
          "failed": "FAILED", "cancelled": "ABORTED"}
NONE = "-"


def render_trace(facts: ExperimentFacts) -> str:
    """The whole trace: a header line and a line per batch in index order."""
    lines = ["\t".join(FIELDS)]
    lines += ["\t".join(row(facts, batch)) for batch in facts.batches]
    return "\n".join(lines) + "\n"


def row(facts: ExperimentFacts, batch: BatchFacts) -> list[str]:
    realtime = batch.realtime
    cpu = NONE if batch.cpu_seconds is None or not realtime else f"{100 * batch.cpu_seconds / realtime:.1f}%"
    status = "CACHED" if batch.cached and batch.state == "succeeded" else STATUS.get(batch.state, batch.state.upper())
    return [
        str(batch.index), batch.batch_id, f"batch_{batch.index}", status,
        NONE if batch.exit_code is None else str(batch.exit_code), _field(facts.image), str(batch.attempts),
        timestamp(batch.submitted), timestamp(batch.start), timestamp(batch.end),
        NONE if batch.end is None else duration(batch.end - batch.submitted), NONE if realtime is None else duration(realtime),
        cpu, NONE if batch.peak_memory is None else memory(batch.peak_memory), _field(batch.error) if batch.error else NONE,
    ]


def timestamp(when: float | None) -> str:
    """Nextflow's ``yyyy-MM-dd HH:mm:ss.SSS``, local time."""
    if when is None:
        return NONE
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when)) + f".{int(when * 1000) % 1000:03d}"


def duration(seconds: float) -> str:
    """As Nextflow's ``Duration.toString`` writes durations, so a trace reads the same: ``850ms``;
    under a minute to a tenth of a second, half up, a whole one without ``.0`` (``4.3s``, ``4s``);
    from a minute on whole seconds, half up, leaving out the parts that are zero (``3m 7s``,
    ``2h 5m``, ``1d``)."""
    millis = math.floor(max(0.0, seconds) * 1000 + 0.5)
    if millis < 1000:
        return f"{millis}ms"
    if millis < 60_000:
        tenths = (millis + 50) // 100
        return f"{tenths // 10}s" if tenths % 10 == 0 else f"{tenths // 10}.{tenths % 10}s"
    minutes, secs = divmod((millis + 500) // 1000, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return " ".join(f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")) if n)


def memory(size: int) -> str:
    """As Nextflow's ``MemoryUnit.toString`` writes memory: ``0``, ``512 B``, ``53.1 MB``, ``1.5 GB``
    (units of 1024, one decimal at most, half even as its DecimalFormat)."""
    if size <= 0:
        return "0"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB", "PB", "EB"):
        if value < 1024 or unit == "EB":
            break
        value /= 1024
    return f"{size} B" if unit == "B" else f"{value:.1f}".removesuffix(".0") + f" {unit}"


def _field(text: str) -> str:
    """A value on one line without tabs: a tab or line break would split the row."""
    return " ".join(text.split())
