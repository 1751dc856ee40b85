"""An experiment's run as one HTML file: inline CSS and SVG, no script, nothing fetched, so it opens
offline, in a mail attachment, on a machine without faice.

Every text that comes from the user (the source, image, errors, ids) goes through :func:`esc`.
Large experiments stay readable and small: up to ``MAX_BARS`` batches get a bar each on the
timeline, more are drawn as how many batches ran during each slice of the time (by their end state); the batch
table lists the first ``MAX_ROWS`` batches; failures are grouped by their reason.
"""

from __future__ import annotations

import html
import time
from collections import defaultdict

from faice.report.model import BatchFacts, ExperimentFacts
from faice.report.trace import duration

#: batches drawn as one bar each on the timeline; more are drawn as a count over time
MAX_BARS = 300
#: batches listed in the table (the trace lists them all)
MAX_ROWS = 1000
#: failure reasons listed, and batches named for each
MAX_REASONS = 100
MAX_NAMED = 20
#: time slices of the count over time
SLICES = 200
COLOURS = {"succeeded": "#2e7d32", "failed": "#c62828", "cancelled": "#757575", "processing": "#1565c0",
           "scheduled": "#90caf9", "registered": "#bdbdbd"}
ORDER = ("succeeded", "failed", "cancelled", "processing", "scheduled", "registered")
WIDTH, LABEL, ROW = 900, 60, 14

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:1000px;color:#212121;padding:0 1em}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%}td,th{padding:2px 8px;text-align:left;vertical-align:top;border-bottom:1px solid #eee}
th{background:#f5f5f5}td.n{text-align:right;white-space:nowrap}code,.id{font-family:ui-monospace,monospace;font-size:.9em}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 16px}dt{color:#616161}dd{margin:0}
.s{display:inline-block;padding:0 6px;border-radius:3px;color:#fff;font-size:.85em}
.note{color:#616161;font-style:italic}.err{white-space:pre-wrap;word-break:break-word}
.bar{display:inline-block;height:8px;background:#90a4ae;margin-right:6px;vertical-align:middle}
svg text{font:11px system-ui,sans-serif;fill:#424242}
"""


def esc(text: object) -> str:
    """Text as HTML: ``<``, ``>``, ``&`` and both quotes escaped, so it is safe in elements and attributes alike."""
    return html.escape(str(text), quote=True)


def render_html(facts: ExperimentFacts, generated: float | None = None) -> str:
    """The whole report; ``generated`` (its time) is where batches still running end, in the
    summary and on the timeline alike."""
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f"<title>faice report {esc(facts.experiment_id)}</title><style>{STYLE}</style></head><body>",
        f"<h1>Experiment <span class=\"id\">{esc(facts.experiment_id)}</span></h1>",
        summary(facts, generated),
        "<h2>Timeline</h2>", timeline(facts, generated),
        "<h2>Failures</h2>", failures(facts),
        "<h2>Batches</h2>", batch_table(facts),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def summary(facts: ExperimentFacts, generated: float | None) -> str:
    counts = facts.counts()
    span = facts.span(generated)
    running = len(facts.running())
    cpu = facts.cpu_seconds()
    peak = facts.peak()
    measured = sum(1 for b in facts.batches if b.cpu_seconds is not None or b.peak_memory is not None)
    states = " ".join(f"{badge(state)} {counts[state]}" for state in ORDER if counts.get(state))
    rows = [
        ("source", esc(facts.source)), ("image", f"<code>{esc(facts.image)}</code>"), ("engine", esc(facts.engine)),
        ("user", esc(facts.username or "")), ("created", esc(when(facts.created_at))),
        ("batches", f"{len(facts.batches)}: {states}" if facts.batches else "0"),
        ("wall time", esc(duration(span[1] - span[0])) + f" ({esc(when(span[0]))} to {esc(when(span[1]))}"
         + (f"; {running} still running)" if running else ")") if span else "not run yet"),
        ("total CPU time", esc(duration(cpu)) if cpu is not None else "not measured"),
        ("max peak memory", f"{esc(mib(peak.peak_memory))} (batch {peak.index})" if peak is not None and peak.peak_memory is not None else "not measured"),
        ("measured", f"{measured} of {len(facts.batches)} batches (read from each container's cgroup while it ran)"),
    ]
    if generated is not None:
        rows.append(("report made", esc(when(generated))))
    return "<dl>" + "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in rows) + "</dl>"


def timeline(facts: ExperimentFacts, now: float | None = None) -> str:
    """Bars from start to end per batch (one still running up to ``now``), or for many batches how
    many ran in each slice of the time; over the summary's wall time."""
    ran = [b for b in facts.batches if b.start is not None]
    span = facts.span(now)
    if span is None:
        return '<p class="note">No batch has started yet.</p>'
    span = (span[0], max(span[1], span[0] + 0.001))
    if len(ran) <= MAX_BARS:
        return _bars(ran, span)
    return _counts(ran, span)


def _x(t: float, span: tuple[float, float]) -> float:
    return LABEL + (WIDTH - LABEL - 10) * (t - span[0]) / (span[1] - span[0])


def _axis(span: tuple[float, float], y: float) -> str:
    ticks = []
    for i in range(5):
        t = span[0] + (span[1] - span[0]) * i / 4
        anchor = "start" if i == 0 else "end" if i == 4 else "middle"
        ticks.append(f'<text x="{_x(t, span):.1f}" y="{y + 12:.0f}" text-anchor="{anchor}">+{esc(duration(t - span[0]))}</text>')
    return f'<line x1="{LABEL}" y1="{y:.0f}" x2="{WIDTH - 10}" y2="{y:.0f}" stroke="#9e9e9e"/>' + "".join(ticks)


def _bars(ran: list[BatchFacts], span: tuple[float, float]) -> str:
    height = len(ran) * ROW + 30
    shapes = []
    for row, batch in enumerate(sorted(ran, key=lambda b: b.index)):
        y = row * ROW + 4
        end = batch.end if batch.end is not None else span[1]
        x0, x1 = _x(batch.start or span[0], span), _x(end, span)
        tip = f"batch {batch.index} ({batch.batch_id}): {batch.state}, {duration(end - (batch.start or end))}"
        shapes.append(f'<text x="{LABEL - 6}" y="{y + 10}" text-anchor="end">{batch.index}</text>'
                      f'<rect x="{x0:.1f}" y="{y}" width="{max(x1 - x0, 1.5):.1f}" height="{ROW - 4}" fill="{COLOURS.get(batch.state, "#000")}">'
                      f"<title>{esc(tip)}</title></rect>")
    return (f'<svg width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" role="img">'
            + "".join(shapes) + _axis(span, len(ran) * ROW + 8) + "</svg>" + legend())


def _counts(ran: list[BatchFacts], span: tuple[float, float]) -> str:
    """How many batches ran in each time slice, stacked by end state (a difference array per state: linear in batches)."""
    step = (span[1] - span[0]) / SLICES
    deltas: dict[str, list[int]] = defaultdict(lambda: [0] * (SLICES + 1))
    for batch in ran:
        first = min(SLICES - 1, int(((batch.start or span[0]) - span[0]) / step))
        last = min(SLICES - 1, int(((batch.end if batch.end is not None else span[1]) - span[0]) / step))
        deltas[batch.state][first] += 1
        deltas[batch.state][last + 1] -= 1
    running: dict[str, list[int]] = {}
    for state, delta in deltas.items():
        total, series = 0, []
        for change in delta[:SLICES]:
            total += change
            series.append(total)
        running[state] = series
    most = max(sum(running[s][i] for s in running) for i in range(SLICES)) or 1
    plot = 160
    width = (WIDTH - LABEL - 10) / SLICES
    shapes = []
    for i in range(SLICES):
        base = 0
        for state in ORDER:
            n = running.get(state, [0] * SLICES)[i]
            if not n:
                continue
            h = plot * n / most
            y = 10 + plot - plot * base / most - h
            shapes.append(f'<rect x="{LABEL + i * width:.1f}" y="{y:.1f}" width="{width + 0.3:.1f}" height="{h:.1f}" fill="{COLOURS[state]}"/>')
            base += n
    height = plot + 40
    note = (f'<p class="note">{len(ran)} batches are too many for a bar each: the chart shows how many ran during each of '
            f"{SLICES} slices of the time (at most {most}), coloured by how they ended. The trace (--trace) has every batch's times.</p>")
    return (note + f'<svg width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" role="img">'
            f'<text x="{LABEL - 6}" y="20" text-anchor="end">{most}</text><text x="{LABEL - 6}" y="{plot + 10}" text-anchor="end">0</text>'
            + "".join(shapes) + _axis(span, plot + 12) + "</svg>" + legend())


def legend() -> str:
    return "<p>" + " ".join(badge(state) for state in ORDER[:4]) + "</p>"


def failures(facts: ExperimentFacts) -> str:
    """The failed and cancelled batches grouped by their reason, most frequent first."""
    grouped: dict[str, list[BatchFacts]] = defaultdict(list)
    for batch in facts.batches:
        if batch.state in ("failed", "cancelled"):
            grouped[batch.error or batch.state].append(batch)
    if not grouped:
        return '<p class="note">No batch failed.</p>'
    reasons = sorted(grouped.items(), key=lambda item: (-len(item[1]), item[1][0].index))
    rows = []
    for reason, batches in reasons[:MAX_REASONS]:
        named = ", ".join(f'<span title="{esc(b.batch_id)}">{b.index}</span>' for b in batches[:MAX_NAMED])
        more = f", and {len(batches) - MAX_NAMED} more" if len(batches) > MAX_NAMED else ""
        rows.append(f'<tr><td class="n">{len(batches)}</td><td>{badge(batches[0].state)}</td><td class="err">{esc(reason)}</td><td>{named}{more}</td></tr>')
    note = f'<p class="note">The {MAX_REASONS} most frequent of {len(reasons)} reasons.</p>' if len(reasons) > MAX_REASONS else ""
    return note + "<table><tr><th>batches</th><th>state</th><th>reason</th><th>which (batch numbers; an id on hovering)</th></tr>" + "".join(rows) + "</table>"


def batch_table(facts: ExperimentFacts) -> str:
    """Each batch's result, times and what its container used, with bars relative to the largest."""
    shown = facts.batches[:MAX_ROWS]
    longest = max((b.realtime or 0.0 for b in shown), default=0.0) or 1.0
    biggest = max((b.peak_memory or 0 for b in shown), default=0) or 1
    rows = []
    for b in shown:
        real = "" if b.realtime is None else f'<span class="bar" style="width:{60 * b.realtime / longest:.0f}px"></span>{esc(duration(b.realtime))}'
        peak = "" if b.peak_memory is None else f'<span class="bar" style="width:{60 * b.peak_memory / biggest:.0f}px"></span>{esc(mib(b.peak_memory))}'
        cpu = "" if b.cpu_seconds is None else esc(f"{b.cpu_seconds:.2f} s")
        rows.append(f'<tr><td class="n">{b.index}</td><td class="id">{esc(b.batch_id)}</td><td>{badge(b.state)}</td>'
                    f'<td class="n">{b.attempts}</td><td class="n">{"" if b.exit_code is None else b.exit_code}</td>'
                    f'<td class="n">{esc(when(b.start) if b.start is not None else "")}</td><td class="n">{real}</td>'
                    f'<td class="n">{cpu}</td><td class="n">{peak}</td></tr>')
    note = (f'<p class="note">The first {MAX_ROWS} of {len(facts.batches)} batches; the trace (--trace) lists them all.</p>'
            if len(facts.batches) > MAX_ROWS else "")
    return (note + "<table><tr><th>batch</th><th>id</th><th>state</th><th>attempts</th><th>exit</th><th>started</th>"
            "<th>run time</th><th>CPU time</th><th>peak memory</th></tr>" + "".join(rows) + "</table>"
            '<p class="note">Run time: the last attempt, from its start (staging inputs) to its end (outputs sent). '
            "CPU time and peak memory: read from the container's cgroup while it ran (empty where that was not possible).</p>")


def badge(state: str) -> str:
    return f'<span class="s" style="background:{COLOURS.get(state, "#000")}">{esc(state)}</span>'


def when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"
