"""``faice exec --resume`` and ``faice resume``: an experiment whose run ended, run again where it
did not succeed.

It keeps its id, its history and its output directory; its succeeded batches keep their results
and outputs, untouched. Only what ran may run again: the file must still describe the same
batches (as many, the same image, the same masked argv each), and the image's tag must still name
the image they ran on — one experiment's outputs never come from two different tools.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import NamedTuple

from faice.errors import InvalidInput
from faice.provenance.sources import input_sources
from faice.red.prepare import Prepared
from faice.red.source import display_name, is_url
from faice.runner.batch import AttemptResult, output_dir
from faice.runner.lifecycle import BatchRecord
from faice.runner.plan import BatchPlan
from faice.state.cleanup import marked_experiment
from faice.state.states import OPEN_STATES, BatchState
from faice.state.store import BatchRow, StillRunning, Store, UnknownId, still_running

STDIN = display_name("-")
#: the progress detail of a batch that succeeded in an earlier run and is not run again
KEPT = "kept from an earlier run"
RUN_AGAIN = "run it without --resume for a new experiment"


def recorded_source(name: str) -> str:
    """The source ``faice exec`` records for a RED file, which ``--resume`` looks for: a path made
    absolute (links are not followed: the name given is the file meant), a URL as given, and
    ``<stdin>`` for standard input."""
    if name in ("-", STDIN) or is_url(name):
        return display_name(name)
    return os.path.abspath(os.path.expanduser(name))


def last_experiment(store: Store, location: str) -> str:
    """The newest experiment ``faice exec`` ran from the RED file at ``location``."""
    source = recorded_source(location)
    if source == STDIN:
        raise InvalidInput("--resume finds a file's last experiment by its path, and standard input has none: "
                           "resume it by id instead (faice resume EXPERIMENT_ID -)")
    found = store.last_experiment(source)
    if found is None and source != location:
        found = store.last_experiment(location)  # recorded as given, by a faice from before sources were made absolute
    if found is None:
        raise InvalidInput(f"nothing to resume: faice exec never ran {source} with the state file {store.path}; run it without --resume")
    return found


def experiment_source(store: Store, text: str) -> tuple[str, str]:
    """The experiment that ``faice resume`` names (an id or a unique start of one) and where its
    RED file was read from."""
    try:
        _kind, found = store.resolve_id(text, kinds=("experiment",))
    except UnknownId:
        _kind, batch = store.resolve_id(text)  # raises when no batch goes by it either
        raise InvalidInput(f"{batch} is a batch: faice resume takes an experiment id (faice show {batch} names its experiment)") from None
    record = store.experiment(found)
    assert record is not None
    from faice.cwl import is_cwl_run

    if is_cwl_run(record["red"]):
        raise InvalidInput(f"experiment {found} ran a CWL tool: take it up again with its job files, faice exec {record['source']} JOB... --resume")
    if record["source"] == STDIN:
        raise InvalidInput(f"experiment {found} was read from standard input: give the file again (faice resume {found} FILE, or - to read it from standard input)")
    return found, record["source"]


def resumed_outdir(store: Store, experiment_id: str, chosen: Path | None) -> Path | None:
    """Where a resumed experiment's outputs go: where they are (``--outdir`` may only say the same)."""
    record = store.experiment(experiment_id, red=False)
    recorded = Path(record["outdir"]) if record and record["outdir"] else None
    if chosen is not None and recorded is not None and chosen.resolve() != recorded:
        raise InvalidInput(f"experiment {experiment_id} keeps its outputs in {recorded}: resume it there (leave out --outdir), "
                           f"or {RUN_AGAIN} in {chosen}")
    return recorded or chosen


class Resumable(NamedTuple):
    """An ended experiment that a RED file can take up again, with its batches as they ended."""

    experiment_id: str
    #: the image ID its batches ran on (None: recorded before faice kept it)
    image_id: str | None
    batches: list[BatchRow]

    @property
    def unfinished(self) -> list[BatchRow]:
        return [b for b in self.batches if b.state != BatchState.SUCCEEDED]


