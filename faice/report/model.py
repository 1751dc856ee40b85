"""What a report shows, gathered from the store once: plain data for the pure renderers."""

from __future__ import annotations

from dataclasses import dataclass

from faice.errors import InvalidInput
from faice.state.states import FINAL_STATES
from faice.state.store import Store, UnknownId


@dataclass(frozen=True)
class BatchFacts:
    """One batch as recorded: its end state and result, its times (seconds since the epoch; None
    where it has not got that far) and what its container used (None: not measured)."""

    index: int
    batch_id: str
    state: str
    attempts: int
    exit_code: int | None
    error: str | None
    submitted: float
    #: when it first began to run (its first attempt), and when its last attempt began
    first_start: float | None
    start: float | None
    end: float | None
    peak_memory: int | None
    cpu_seconds: float | None
    cached: bool = False

    @property
    def realtime(self) -> float | None:
        """Its last attempt's time from start to end: staging, the container and sending outputs."""
        return None if self.start is None or self.end is None else max(0.0, self.end - self.start)


@dataclass(frozen=True)
class ExperimentFacts:
    """An experiment and its batches, in index order."""

    experiment_id: str
    source: str
    image: str
    engine: str
    username: str | None
    created_at: float
    batches: list[BatchFacts]

    def counts(self) -> dict[str, int]:
        """Batches per state, every state named (0 where none)."""
        from faice.state.states import STATES

        counted = dict.fromkeys(map(str, STATES), 0)
        for batch in self.batches:
            counted[batch.state] = counted.get(batch.state, 0) + 1
        return counted

    def running(self) -> list[BatchFacts]:
        """The batches whose last attempt began and has not ended."""
        return [b for b in self.batches if b.start is not None and b.end is None]

    def span(self, now: float | None = None) -> tuple[float, float] | None:
        """From the first start to the last end of the batches whose last attempt began (a batch
        cancelled before it began has no place on the timeline, so none in the wall time either);
        None before any began. A batch still running ends at ``now``, the report's time (without
        it, at the latest start recorded) rather than at whatever event happened to come last."""
        ran = [b for b in self.batches if b.start is not None]
        if not ran:
            return None
        first = min(b.first_start if b.first_start is not None else b.start or 0.0 for b in ran)
        ends = [b.end for b in ran if b.end is not None]
        running = [b.start or 0.0 for b in ran if b.end is None]
        if running:
            ends.append(max(running) if now is None else max(now, *running))
        return first, max(*ends, first)

    def cpu_seconds(self) -> float | None:
        measured = [b.cpu_seconds for b in self.batches if b.cpu_seconds is not None]
        return sum(measured) if measured else None

    def peak(self) -> BatchFacts | None:
        """The batch whose container used the most memory at once."""
        measured = [b for b in self.batches if b.peak_memory is not None]
        return max(measured, key=lambda b: b.peak_memory or 0) if measured else None


def gather(store: Store, given_id: str) -> ExperimentFacts:
    """The experiment ``given_id`` (a unique start will do) as a report shows it."""
    try:  # an experiment's first 8 characters are its batches' too: an experiment is what is meant
        kind, experiment_id = store.resolve_id(given_id, kinds=("experiment",))
    except UnknownId:
        kind, experiment_id = store.resolve_id(given_id)
    if kind != "experiment":
        batch = store.batch(experiment_id)
        named = f" (faice report {batch.experiment_id})" if batch else ""
        raise InvalidInput(f"{experiment_id} is a batch; faice report reports whole experiments{named}")
    record = store.experiment(experiment_id, red=False)
    if record is None:  # removed (faice rm) since its id was resolved
        raise UnknownId(f'no experiment with id "{experiment_id}" in {store.path}')
    times = store.batch_times(experiment_id)
    batches = []
    for row in store.batches(experiment_id):
        when = times.get(row.id)
        ended = when.end if when is not None and row.state in FINAL_STATES else None
        batches.append(BatchFacts(row.index, row.id, str(row.state), row.attempts, row.exit_code, row.error, row.created_at,
                                  when.first_start if when else None, when.start if when else None, ended,
                                  row.peak_memory, row.cpu_seconds, row.cached_from is not None))
    return ExperimentFacts(experiment_id, record["source"], record["image"], record.get("container_engine") or "docker",
                           record.get("username"), record["created_at"], batches)
