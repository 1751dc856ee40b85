"""``faice exec``: everything after a RED file is prepared, up to the result document.

Order: plan every batch → check every connector (and run Connector CLI ``*-validate``) →
reach Docker and the image → register the experiment (or take up an ended one again:
``--resume``) → run the batches → result. Nothing starts a container before all checks passed.
"""

from __future__ import annotations

import getpass
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faice.connectors import registry
from faice.connectors.base import ConnectorError
from faice.errors import EnvironmentUnusable, InvalidInput
from faice.host import memory_mib
from faice.red.model import Experiment
from faice.red.prepare import Prepared
from faice.red.secrets import Masker, strip_protection
from faice.runner.batch import BatchRunner, RunOptions, check_can_make, check_output_dir, prepare_output_dir, set_aside
from faice.runner.budget import MemoryBudget
from faice.runner.lifecycle import BatchRecord, EngineFactory, Event, batch_runner, register
from faice.runner.plan import BatchPlan, plan
from faice.runner.reconcile import sweep_containers
from faice.runner.resume import KEPT, batch_records, check_image, check_kept_outputs, recorded_source, reopen, resumable
from faice.runner.scheduler import LocalScheduler
from faice.signals import on_stop
from faice.state.cleanup import marked_experiment
from faice.state.states import BatchState
from faice.state.store import Store


@dataclass
class ExecResult:
    """What ``faice exec`` ran and how it ended: the result document's source."""

    experiment_id: str
    state: BatchState  # succeeded, failed or cancelled
    records: list[BatchRecord]
    outdir: Path
    #: Ctrl-C or SIGTERM stopped the run (exit 130)
    interrupted: bool = False
    mask: Masker = field(default_factory=Masker)
    #: of ``records``, how many succeeded in an earlier run of a resumed experiment (and did not run again)
    kept: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "experimentId": self.experiment_id,
            "state": self.state,
            "batches": [
                {
                    "batchId": r.batch_id,
                    "index": r.plan.index,
                    "state": r.result.state if r.result else BatchState.CANCELLED,
                    "argv": [self.mask(a) for a in r.plan.argv],
                    "exitCode": r.result.exit_code if r.result else None,
                    "outputs": r.result.outputs if r.result else {},
                    "error": r.result.error if r.result else "cancelled",
                    "attempts": r.attempts,
                    **({"cachedFrom": r.result.cached_from} if r.result and r.result.cached_from else {}),
                }
                for r in self.records
            ],
        }


def username() -> str:
    return os.environ.get("SUDO_USER") or getpass.getuser()


def check_connectors(plans: list[BatchPlan], prepared: Prepared, remote_validation: bool, mount: bool, base_dir: Path) -> None:
    """Every connector is available and can do what the file asks of it, mounts included, on this
    machine; Connector CLI programs accept their access data; inputs already on this machine
    (relative to ``base_dir``) exist. Raises before anything runs."""
    from faice.connectors.base import Context

    context = Context(base_dir=base_dir)
    problems: list[str] = []
    mountable: dict[str, str | None] = {}  # command: why it cannot mount here (None: it can), asked once
    seen: set[tuple[str, str, str, str]] = set()
    uses: list[tuple[str, str, str, str, dict[str, Any], Any]] = []  # (where, direction, command, kind, access, listing)
    for p in plans:
        uses += [(f"batch {p.index} input {s.key}", "mount" if s.connector.mount and mount else "receive", s.connector.command, s.kind, s.connector.access, s.listing)
                 for s in p.staged]
        for key, out in prepared.experiment.batches[p.index].outputs.items():
            kind = "Directory" if out["class"] == "Directory" else "File"
            uses.append((f"batch {p.index} output {key}", "send", out["connector"]["command"], kind, out["connector"].get("access") or {}, out.get("listing")))
    for where, direction, command, kind, access, listing in uses:
        from faice.connectors.program import ProgramConnector  # here: a file without connectors needs none of it

        try:
            connector = registry.connector(command)
            if not connector.supports(direction, kind):  # type: ignore[arg-type]
                hint = "; run with --no-mount to copy it instead" if direction == "mount" else ""
                raise ConnectorError(f"{command} cannot {direction} a {kind}{hint}")
            if direction == "mount" and command not in mountable:
                reason = connector.mount_unavailable()
                mountable[command] = f"{where} ({command}): {reason}" if reason else None
            key = (command, direction, kind, repr(access))
            if key in seen:
                continue
            seen.add(key)
            if remote_validation and isinstance(connector, ProgramConnector):
                connector.validate_remote(strip_protection(access), direction, kind, listing)  # type: ignore[arg-type]
            if direction != "send":
                connector.local_source(strip_protection(access), context)  # one on this machine raises when it is not there
        except ConnectorError as exc:
            problems.append(f"{where}: {prepared.masker(str(exc))}")
    unusable = [reason for reason in mountable.values() if reason]
    if unusable:
        raise EnvironmentUnusable(f"cannot mount before anything ran: {'; '.join(unusable)}")
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise InvalidInput(f"connector check failed before anything ran: {shown}")