def resumable(store: Store, experiment_id: str, prepared: Prepared, plans: list[BatchPlan], base_dir: Path) -> Resumable:
    """The experiment, when its run has ended and the prepared file's ``plans`` are what it ran
    (the same argv, and inputs from the same places, relative paths from ``base_dir``); raises
    InvalidInput saying why not, before anything runs."""
    record = store.experiment(experiment_id, red=False)
    if record is None:
        raise UnknownId(f'no experiment with id "{experiment_id}" in {store.path}')
    if record["runner"] == "serve":
        raise InvalidInput(f"experiment {experiment_id} was submitted to faice serve, which runs it to its end itself; faice exec resumes only its own")
    batches = store.batches(experiment_id)
    if any(b.state in OPEN_STATES for b in batches):
        raise StillRunning(still_running(experiment_id, record["pid"], record["host"]))
    differs = f"{prepared.doc.source.name} no longer describes the batches of experiment {experiment_id}"
    if len(plans) != len(batches):
        raise InvalidInput(f"{differs}: it has {len(plans)} batch{'es' if len(plans) != 1 else ''}, the experiment ran {len(batches)}; {RUN_AGAIN}")
    image = prepared.experiment.container.image
    if image != record["image"]:
        raise InvalidInput(f"{differs}: its image is {image}, the experiment ran {record['image']}; {RUN_AGAIN}")
    for p, batch in zip(plans, batches, strict=True):
        argv = [prepared.masker(a) for a in p.argv]
        if argv != batch.argv:
            raise InvalidInput(f"{differs}: batch {p.index} now runs {shlex.join(argv)}, it ran {shlex.join(batch.argv)}; {RUN_AGAIN}")
        sources = input_sources(p.staged, base_dir, prepared.masker)
        if batch.input_sources and sources != batch.input_sources:  # the same argv, read from somewhere else (recorded since schema step batch_input_sources)
            now, then = next((a, b) for a, b in zip(sources, batch.input_sources, strict=False) if a != b) if len(sources) == len(batch.input_sources) else (None, None)
            where = f"input {now['key']} now comes from {now['uri']}, it came from {then['uri']}" if now and then else "its inputs changed"
            raise InvalidInput(f"{differs}: batch {p.index}'s {where}; {RUN_AGAIN}")
    return Resumable(experiment_id, record["image_id"], batches)


def check_kept_outputs(resumed: Resumable, outdir: Path) -> None:
    """The succeeded batches' outputs are still where they were written, in the experiment's own
    output directory: what is run again completes that set."""
    marked = marked_experiment(outdir)
    if outdir.is_dir() and marked != resumed.experiment_id and any(outdir.iterdir()):
        whose = f"the outputs of experiment {marked}" if marked else "files faice did not write for it"
        raise InvalidInput(f"output directory {outdir} now holds {whose}, not those of experiment {resumed.experiment_id}: {RUN_AGAIN}")
    for batch in resumed.batches:
        kept = output_dir(outdir, len(resumed.batches), batch.index)
        if batch.state == BatchState.SUCCEEDED and not kept.is_dir():
            raise InvalidInput(f"batch {batch.index} of experiment {resumed.experiment_id} succeeded, but its outputs are no longer in {kept}: {RUN_AGAIN}")


def check_image(resumed: Resumable, image: str, image_id: str) -> None:
    """The image's tag still names the image the experiment's batches ran on."""
    if resumed.image_id is not None and image_id != resumed.image_id:
        raise InvalidInput(f"the image {image} is now {short(image_id)}, experiment {resumed.experiment_id} ran on {short(resumed.image_id)}: "
                           f"its outputs would come from two images; {RUN_AGAIN}")


def short(image_id: str) -> str:
    return image_id[:19]  # "sha256:" and 12 hex digits, as docker shows an ID


def reopen(store: Store, resumed: Resumable, plans: list[BatchPlan], engine: str) -> tuple[list[BatchRecord], list[BatchRecord]]:
    """Take the experiment up in this process (``Store.reopen``): the records of the batches that
    run again and of the succeeded ones it keeps."""
    return batch_records(store.reopen(resumed.experiment_id, engine).batches, plans)


def batch_records(batches: list[BatchRow], plans: list[BatchPlan]) -> tuple[list[BatchRecord], list[BatchRecord]]:
    """The records of the batches to run again (their attempts so far counted: this run's retries
    come on top) and of the succeeded ones, with the results they recorded."""
    again, kept = [], []
    for p, batch in zip(plans, batches, strict=True):
        if batch.state == BatchState.SUCCEEDED:
            kept.append(BatchRecord(p, batch.id, AttemptResult(BatchState.SUCCEEDED, batch.exit_code, None, batch.outputs, cached_from=batch.cached_from),
                                    attempts=batch.attempts))
        else:
            again.append(BatchRecord(p, batch.id, attempts=batch.attempts, earlier_attempts=batch.attempts))
    return again, kept
