"""Every RED file written by others: valid ones validate, invalid ones fail with located messages."""

from __future__ import annotations

import json

import pytest

from tests.conftest import EXAMPLES, REFERENCE_EXAMPLES

# From the reference INDEX.md: full RED files that upstream red-val 9.3.0 accepts (RED 8 after migration).
VALID = [
    "hello_world.red",
    "input_output.red",
    "monorepo-tests-red__minimal.json",
    "monorepo-tests-red__minimal.red",
    "monorepo-tests-red__multi_batch.json",
    "monorepo-tests-red__stdout.json",
    "monorepo-tests-red__stderr.json",
    "monorepo-tests-red__failed.json",
    "monorepo-tests-red__format_error.json",
    "monorepo-tests-red__input_output.json",
    "seed-grepwrap-red8.yml",
    "docs-beginners-guide-grepwrap.yml",
    "docs-cc-agency-api-red9.yml",
    "red-guide-vagrant__red-beginners-guide__grepwrap.red.yml",
]
# Fragments, a CWL job and broken YAML: not RED files.
INVALID = [
    "initial.red",
    "container.red",
    "execution.red",
    "outputs.red",
    "no_outputs.red",
    "for_test_load_and_read.txt",
    "red-guide-vagrant__red-beginners-guide__job.yml",
]
# CWL tools: valid CWL, that faice runs and a RED file holds
CWL = [
    "monorepo-tests-red__minimal.cwl",
    "red-guide-vagrant__red-beginners-guide__grepwrap.cwl.yml",
]


def test_every_reference_example_is_classified(reference_examples):
    present = {p.name for p in reference_examples.iterdir() if p.name != "INDEX.md"}
    assert present == set(VALID) | set(INVALID) | set(CWL)


@pytest.mark.parametrize("name", CWL)
def test_cwl_reference_examples_are_valid_cwl_that_faice_runs_and_embeds(name, reference_examples, faice):
    result = faice("validate", str(reference_examples / name), "--json")
    report = json.loads(result.stdout)
    assert result.returncode == 0 and (report["valid"], report["runs"], report["embeddable"], report["unsupported"]) == (True, True, True, [])


@pytest.mark.parametrize("name", VALID)
def test_valid_reference_examples_validate(name, reference_examples, faice):
    result = faice("validate", str(reference_examples / name))
    assert result.returncode == 0, result.stderr
    assert "valid RED 9" in result.stdout
    if "red8" in name:
        assert "migrated RED 8 to RED 9" in result.stderr


@pytest.mark.parametrize("name", INVALID)
def test_invalid_reference_examples_are_rejected_with_located_messages(name, reference_examples, faice):
    path = reference_examples / name
    result = faice("validate", str(path), "--json")
    assert result.returncode == 2
    report = json.loads(result.stdout)
    assert report["valid"] is False and report["errors"]
    lines = path.read_text().splitlines()
    for error in report["errors"]:
        assert 1 <= error["line"] <= max(len(lines), 1) and error["column"] >= 1
        assert error["message"]
    assert "Traceback" not in result.stderr


def test_ccfaice_access_fragment_is_rejected_for_its_access_block(reference_examples, faice):
    result = faice("validate", str(REFERENCE_EXAMPLES / "execution.red"))
    assert f"{REFERENCE_EXAMPLES / 'execution.red'}:4:5: execution.settings.access: unknown key \"access\"" in result.stderr


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*/red.yml")), ids=lambda p: p.parent.name)
def test_our_examples_validate_without_warnings(path, faice):
    result = faice("validate", str(path))
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr
