"""The two schema engines agree: the fast gate never calls valid what jsonschema calls invalid."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import jsonschema
import pytest

from faice.red.schema import SCHEMA_NAMES, is_valid, load_schema, schema_problems
from tests.redfiles import batches, grepwrap, http_file, local_file


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_published_schemas_are_valid_draft7(name):
    jsonschema.Draft7Validator.check_schema(load_schema(name))


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, prefix + (i,))
    return out


REPLACEMENTS = [None, 0, -1, 1.5, True, "", "x", [], {}, ["x"], {"class": "File"}, {"class": "Directory", "connector": {"command": "c", "access": {}}}]


def _mutations(seed: int, count: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    bases = [grepwrap(), batches([{"query_term": "a", "text_file": local_file()}, {"query_term": "b", "text_file": http_file()}])]
    out = []
    for _ in range(count):
        data = copy.deepcopy(rng.choice(bases))
        for _ in range(rng.randint(1, 3)):
            path = rng.choice(_paths(data)[1:])
            parent = data
            for part in path[:-1]:
                parent = parent[part]
            action = rng.random()
            if action < 0.25 and isinstance(parent, dict):
                del parent[path[-1]]
            elif action < 0.35 and isinstance(parent, dict):
                parent[f"extra{rng.randint(0, 9)}"] = rng.choice(REPLACEMENTS)
            else:
                parent[path[-1]] = copy.deepcopy(rng.choice(REPLACEMENTS))
        out.append(data)
    return out


def test_fast_gate_and_jsonschema_agree_on_400_mutated_documents():
    validator = jsonschema.Draft7Validator(load_schema("red"))
    disagreements = []
    for data in _mutations(seed=2026, count=400):
        reference = validator.is_valid(data)
        if is_valid("red", data) != reference:
            disagreements.append(json.dumps(data)[:300])
        if not reference:
            assert schema_problems("red", data), "an invalid document must yield at least one problem"
    assert disagreements == []


def test_builtin_connector_table_matches_the_registered_entry_points():
    from importlib.metadata import distribution

    from faice.connectors.registry import BUILTINS, GROUP

    registered = {ep.name: ep.value for ep in distribution("faice").entry_points if ep.group == GROUP}
    assert registered == BUILTINS
