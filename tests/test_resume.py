"""faice exec --resume and faice resume on the real Docker engine: an interrupted or killed run
taken up again, only where it did not succeed, in the same experiment and output directory."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.conftest import communicate, eventually, faice_command, faice_env, labelled_containers
from tests.redfiles import as_batches, local_file, shell_red, write
from tests.test_exec import Run

pytestmark = pytest.mark.docker

#: batch N writes result.txt, then sleeps as many seconds as its input file says: the file's
#: content (not the argv, which must stay the same) decides whether it is a sleeper
SLEEPER = 'echo "batch $1" > result.txt; sleep "$(cat "$2")"'
CLI_INPUTS = {"n": {"type": "int", "inputBinding": {"position": 0}}, "wait": {"type": "File", "inputBinding": {"position": 1}}}
OUTPUTS = {"result": {"type": "File", "outputBinding": {"glob": "result.txt"}}}
DEAD_RUN = "the faice process running it ended without recording a result"


@pytest.fixture
def run(tmp_path: Path, docker_image: str) -> Run:
    return Run(tmp_path)


def sleepers(run: Run, seconds: str = "60") -> Path:
    """red.yml: batch 0 is done at once, batches 1 and 2 sleep ``seconds`` (slow.txt)."""
    (run.tmp / "fast.txt").write_text("0\n")
    (run.tmp / "slow.txt").write_text(f"{seconds}\n")
    data = as_batches(shell_red(SLEEPER, cli_inputs=CLI_INPUTS, outputs=OUTPUTS),
                      [{"n": 0, "wait": local_file("fast.txt")}, {"n": 1, "wait": local_file("slow.txt")}, {"n": 2, "wait": local_file("slow.txt")}])
    return write(run.tmp / "red.yml", data)


def start(run: Run, *args: str) -> subprocess.Popen[str]:
    """A real faice program in the background (``args`` after ``--db``), to be signalled."""
    return subprocess.Popen([*faice_command(), "--db", str(run.db), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=run.tmp, env=faice_env({**run.env, "PYTHONFAULTHANDLER": "1"}))


def states(run: Run) -> dict[int, str]:
    """The batches' states, once the run made its state file (nothing before)."""
    if not run.db.exists():
        return {}
    with sqlite3.connect(run.db) as conn:
        try:
            return dict(conn.execute("SELECT idx, state FROM batches"))
        except sqlite3.OperationalError:  # its tables are being made
            return {}


def fast_one_done(run: Run) -> str:
    """Wait until batch 0 succeeded and the sleepers' containers run; the experiment's id."""
    eventually(lambda: states(run) == {0: "succeeded", 1: "processing", 2: "processing"}
               and len(labelled_containers(f"faice.experiment={experiment(run)}")) == 2, 60, 0.1, what=lambda: states(run))
    return experiment(run)


def experiment(run: Run) -> str:
    with sqlite3.connect(run.db) as conn:
        (found,) = conn.execute("SELECT id FROM experiments ORDER BY created_at DESC LIMIT 1").fetchone()
    return found


def history(run: Run, batch_id: str) -> list[tuple[str, str]]:
    shown = json.loads(run.faice("show", batch_id, "--json").stdout)
    return [(h["state"], h["reason"]) for h in shown["history"]]


def fingerprint(path: Path) -> tuple[bytes, int, int]:
    """What an untouched file keeps: its bytes, inode and modification time."""
    stat = path.stat()
    return path.read_bytes(), stat.st_ino, stat.st_mtime_ns


