"""A CWL CommandLineTool and its jobs made ready for faice's one lifecycle: what ``faice exec
tool.cwl job.yml`` runs.

The tool is validated by cwltool first (every problem at once, located), then refused for each
feature faice exec does not run (located too), then each job is planned
(:mod:`faice.cwl.plan`). What comes out is a :class:`faice.red.prepare.Prepared` as a RED file
gives, with the plans beside it: registering, staging, running, the cache and the store are the
RED file's. The store records ``{"kind": "cwl", "tool": ..., "jobs": [...]}`` where a RED run
records its RED document.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from faice.cwl import RUN_KIND
from faice.cwl.command import ExpressionError, JobError
from faice.cwl.jobs import Job, base_of, read_jobs
from faice.cwl.plan import CwlPlanError, image_of, plan_job, runnable
from faice.errors import InvalidInput, UnsupportedFeature
from faice.red.model import BatchJob, ContainerSettings, Experiment
from faice.red.prepare import Prepared, ValidationFailed
from faice.red.problems import LocatedProblem
from faice.red.secrets import Masker
from faice.red.source import Document, Source
from faice.runner.plan import BatchPlan


class NotRunHere(ValidationFailed, UnsupportedFeature):
    """A valid tool that uses what faice exec does not run: each feature located (exit 33, as cwltool's)."""


class CwlRun(NamedTuple):
    """A tool and its jobs, prepared: the experiment the lifecycle registers, and one plan per job
    (its ``cli.outputs`` are the tool's, in order: what the output object holds)."""

    prepared: Prepared
    plans: list[BatchPlan]
    #: what to tell the user before it runs: cwltool's warnings, the hints faice ignores
    remarks: list[LocatedProblem]


def prepare_cwl(location: str, source: Source, data: dict[str, Any], job_files: list[str], image: str | None = None) -> CwlRun:
    """Validate the tool read from ``location``, read its jobs and plan each one; raises
    :class:`ValidationFailed` for an invalid tool or one faice does not run, :class:`InvalidInput`
    for a job that does not fit it."""
    from faice.cwl.check import check_valid

    report = check_valid(location, source, data)
    refused = report.refusals("run")
    if refused:
        raise NotRunHere(refused)
    process = runnable(data)  # refused above already: the process, checked once for all jobs
    try:
        chosen = image_of(process, image)
    except CwlPlanError as exc:
        raise InvalidInput(f"{source.name}: {exc}") from None
    tool_dir = base_of(location)
    jobs = [job for name in job_files for job in read_jobs(name)] or [Job(f"{source.name} (no job file: the defaults only)", {}, tool_dir)]
    plans: list[BatchPlan] = []
    for index, job in enumerate(jobs):
        try:
            plans.append(plan_job(process, job.values, index, chosen, job.base, tool_dir).plan)
        except CwlPlanError as exc:  # about a value of the job, or an output of the tool
            raise InvalidInput(f"{job.name if str(exc).startswith('input ') and job_files else source.name}: {exc}") from None
        except (JobError, ExpressionError) as exc:
            raise InvalidInput(f"{job.name}: {exc}") from None
    rams = [p.ram_mib for p in plans if p.ram_mib]
    experiment = Experiment(
        cli=plans[0].cli,
        container=ContainerSettings(plans[0].image, ram=max(rams) if rams else None),
        execution=None,
        batches=[BatchJob(p.index, p.values) for p in plans],
    )
    recorded = {"kind": RUN_KIND, "tool": data, "jobs": [job.values for job in jobs] if job_files else []}
    return CwlRun(Prepared(Document(source, recorded), experiment, Masker([])), plans, report.remarks("run"))
