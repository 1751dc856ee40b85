"""faice report: the HTML page and the Nextflow-like trace, as pure renderings of plain data and
end to end on a real run."""

from __future__ import annotations

import json
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from faice.report.html import MAX_BARS, MAX_ROWS, esc, render_html, timeline
from faice.report.model import BatchFacts, ExperimentFacts
from faice.report.trace import FIELDS, duration, memory, render_trace, timestamp
from tests.redfiles import as_batches, shell_red
from tests.test_exec import Run

VOID = {"meta", "br", "img", "input", "link", "hr", "wbr", "col", "area", "base", "source", "track"}
HOSTILE = '<script>alert("x")</script> & \'quoted\''


class Checked(HTMLParser):
    """Every element closed in order (a stray ``<`` from user text would open one), every text and
    attribute collected, and anything that would fetch from elsewhere noted."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.tags: list[str] = []
        self.text: list[str] = []
        self.fetching: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href", "xlink:href", "action") or (value and ("url(" in value or "://" in value)):
                self.fetching.append((name, value or ""))
        if tag not in VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, f"</{tag}> closes {self.open[-1:]}"
        self.open.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def checked(page: str) -> Checked:
    parser = Checked()
    parser.feed(page)
    parser.close()
    assert parser.open == [], parser.open
    return parser


def facts(n: int, *, error: str = "exit code 1", source: str = "/data/red.yml") -> ExperimentFacts:
    """``n`` batches two at a time, a second each, every seventh failed with ``error``."""
    t0 = 1_765_000_000.0
    batches = []
    for i in range(n):
        start = t0 + (i // 2)
        failed = i % 7 == 3
        batches.append(BatchFacts(i, f"{i:024x}", "failed" if failed else "succeeded", 1, 1 if failed else 0, error if failed else None,
                                  t0, start, start, start + 0.9, 50_000_000 + i, 0.8))
    return ExperimentFacts("6751a3c2e4b0a1b2c3d4e5f6", source, "faice-test-busybox:latest", "docker", "alice", t0, batches)


def test_esc_escapes_markup_and_both_quotes():
    assert esc(HOSTILE) == "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#x27;quoted&#x27;"


def test_the_page_escapes_user_text_and_fetches_nothing():
    page = render_html(facts(10, error=HOSTILE, source='x"><img src=//evil.example/a.png>'))
    parsed = checked(page)
    assert "<script" not in page and "<img" not in page and "script" not in parsed.tags
    assert parsed.fetching == [] and "http://" not in page and "https://" not in page and "@import" not in page
    assert HOSTILE in "".join(parsed.text)  # shown as the text it is
    assert page.count("<rect") == 10  # a bar per batch


def test_the_page_summarises_the_experiment():
    page = render_html(facts(10))
    text = " ".join(checked(page).text)
    assert "6751a3c2e4b0a1b2c3d4e5f6" in text and "/data/red.yml" in text and "faice-test-busybox:latest" in text
    assert "succeeded 9" in " ".join(text.split()) and "failed 1" in " ".join(text.split())
    assert "wall time" in text and "4.9s" in text  # five pairs a second apart, the last 0.9 s long
    assert "total CPU time" in text and "8s" in text
    assert "47.7 MiB (batch 9)" in text
    for i in range(10):
        assert f"{i:024x}" in page


def test_batches_still_running_end_at_the_reports_time_in_summary_and_timeline():
    """An unfinished experiment: its running batches last until the report was made, not until
    the latest event recorded, and the summary's wall time is the timeline's extent."""
    t0 = 1_765_000_000.0
    running = [BatchFacts(i, f"{i:024x}", "processing", 1, None, None, t0, t0 + i, t0 + i, None, None, None) for i in range(2)]
    unfinished = ExperimentFacts("6751a3c2e4b0a1b2c3d4e5f6", "/data/red.yml", "img", "docker", "alice", t0, running)
    page = render_html(unfinished, t0 + 30)
    text = " ".join(" ".join(checked(page).text).split())
    assert "not run yet" not in text and "30s" in text and "2 still running" in text
    assert unfinished.span(t0 + 30) == (t0, t0 + 30)
    assert timeline(unfinished, t0 + 30).count('text-anchor="end">+30s</text>') == 1  # the axis ends at the report's time
    # a batch cancelled before it began (its end the latest event) counts in neither
    cancelled = BatchFacts(2, "c" * 24, "cancelled", 0, None, None, t0, None, None, t0 + 100, None, None)
    ended = BatchFacts(3, "e" * 24, "succeeded", 1, 0, None, t0, t0 + 1, t0 + 1, t0 + 5, None, None)
    mixed = ExperimentFacts("6751a3c2e4b0a1b2c3d4e5f6", "/data/red.yml", "img", "docker", "alice", t0, [ended, cancelled])
    assert mixed.span(t0 + 200) == (t0 + 1, t0 + 5)
    text = " ".join(" ".join(checked(render_html(mixed, t0 + 200)).text).split())
    assert "wall time 4s" in text and "still running" not in text
    assert 'text-anchor="end">+4s</text>' in timeline(mixed, t0 + 200)


def test_ten_thousand_batches_make_a_small_page_quickly():
    many = facts(10_000)
    began = time.perf_counter()
    page = render_html(many)
    took = time.perf_counter() - began
    assert took < 3, took
    assert len(page) < 1_500_000, len(page)
    assert f"{10_000} batches are too many for a bar each" in page and page.count("<rect") <= 2 * 200
    assert f"The first {MAX_ROWS} of 10000 batches" in page
    assert "and 1409 more" in page  # 1429 failed with one reason: 20 named
    checked(page)
    assert len(render_trace(many).splitlines()) == 10_001
    assert MAX_BARS < 10_000


def test_trace_formats_are_nextflows():
    """Nextflow's Duration.toString and MemoryUnit.toString: zero parts left out, half-up rounding."""
    given = [0, 0.35, 0.9996, 1, 4, 4.25, 4.24, 59.94, 60, 89.4, 89.6, 187, 7500, 86400, 90061]
    assert [duration(s) for s in given] == ["0ms", "350ms", "1s", "1s", "4s", "4.3s", "4.2s", "59.9s", "1m", "1m 29s", "1m 30s",
                                            "3m 7s", "2h 5m", "1d", "1d 1h 1m 1s"]
    assert [memory(0), memory(512), memory(2048), memory(55_700_000), memory(3 * 1024**3)] == ["0", "512 B", "2 KB", "53.1 MB", "3 GB"]
    assert timestamp(None) == "-" and timestamp(1_765_000_000.25).endswith(".250")


