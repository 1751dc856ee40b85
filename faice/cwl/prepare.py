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

import os
from pathlib import Path
from typing import Any, NamedTuple

from faice.cwl import RUN_KIND
from faice.cwl.command import ExpressionError, JobError
from faice.cwl.plan import CwlPlanError, plan_jobs
from faice.errors import InvalidInput, LoadError
from faice.red.model import BatchJob, ContainerSettings, Experiment
from faice.red.prepare import Prepared, ValidationFailed
from faice.red.secrets import Masker
from faice.red.source import Document, Source, is_url, read_source
from faice.runner.plan import BatchPlan


class CwlRun(NamedTuple):
    """A tool and its jobs, prepared: the experiment the lifecycle registers, one plan per job,
    and the tool's outputs for the output object."""

    prepared: Prepared
    plans: list[BatchPlan]
    tool: dict[str, Any]


class Job(NamedTuple):
    """One job object, and where its relative paths are."""

    name: str  # the job file, and the job's index in it when the file holds a list
    values: dict[str, Any]
    base_dir: Path


def prepare_cwl(location: str, source: Source, data: dict[str, Any], job_files: list[str], image: str | None = None) -> CwlRun:
    """Validate the tool read from ``location``, read its jobs and plan each one; raises
    :class:`ValidationFailed` for an invalid tool or one faice does not run, :class:`InvalidInput`
    for a job that does not fit it."""
    from faice.cwl.check import check

    report = check(location, source, data)
    if report.errors:
        raise ValidationFailed(report.errors)
    refused = [n.problem._replace(severity="error") for n in report.notices if n.level == "run"]
    if refused:
        raise ValidationFailed(refused)
    here = Path.cwd()
    tool_dir = here if location == "-" or is_url(location) else Path(os.path.abspath(location)).parent
    jobs = [job for name in job_files for job in read_jobs(name)] or [Job(f"{source.name} (no job file: the defaults only)", {}, here)]
    plans: list[BatchPlan] = []
    for job in jobs:
        try:
            planned = plan_jobs(data, [job.values], job.base_dir, image=image, tool_dir=tool_dir)[0]
        except CwlPlanError as exc:  # about a value of the job, or the tool itself (no image)
            raise InvalidInput(f"{job.name if str(exc).startswith('input ') and job_files else source.name}: {exc}") from None
        except (JobError, ExpressionError) as exc:
            raise InvalidInput(f"{job.name}: {exc}") from None
        planned.plan.index = len(plans)
        plans.append(planned.plan)
    rams = [p.ram_mib for p in plans if p.ram_mib]
    experiment = Experiment(
        cli=plans[0].cli,
        container=ContainerSettings(plans[0].image, ram=max(rams) if rams else None),
        execution=None,
        batches=[BatchJob(p.index, p.values) for p in plans],
    )
    recorded = {"kind": RUN_KIND, "tool": data, "jobs": [job.values for job in jobs] if job_files else []}
    return CwlRun(Prepared(Document(source, recorded), experiment, Masker([])), plans, data)


def read_jobs(location: str) -> list[Job]:
    """The job objects of a job file: a mapping is one job, a list of mappings one job each.
    ``cwl:tool`` and other namespaced keys are the runner's business, not inputs."""
    source, data = read_source(location)
    base = Path.cwd() if location == "-" or is_url(location) else Path(os.path.abspath(location)).parent
    if isinstance(data, dict):
        items, names = [data], [source.name]
    elif isinstance(data, list) and data:
        items, names = data, [f"{source.name}: job {i}" for i in range(len(data))]
    else:
        raise LoadError(source.name, "a job file holds a mapping of input ids to values, or a list of them", 1, 1)
    jobs = []
    for item, name in zip(items, names, strict=True):
        if not isinstance(item, dict):
            raise LoadError(source.name, f"{name.split(': ', 1)[-1]} is not a mapping of input ids to values", 1, 1)
        jobs.append(Job(name, {k: v for k, v in item.items() if ":" not in k}, base))
    return jobs
