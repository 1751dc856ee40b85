"""The options of a ``faice exec`` run: what the command line leaves out comes from the RED file
and this machine, so that a caller names only what the user chose."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from faice.red.model import Experiment
from faice.runner.batch import RunOptions
from faice.runner.execute import local_jobs, no_mount_notice


def exec_options(experiment: Experiment, *, outdir: Path, jobs: int | None = None, retries: int | None = None,
                 gpu_ids: str | None = None, **chosen: Any) -> tuple[RunOptions, list[str]]:
    """RunOptions with ``outdir`` made absolute, ``jobs`` (default: what this machine takes, see
    ``local_jobs``), ``retries`` (default: the file's, else 0), ``gpu_ids`` (a comma-separated
    list) and the other fields as ``chosen``; and the notices the user should see about them."""
    default_jobs, capped = local_jobs(experiment)
    options = RunOptions(
        outdir=outdir.resolve(),
        jobs=jobs or default_jobs,
        retries=retries if retries is not None else (experiment.retries or 0),
        gpu_ids=[g.strip() for g in gpu_ids.split(",") if g.strip()] if gpu_ids else None,
        **chosen,
    )
    notices = [notice for notice in (None if options.mount else no_mount_notice(experiment), None if jobs else capped) if notice]
    return options, notices


def cache_default() -> bool:
    """Whether runs use the result cache when the command line does not say: ``FAICE_CACHE``."""
    import os

    return os.environ.get("FAICE_CACHE", "").strip().lower() in ("1", "true", "yes", "on")