def test_trace_has_a_line_per_batch_with_unknowns_as_dashes():
    data = facts(4, error="exit code 1\twith a tab\nand a line")
    waiting = BatchFacts(4, "f" * 24, "registered", 0, None, None, 1_765_000_000.0, None, None, None, None, None)
    data.batches.append(waiting)
    lines = render_trace(data).splitlines()
    assert lines[0].split("\t") == list(FIELDS)
    rows = [dict(zip(FIELDS, line.split("\t"), strict=True)) for line in lines[1:]]
    assert [r["status"] for r in rows] == ["COMPLETED", "COMPLETED", "COMPLETED", "FAILED", "SUBMITTED"]
    assert rows[3]["exit"] == "1" and rows[3]["error"] == "exit code 1 with a tab and a line"
    assert rows[0]["realtime"] == "900ms" and rows[0]["%cpu"] == "88.9%" and rows[0]["peak_rss"] == "47.7 MB"
    assert all(rows[4][k] == "-" for k in ("exit", "start", "complete", "duration", "realtime", "%cpu", "peak_rss", "error"))


def test_report_targets_one_file_each_and_dash_is_standard_output(tmp_path: Path, faice):
    """-o and --trace naming one file are refused (the trace would replace the page); - writes to
    standard output, the other file's note then going to stderr."""
    from faice.state.store import Store

    db = tmp_path / "faice.db"
    experiment_id, _ = Store(db).create_experiment(source="x", red={}, argvs=[["a"], ["b"]], image="i", engine=None, username="u")
    page = tmp_path / "r.html"
    same = faice("--db", str(db), "report", experiment_id, "-o", str(page), "--trace", f"{tmp_path}/./r.html", cwd=tmp_path)
    assert same.returncode == 2 and same.stderr.count("\n") == 1 and "the same file" in same.stderr and not page.exists()
    both = faice("--db", str(db), "report", experiment_id, "-o", "-", "--trace", "-", cwd=tmp_path)
    assert both.returncode == 2 and "the same file" in both.stderr
    piped = faice("--db", str(db), "report", experiment_id, "-o", str(page), "--trace", "-", cwd=tmp_path)
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.splitlines()[0].split("\t") == list(FIELDS) and len(piped.stdout.splitlines()) == 3
    assert piped.stderr == f"wrote {page}\n" and page.exists() and not (tmp_path / "-").exists()
    html_out = faice("--db", str(db), "report", experiment_id, "-o", "-", cwd=tmp_path)
    assert html_out.returncode == 0 and html_out.stdout.startswith("<!DOCTYPE html>") and not (tmp_path / "-").exists()


