"""``faice report``: an experiment's run as an HTML report and a Nextflow-like trace (the work is faice.report's)."""

from __future__ import annotations

from pathlib import Path

import typer

from faice.cli.app import app, open_store
from faice.errors import InvalidInput


@app.command()
def report(
    ctx: typer.Context,
    experiment_id: str = typer.Argument(..., metavar="EXPERIMENT_ID", help="The experiment (or a unique start of its id, 4 characters at least)."),
    output: Path | None = typer.Option(None, "--output", "-o", metavar="REPORT.html",
                                       help="Write the HTML report here (- for standard output): one self-contained file (inline CSS and SVG, nothing fetched) to open offline."),
    trace: Path | None = typer.Option(None, "--trace", metavar="TRACE.tsv",
                                      help="Write a Nextflow-like trace here (- for standard output): a tab-separated line per batch (task_id, native_id, status, exit, submit, start, complete, duration, realtime, %cpu, peak_rss, ...)."),
) -> None:
    """Report how an experiment ran: as an HTML page (-o), a trace file (--trace), or both.

    The page has a summary (source, image, batches per state, wall time, total CPU time, the
    largest peak memory), a timeline of the batches coloured by how they ended, the failures
    grouped by reason, and each batch's run time, CPU time and peak memory. CPU time and peak
    memory are read from each container's cgroup while it runs (empty where they could not be).
    A running experiment is reported as far as it got. Files are replaced if they exist; - writes
    to standard output (then the other file's "wrote" line goes to stderr), and one file for both
    is refused.

    Examples:

      faice report 6751a3c2 -o report.html

      faice report 6751a3c2 --trace trace.tsv

      faice report 6751a3c2 -o report.html --trace trace.tsv

      faice report 6751a3c2 --trace - | column -t -s $'\\t'
    """
    if output is None and trace is None:
        raise InvalidInput("say what to write: -o REPORT.html, --trace TRACE.tsv, or both")
    if output is not None and trace is not None and _same(output, trace):
        raise InvalidInput(f"-o and --trace name the same file ({output}): the trace would replace the page")
    from faice.report.model import gather

    facts = gather(open_store(ctx), experiment_id)
    piped = STDOUT in (output, trace)  # the other file's note goes to stderr, not into the piped text
    if output is not None:
        import time

        from faice.report.html import render_html

        _write(output, render_html(facts, time.time()), "", piped)
    if trace is not None:
        from faice.report.trace import render_trace

        _write(trace, render_trace(facts), f" ({len(facts.batches)} batches)", piped)


#: ``-o -`` or ``--trace -``: standard output
STDOUT = Path("-")


def _same(one: Path, other: Path) -> bool:
    """Whether two targets are one file (``x`` and ``./x``, a link and its target; ``-`` and ``-``)."""
    if STDOUT in (one, other):
        return one == other
    return one.resolve() == other.resolve()


def _write(target: Path, text: str, note: str, piped: bool) -> None:
    """``text`` to standard output for ``-``, else as the file ``target``, saying so."""
    if target == STDOUT:
        typer.echo(text, nl=False)
        return
    from faice.report.write import write_text

    write_text(target, text)
    typer.echo(f"wrote {target}{note}", err=piped)