def test_resume_after_ctrl_c_runs_only_the_unfinished_batches_and_can_be_interrupted_and_resumed_again(run: Run):
    red = sleepers(run)
    process = start(run, "exec", str(red), "--json", "--outdir", str(run.outdir), "--jobs", "3")
    experiment_id = fast_one_done(run)
    kept = fingerprint(run.outdir / "batch_0" / "result.txt")
    process.send_signal(signal.SIGINT)
    stdout, stderr = communicate(process, 60)
    assert process.returncode == 130, stderr
    earlier = json.loads(stdout)
    assert [b["state"] for b in earlier["batches"]] == ["succeeded", "cancelled", "cancelled"]

    again = start(run, "exec", "red.yml", "--resume", "--json", "--jobs", "3")  # by a relative path; still sleepers: Ctrl-C this run too
    eventually(lambda: len(labelled_containers(f"faice.experiment={experiment_id}")) == 2, 60, 0.1, what="the resumed sleepers' containers")
    again.send_signal(signal.SIGINT)
    stdout, stderr = communicate(again, 60)
    assert again.returncode == 130, stderr
    assert "batch 0 succeeded: kept from an earlier run" in stderr
    interrupted = json.loads(stdout)
    assert interrupted["experimentId"] == experiment_id and interrupted["state"] == "cancelled"
    assert [b["state"] for b in interrupted["batches"]] == ["succeeded", "cancelled", "cancelled"]

    (run.tmp / "slow.txt").write_text("0\n")
    result, doc = run(red, "--resume")
    assert result.returncode == 0, result.stderr
    assert doc is not None and doc["experimentId"] == experiment_id and [b["attempts"] for b in doc["batches"]] == [1, 3, 3]
    assert doc["batches"][0] == earlier["batches"][0]
    assert fingerprint(run.outdir / "batch_0" / "result.txt") == kept
    reasons = [reason for state, reason in history(run, doc["batches"][1]["batchId"]) if state == "registered"]
    assert reasons == ["submitted", "resumed (run 2)", "resumed (run 3)"]
    assert labelled_containers(f"faice.experiment={experiment_id}") == []


def test_resume_after_sigkill_fails_what_the_dead_run_left_removes_its_containers_and_runs_only_those_batches(run: Run):
    red = sleepers(run)
    process = start(run, "exec", str(red), "--json", "--outdir", str(run.outdir), "--jobs", "3")
    experiment_id = fast_one_done(run)
    kept = fingerprint(run.outdir / "batch_0" / "result.txt")
    earlier = json.loads(run.faice("show", experiment_id, "--json").stdout)["batches"]
    process.send_signal(signal.SIGKILL)  # no chance to record anything: its two containers go on sleeping
    process.communicate(timeout=30)
    assert len(labelled_containers(f"faice.experiment={experiment_id}")) == 2

    (run.tmp / "slow.txt").write_text("0\n")  # the sleepers wake at once; their argv is the same
    result, doc = run(red, "--resume", "--jobs", "2")
    assert result.returncode == 0, result.stderr
    assert doc is not None and doc["experimentId"] == experiment_id and doc["state"] == "succeeded"
    assert [b["batchId"] for b in doc["batches"]] == [b["batchId"] for b in earlier]
    assert doc["batches"][0] == {k: v for k, v in earlier[0].items() if k in doc["batches"][0]}  # its recorded result, one attempt
    assert [b["attempts"] for b in doc["batches"]] == [1, 2, 2]
    assert fingerprint(run.outdir / "batch_0" / "result.txt") == kept
    assert [(run.outdir / f"batch_{i}" / "result.txt").read_text() for i in (1, 2)] == ["batch 1\n", "batch 2\n"]
    for i in (1, 2):
        assert history(run, doc["batches"][i]["batchId"])[-6:] == [
            ("processing", "attempt 1"), ("failed", DEAD_RUN), ("registered", "resumed (run 2)"),
            ("scheduled", "queued (up to 2 in parallel)"), ("processing", "attempt 2"), ("succeeded", "all outputs found and delivered")]
    assert not any(reason.startswith("resumed") for _state, reason in history(run, doc["batches"][0]["batchId"]))
    assert sorted(p.name.split(".old-")[0] for p in run.outdir.iterdir() if ".old-" in p.name) == ["batch_1", "batch_2"]  # only theirs set aside
    assert not [p for p in run.tmp.iterdir() if p.name.startswith("out.old-")]  # the set stays where it is
    assert labelled_containers(f"faice.experiment={experiment_id}") == []