def test_an_experiment_removed_while_reported_is_an_unknown_id(tmp_path: Path, monkeypatch):
    """``faice rm`` between resolving the id and reading the experiment: UnknownId (exit 2), not an AssertionError."""
    from faice.report.model import gather
    from faice.state.store import Store, UnknownId

    store = Store(tmp_path / "faice.db")
    experiment_id, _ = store.create_experiment(source="x", red={}, argvs=[["a"]], image="i", engine=None, username="u")
    monkeypatch.setattr(store, "experiment", lambda *args, **kwargs: None)
    with pytest.raises(UnknownId, match=experiment_id):
        gather(store, experiment_id)


@pytest.mark.docker
def test_report_of_a_real_run(tmp_path: Path, docker_image: str):
    """Three batches, one failing with markup in its stderr: the page names each and the escaped
    reason, the trace has their statuses and exit codes; without a file to write, or for an
    unknown id, faice says so and exits 2."""
    run = Run(tmp_path).real()
    data = as_batches(shell_red('[ "$1" != bad ] || { echo "<script>alert(1)</script> broke" >&2; exit 5; }; head -c 20000000 /dev/zero > /cc/home/b; sleep 0.5',
                                cli_inputs={"word": {"type": "string", "inputBinding": {"position": 0}}}), [{"word": "good"}, {"word": "bad"}, {"word": "fine"}])
    result, doc = run(data, "--jobs", "3")
    assert result.returncode == 1 and doc is not None, result.stderr
    page_path, trace_path = tmp_path / "report.html", tmp_path / "trace.tsv"
    made = run.faice("report", doc["experimentId"][:8], "-o", str(page_path), "--trace", str(trace_path))
    assert made.returncode == 0, made.stderr
    page = page_path.read_text()
    parsed = checked(page)
    assert parsed.fetching == [] and "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; broke" in page
    for batch in doc["batches"]:
        assert batch["batchId"] in page
    assert "2 of 3 batches" in page or "3 of 3 batches" in page  # measured: the two that ran half a second at least
    lines = trace_path.read_text().splitlines()
    assert lines[0].split("\t") == list(FIELDS) and len(lines) == 4
    rows = [dict(zip(FIELDS, line.split("\t"), strict=True)) for line in lines[1:]]
    assert [(r["native_id"], r["status"], r["exit"]) for r in rows] == [
        (doc["batches"][0]["batchId"], "COMPLETED", "0"), (doc["batches"][1]["batchId"], "FAILED", "5"), (doc["batches"][2]["batchId"], "COMPLETED", "0")]
    assert rows[0]["peak_rss"].endswith(" MB") and rows[2]["peak_rss"].endswith(" MB")
    assert "<script>alert(1)</script> broke" in rows[1]["error"]  # a TSV is not HTML: the reason as it is
    nothing = run.faice("report", doc["experimentId"])
    assert nothing.returncode == 2 and nothing.stderr.strip() == "faice: say what to write: -o REPORT.html, --trace TRACE.tsv, or both"
    unknown = run.faice("report", "ffffffff", "-o", str(tmp_path / "x.html"))
    assert unknown.returncode == 2 and "no experiment or batch" in unknown.stderr and "Traceback" not in unknown.stderr
    batch = run.faice("report", doc["batches"][1]["batchId"], "--trace", str(tmp_path / "x.tsv"))
    assert batch.returncode == 2 and f"faice report {doc['experimentId']}" in batch.stderr
    assert not (tmp_path / "x.html").exists() and not (tmp_path / "x.tsv").exists()
    shown = json.loads(run.faice("show", doc["experimentId"], "--json").stdout)
    assert all(b["peakMemory"] >= 20_000_000 for b in shown["batches"] if b["state"] == "succeeded")