def local_jobs(experiment: Experiment) -> tuple[int, str | None]:
    """How many batches ``faice exec`` runs at once without ``--jobs``, and a notice when the
    file's ``batchConcurrencyLimit`` (a cluster's) is more than this machine takes: at most its
    CPU count, and no more batches than their ``ram`` fits in its memory."""
    from faice.host import cpu_count

    cap, why = cpu_count(), "the CPU count"
    memory, ram = memory_mib(), experiment.container.ram
    if memory and ram and memory // ram < cap:
        cap, why = max(1, memory // ram), f"as many as {ram} MiB each fit in {memory} MiB of memory"
    limit = experiment.batch_concurrency_limit
    if limit is None or limit <= cap:
        return limit or cap, None
    return cap, f"batchConcurrencyLimit {limit} is a cluster's: here up to {cap} batches run at once ({why}); --jobs N chooses"


def no_mount_notice(experiment: Experiment) -> str | None:
    """What ``--no-mount`` changes for this file, or None when it asks for no mount."""
    mounts = [value["connector"] for batch in experiment.batches for values in batch.inputs.values()
              for value in (values if isinstance(values, list) else [values])
              if isinstance(value, dict) and isinstance(value.get("connector"), dict) and value["connector"].get("mount") is True]
    if not mounts:
        return None
    writable = sum(1 for c in mounts if (c.get("access") or {}).get("writable") is True)
    tail = f"; {writable} of them writable: what the tool changes there stays in the copy and is not sent back" if writable else ""
    return f"--no-mount: {len(mounts)} director{'y' if len(mounts) == 1 else 'ies'} marked mount: true {'is' if len(mounts) == 1 else 'are'} copied in instead{tail}"


def execute(prepared: Prepared, options: RunOptions, store: Store, on_event: Event, open_engine: EngineFactory, resume: str | None = None,
            plans: list[BatchPlan] | None = None) -> ExecResult:
    """Check everything, register the experiment, run its batches here; ``open_engine`` reaches the container engine once
    the file's own checks passed. ``resume``: instead of registering a new experiment, take up that ended one again
    (faice.runner.resume) and run only its batches that did not succeed. ``plans``: the batches as another format's
    planner made them (faice.cwl.prepare); by default the RED file's."""
    experiment = prepared.experiment
    plans = plan(experiment, prepared.masker) if plans is None else plans
    source = prepared.doc.source.name
    base_dir = Path(source).resolve().parent if os.path.exists(source) else Path.cwd()
    resumed = resumable(store, resume, prepared, plans, base_dir) if resume else None
    if resumed is not None and not resumed.unfinished:
        kept = batch_records(resumed.batches, plans)[1]
        return ExecResult(resumed.experiment_id, BatchState.SUCCEEDED, kept, options.outdir, mask=prepared.masker, kept=len(kept))
    check_connectors(plans, prepared, options.connector_validation, options.mount, base_dir)
    check_output_dir(options.outdir)
    check_can_make(options.outdir)
    earlier = marked_experiment(options.outdir)
    if resumed is not None:
        check_kept_outputs(resumed, options.outdir)
    elif earlier is not None and store.has_open_batches(earlier):
        raise InvalidInput(f"output directory {options.outdir} holds the outputs of experiment {earlier}, which is still running: choose another --outdir")
    engine = open_engine(options.engine)
    sweep_containers(store, engine)
    on_event(-1, "phase", "pull")
    image_id = engine.ensure_image(experiment.container.image, pull=options.pull, auth=experiment.container.image_auth)
    if resumed is not None:
        check_image(resumed, experiment.container.image, image_id)
    try:  # the whole earlier set aside at once, before anything is recorded: one run's outputs, never mixed (a resumed run completes its own)
        moved = None if resumed is not None else set_aside(options.outdir)
    except OSError as exc:
        raise InvalidInput(f"cannot move the earlier outputs in {options.outdir} aside: {exc.strerror or exc}") from None
    runner: list[BatchRunner] = []
    cancelled = threading.Event()

    def cancel() -> None:
        cancelled.set()
        for r in runner:
            r.kill_all()

    with on_stop(cancel):
        if resumed is None:
            experiment_id, batch_ids = register(store, prepared, plans, runner="exec", username=username(), retries=options.retries,
                                                connector_validation=options.connector_validation, container_engine=engine.name,
                                                source=recorded_source(source), cache=options.cache, base_dir=base_dir)
            records, kept = [BatchRecord(p, bid) for p, bid in zip(plans, batch_ids, strict=True)], []
        else:
            experiment_id = resumed.experiment_id
            records, kept = reopen(store, resumed, plans, engine.name)
        store.set_image_id(experiment_id, image_id)
        if marked_experiment(options.outdir) != experiment_id:
            prepare_output_dir(options.outdir, experiment_id)
        if moved is not None and earlier is not None:
            store.set_outdir(earlier, str(moved))
        store.set_outdir(experiment_id, str(options.outdir))
        for record in kept:
            on_event(record.plan.index, BatchState.SUCCEEDED, KEPT)
        runner.append(batch_runner(engine, experiment, prepared.masker, options, store, experiment_id, base_dir, cancelled, image_id))
        scheduler = LocalScheduler(runner[0], store, jobs=options.jobs, retries=options.retries, memory=MemoryBudget(memory_mib()), on_event=on_event)
        scheduler.run(records)
    records = sorted(kept + records, key=lambda r: r.plan.index)
    states = {r.result.state if r.result else BatchState.CANCELLED for r in records}
    if BatchState.FAILED in states:
        state = BatchState.FAILED
    elif cancelled.is_set() or BatchState.CANCELLED in states:
        state = BatchState.CANCELLED
    else:
        state = BatchState.SUCCEEDED
    return ExecResult(experiment_id, state, records, options.outdir, interrupted=cancelled.is_set(), mask=prepared.masker, kept=len(kept))