def test_faice_resume_by_id_reads_the_recorded_file_again_with_this_runs_retries(run: Run):
    script = 'echo "batch $1" > result.txt; [ "$(cat "$2")" = ok ]'
    (run.tmp / "good.txt").write_text("ok\n")
    (run.tmp / "flaky.txt").write_text("not yet\n")
    data = as_batches(shell_red(script, cli_inputs=CLI_INPUTS, outputs=OUTPUTS), [{"n": 0, "wait": local_file("good.txt")}, {"n": 1, "wait": local_file("flaky.txt")}])
    first, doc = run(data)
    assert first.returncode == 1 and doc is not None
    experiment_id = doc["experimentId"]
    kept = fingerprint(run.outdir / "batch_0" / "result.txt")

    elsewhere = run.tmp / "elsewhere"
    elsewhere.mkdir()
    still = run.runner("--db", str(run.db), "resume", experiment_id[:8], "--json", "--retries", "1", cwd=elsewhere)  # the recorded path, from anywhere;
    # 8 characters: its batches' ids start with them too, but faice resume looks for experiments only
    assert still.returncode == 1, still.stderr
    failed = json.loads(still.stdout)
    assert failed["experimentId"] == experiment_id and [b["attempts"] for b in failed["batches"]] == [1, 3]  # two in this run: its own retry
    assert history(run, failed["batches"][1]["batchId"])[-1] == ("failed", "exit code 1")

    (run.tmp / "flaky.txt").write_text("ok\n")
    resumed = run.real().faice("resume", experiment_id, "--json")  # end to end: faice resume as a real program
    assert resumed.returncode == 0, resumed.stderr
    done = json.loads(resumed.stdout)
    assert done["state"] == "succeeded" and [b["attempts"] for b in done["batches"]] == [1, 4] and done["batches"][0] == doc["batches"][0]
    assert fingerprint(run.outdir / "batch_0" / "result.txt") == kept

    nothing = run.faice("resume", experiment_id, "--json")
    assert nothing.returncode == 0 and f"nothing to resume: every batch of experiment {experiment_id} succeeded" in nothing.stderr
    assert json.loads(nothing.stdout) == done
    assert history(run, done["batches"][1]["batchId"])[-1] == ("succeeded", "all outputs found and delivered")


def test_a_single_batch_whose_directory_is_the_output_directory_is_set_aside_as_on_a_retry(run: Run):
    (run.tmp / "flag.txt").write_text("no\n")
    data = shell_red('echo "$(cat "$1")" > result.txt; [ "$(cat "$1")" = ok ]', cli_inputs={"flag": {"type": "File", "inputBinding": {"position": 0}}},
                     outputs=OUTPUTS, )
    data["inputs"] = {"flag": local_file("flag.txt")}
    first, doc = run(data)
    assert first.returncode == 1 and doc is not None
    (run.tmp / "flag.txt").write_text("ok\n")
    again, resumed = run(data, "--resume")
    assert again.returncode == 0, again.stderr
    assert resumed is not None and resumed["experimentId"] == doc["experimentId"]
    assert (run.outdir / "result.txt").read_text() == "ok\n"
    (aside,) = [p for p in run.tmp.iterdir() if p.name.startswith("out.old-")]
    assert (aside / "result.txt").read_text() == "no\n"  # the failed attempt's outputs, kept
    shown = json.loads(run.faice("show", doc["experimentId"], "--json").stdout)
    assert shown["outdir"] == str(run.outdir)


def test_what_cannot_be_resumed_is_refused_with_the_reason_and_changes_nothing(run: Run, faice):
    script = 'echo "$1" > result.txt; [ "$1" != bad ]'
    cli_inputs = {"word": {"type": "string", "inputBinding": {"position": 0}}}
    data = as_batches(shell_red(script, cli_inputs=cli_inputs, outputs=OUTPUTS), [{"word": "good"}, {"word": "bad"}, {"word": "fine"}])
    red = run.tmp / "red.yml"
    write(red, data)

    never = run(red, "--resume")[0]
    assert never.returncode == 2 and never.stdout == ""
    assert never.stderr == f"faice: nothing to resume: faice exec never ran {red} with the state file {run.db}; run it without --resume\n"

    first, doc = run(red)
    assert first.returncode == 1 and doc is not None
    experiment_id = doc["experimentId"]
    before = run.faice("show", experiment_id, "--json").stdout

    changed = as_batches(shell_red(script, cli_inputs=cli_inputs, outputs=OUTPUTS), [{"word": "good"}, {"word": "worse"}, {"word": "fine"}])
    refused = run(changed, "--resume")[0]  # written over red.yml
    assert refused.returncode == 2
    assert refused.stderr == (f"faice: {red} no longer describes the batches of experiment {experiment_id}: batch 1 now runs sh -c '{script}' sh worse, "
                              f"it ran sh -c '{script}' sh bad; run it without --resume for a new experiment\n")
    fewer = run(as_batches(shell_red(script, cli_inputs=cli_inputs, outputs=OUTPUTS), [{"word": "good"}]), "--resume")[0]
    assert fewer.returncode == 2 and "it has 1 batch, the experiment ran 3; run it without --resume" in fewer.stderr
    write(red, data)

    moved = run(red, "--resume", "--outdir", str(run.tmp / "other"))[0]
    assert moved.returncode == 2
    assert f"experiment {experiment_id} keeps its outputs in {run.outdir}: resume it there (leave out --outdir)" in moved.stderr
    piped = faice("--db", str(run.db), "exec", "-", "--resume", input=red.read_text(), cwd=run.tmp)
    assert piped.returncode == 2 and "resume it by id instead (faice resume EXPERIMENT_ID -)" in piped.stderr
    batch = faice("--db", str(run.db), "resume", doc["batches"][0]["batchId"])
    assert batch.returncode == 2 and "is a batch: faice resume takes an experiment id" in batch.stderr
    assert run.faice("show", experiment_id, "--json").stdout == before
    assert not (run.outdir / "other").exists()

    (run.outdir / "batch_0").rename(run.tmp / "taken")  # a succeeded batch's outputs, gone
    gone = run(red, "--resume")[0]
    assert gone.returncode == 2 and f"batch 0 of experiment {experiment_id} succeeded, but its outputs are no longer in {run.outdir / 'batch_0'}" in gone.stderr
    (run.tmp / "taken").rename(run.outdir / "batch_0")
    with sqlite3.connect(run.db) as conn:  # as if the tag named another image now than when the batches ran
        conn.execute("UPDATE experiments SET image_id = ? WHERE id = ?", ("sha256:" + "0" * 64, experiment_id))
    retagged = run(red, "--resume")[0]
    assert retagged.returncode == 2
    assert f"experiment {experiment_id} ran on sha256:000000000000: its outputs would come from two images; run it without --resume" in retagged.stderr
    assert json.loads(run.faice("show", experiment_id, "--json").stdout)["batches"] == json.loads(before)["batches"]


