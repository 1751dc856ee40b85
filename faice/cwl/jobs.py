"""CWL job files as ``faice exec`` and ``faice convert red`` read them: a mapping is one job, a
list of mappings one job each; relative locations are relative to the job file (its folder, or
its URL), a tool's default Files to the tool's.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

from faice.errors import LoadError
from faice.red.source import is_url, local_location, read_source


class Job(NamedTuple):
    """One job object, its name in messages, and where its relative locations are."""

    name: str  # the job file, and the job's number in it when the file holds a list
    values: dict[str, Any]
    base: str  # a directory, or an http(s) URL ending in /


def base_of(location: str) -> str:
    """Where a document's relative locations are: its URL's folder, its folder, or here for stdin."""
    if location == "-":
        return os.getcwd()
    if is_url(location):
        return location.rsplit("/", 1)[0] + "/"
    return os.path.dirname(os.path.abspath(os.path.expanduser(location)))


def read_jobs(location: str) -> list[Job]:
    """The job objects of a job file. ``cwl:tool`` and other namespaced keys are the runner's
    business, not inputs: left out."""
    location = local_location(location)  # a file:// URI, as cwltest gives it
    source, data = read_source(location)
    base = base_of(location)
    if isinstance(data, dict) or data is None:
        items, names = [data or {}], [source.name]
    elif isinstance(data, list) and data:
        items, names = data, [f"{source.name}: job {i + 1}" for i in range(len(data))]
    else:
        raise LoadError(source.name, "a job file holds a mapping of input ids to values, or a list of them", 1, 1)
    jobs = []
    for item, name in zip(items, names, strict=True):
        if not isinstance(item, dict):
            raise LoadError(source.name, f"{name.split(': ', 1)[-1]} is not a mapping of input ids to values", 1, 1)
        jobs.append(Job(name, {str(k): v for k, v in item.items() if ":" not in str(k)}, base))
    return jobs