def test_a_run_still_going_on_is_not_resumed_beside_it(run: Run):
    red = sleepers(run)
    process = start(run, "exec", str(red), "--json", "--outdir", str(run.outdir), "--jobs", "3")
    experiment_id = fast_one_done(run)
    refused = run(red, "--resume")[0]
    assert refused.returncode == 2
    assert refused.stderr == (f"faice: experiment {experiment_id} is still running (faice pid {process.pid}): let it end, "
                              f"or cancel it (faice cancel {experiment_id}), before resuming it\n")
    assert run.faice("cancel", experiment_id).returncode == 0
    process.communicate(timeout=60)
    assert os.path.exists(run.outdir / "batch_0" / "result.txt")


def test_an_input_read_from_elsewhere_is_refused_and_a_resumed_batch_keeps_nothing_of_its_last_cache_use(run: Run):
    script = 'cat "$1" > result.txt; grep -q ok "$1"'
    cli_inputs = {"f": {"type": "File", "inputBinding": {"position": 0}}}
    (run.tmp / "alt").mkdir()
    (run.tmp / "good.txt").write_text("ok\n")
    (run.tmp / "flaky.txt").write_text("bad\n")
    (run.tmp / "alt" / "flaky.txt").write_text("ok\n")
    data = as_batches(shell_red(script, cli_inputs=cli_inputs, outputs=OUTPUTS), [{"f": local_file("good.txt")}, {"f": local_file("flaky.txt")}])
    red = write(run.tmp / "red.yml", data)
    first, doc = run(red, "--cache")
    assert first.returncode == 1 and doc is not None
    shown = json.loads(run.faice("show", doc["batches"][1]["batchId"], "--json").stdout)
    assert shown["cacheKey"] is not None  # the failed batch's key, for faice why

    elsewhere = as_batches(shell_red(script, cli_inputs=cli_inputs, outputs=OUTPUTS), [{"f": local_file("good.txt")}, {"f": local_file("alt/flaky.txt")}])
    refused = run(elsewhere, "--resume")[0]  # the same argv (/cc/inputs/f/flaky.txt), another file
    assert refused.returncode == 2
    assert f"batch 1's input f now comes from {(run.tmp / 'alt' / 'flaky.txt').as_uri()}, it came from {(run.tmp / 'flaky.txt').as_uri()}" in refused.stderr

    write(red, data)
    (run.tmp / "flaky.txt").write_text("ok, now\n")
    resumed, again = run(red, "--resume")  # without --cache: nothing of the first attempt's key may stay
    assert resumed.returncode == 0 and again is not None
    assert [b.get("cachedFrom") for b in again["batches"]] == [None, None]
    shown = json.loads(run.faice("show", again["batches"][1]["batchId"], "--json").stdout)
    assert "cacheKey" not in shown and "cachedFrom" not in shown
