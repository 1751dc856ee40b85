"""Validation: every rule reports a located, readable problem, and valid files pass."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from faice.red.load import check, load
from faice.red.problems import format_path
from faice.red.validate import validate_data
from tests.redfiles import batches, grepwrap, http_file, local_file, write


def errors_of(data: dict[str, Any]) -> list[tuple[str, str]]:
    return [(format_path(p.path), p.message) for p in validate_data(data) if p.severity == "error"]


def warnings_of(data: dict[str, Any]) -> list[tuple[str, str]]:
    return [(format_path(p.path), p.message) for p in validate_data(data) if p.severity == "warning"]


def test_valid_document_has_no_problems():
    assert validate_data(grepwrap()) == []


def test_valid_batches_document_has_no_problems():
    data = batches([{"query_term": "a", "text_file": local_file()}, {"query_term": "b", "text_file": http_file(), "after_context": 3}])
    assert validate_data(data) == []


def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        node = data
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value

    return mutate


def _delete(path: tuple[Any, ...]) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        node = data
        for part in path[:-1]:
            node = node[part]
        del node[path[-1]]

    return mutate


CASES: list[tuple[str, Callable[[dict[str, Any]], None], str, str]] = [
    ("string for int", _set(("inputs", "before_context"), "one"), "inputs.before_context", 'must be an int, not the string "one"'),
    ("bool is not int", _set(("inputs", "before_context"), True), "inputs.before_context", "not the boolean true"),
    ("int for string", _set(("inputs", "query_term"), 5), "inputs.query_term", "must be a string, not the number 5"),
    ("scalar for File", _set(("inputs", "text_file"), "in.txt"), "inputs.text_file", "must be a File object"),
    ("Directory for File", _set(("inputs", "text_file", "class"), "Directory"), "inputs.text_file", 'must have class "File"'),
    ("null input", _set(("inputs", "before_context"), None), "inputs.before_context", "null is not allowed"),
    ("missing required", _delete(("inputs", "query_term")), "inputs", 'required input "query_term" (string) is missing'),
    ("unknown job input", _set(("inputs", "colour"), "red"), "inputs.colour", 'unknown input "colour"'),
    ("bad job key characters", _set(("inputs", "a b"), "x"), "inputs.a b", 'unknown input "a b"'),
    ("unknown job output", _set(("outputs",), {"nope": {"class": "File", "connector": {"command": "red-connector-local", "access": {"path": "x"}}}}), "outputs.nope", 'unknown output "nope"'),
    ("output class mismatch", _set(("outputs",), {"out_file": {"class": "Directory", "connector": {"command": "red-connector-local", "access": {"path": "x"}}}}), "outputs.out_file.class", 'must be "File"'),
    ("absolute glob", _set(("cli", "outputs", "out_file", "outputBinding", "glob"), "/etc/passwd"), "cli.outputs.out_file.outputBinding.glob", "relative"),
    ("escaping glob", _set(("cli", "outputs", "out_file", "outputBinding", "glob"), "../../secret"), "cli.outputs.out_file.outputBinding.glob", "stay inside"),
    ("glob reference to unknown input", _set(("cli", "outputs", "out_file", "outputBinding", "glob"), "$(inputs.nope.basename)"), "cli.outputs.out_file.outputBinding.glob", "does not declare"),
    ("javascript in glob", _set(("cli", "outputs", "out_file", "outputBinding", "glob"), "$(runtime.outdir)/x"), "cli.outputs.out_file.outputBinding.glob", "no JavaScript"),
    ("variable outside access", _set(("inputs", "query_term"), "{{term}}"), "inputs.query_term", "only allowed inside an access or auth block"),
    ("malformed variable", _set(("inputs", "text_file", "connector", "access", "path"), "{{}}"), "inputs.text_file.connector.access.path", "malformed variable"),
    ("protected key outside access", _set(("container", "settings", "_token"), "x"), "container.settings._token", "protected key"),
    ("unknown container engine", _set(("container", "engine"), "podman"), "container.engine", 'unknown container engine "podman"'),
    ("nvidia-docker engine", _set(("container", "engine"), "nvidia-docker"), "container.engine", "replaced by"),
    ("ram too small", _set(("container", "settings", "ram"), 10), "container.settings.ram", "at least 256"),
    ("image without url", _set(("container", "settings", "image"), {}), "container.settings.image", '"url" is required'),
    ("bad image reference", _set(("container", "settings", "image", "url"), "Not An Image!"), "container.settings.image.url", "not a valid image reference"),
    ("unknown execution engine", _set(("execution", "engine"), "slurm"), "execution.engine", 'unknown execution engine "slurm"'),
    ("ccfaice settings", _set(("execution", "settings"), {"access": {"url": "http://x"}}), "execution.settings.access", 'unknown key "access"'),
    ("agency limit", _set(("execution",), {"engine": "ccagency", "settings": {"batchConcurrencyLimit": 0}}), "execution.settings.batchConcurrencyLimit", "at least 1"),
    ("wrong redVersion type", _set(("cli", "cwlVersion"), "v1.2"), "cli.cwlVersion", 'must be "v1.0"'),
    ("cli requirements", _set(("cli", "requirements"), {}), "cli.requirements", 'unknown key "requirements"'),
    ("unknown input type", _set(("cli", "inputs", "query_term", "type"), "str"), "cli.inputs.query_term.type", "must be one of"),
    ("separate without prefix", _set(("cli", "inputs", "query_term", "inputBinding", "separate"), False), "cli.inputs.query_term.inputBinding.separate", "needs a prefix"),
    ("missing inputBinding", _delete(("cli", "inputs", "query_term", "inputBinding")), "cli.inputs.query_term", '"inputBinding" is required'),
    ("absolute stdout", _set(("cli", "stdout"), "/tmp/out"), "cli.stdout", "relative"),
    ("mounted File", _set(("inputs", "text_file", "connector", "mount"), True), "inputs.text_file.connector.mount", "only Directory inputs can be mounted"),
    ("bad checksum", _set(("inputs", "text_file", "checksum"), "md5$abc"), "inputs.text_file.checksum", "sha1$"),
    ("basename with slash", _set(("inputs", "text_file", "basename"), "a/b"), "inputs.text_file.basename", "plain file name"),
    ("http access without url", _set(("inputs", "text_file"), {"class": "File", "connector": {"command": "red-connector-http", "access": {}}}), "inputs.text_file.connector.access", 'red-connector-http: access needs "url"'),
    ("connector without access", _set(("inputs", "text_file", "connector"), {"command": "red-connector-local"}), "inputs.text_file.connector", '"access" is required'),
    ("unknown top-level key", _set(("extra",), 1), "extra", 'unknown key "extra"'),
]


@pytest.mark.parametrize("mutate,path,message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_invalid_documents_are_reported_at_the_right_path(mutate, path, message):
    data = grepwrap()
    mutate(data)
    found = errors_of(data)
    assert any(p == path and message in m for p, m in found), found


def test_http_method_is_checked():
    data = grepwrap()
    data["inputs"]["text_file"]["connector"] = {"command": "red-connector-http", "access": {"url": "http://127.0.0.1/x", "method": "DELETE"}}
    assert ("inputs.text_file.connector.access", 'red-connector-http: access "method" must be GET, PUT or POST') in errors_of(data)


def test_inputs_and_batches_together_are_rejected():
    data = batches([{"query_term": "a", "text_file": local_file()}])
    data["inputs"] = {"query_term": "x"}
    assert ("inputs", "not allowed together with \"batches\": each batch has its own inputs and outputs") in errors_of(data)


def test_empty_batches_are_rejected():
    data = batches([])
    assert ("batches", "must not be empty") in errors_of(data)


def test_required_input_is_checked_in_every_batch():
    data = batches([{"query_term": "a", "text_file": local_file()}, {"text_file": local_file()}, {"query_term": "c", "text_file": local_file()}])
    assert errors_of(data) == [("batches[1].inputs", 'required input "query_term" (string) is missing')]


def test_arrays_are_checked_item_by_item():
    data = grepwrap()
    data["cli"]["inputs"]["files"] = {"type": "File[]?", "inputBinding": {"prefix": "--files"}}
    data["cli"]["inputs"]["numbers"] = {"type": "float[]", "inputBinding": {"position": 3}}
    data["inputs"]["files"] = [local_file("a"), {"class": "Directory", "connector": {"command": "red-connector-local", "access": {"path": "d"}}}]
    data["inputs"]["numbers"] = [1, 2.5, "3"]
    found = errors_of(data)
    assert ("inputs.files[1]", 'must have class "File", not the string "Directory"') in found
    assert ("inputs.numbers[2]", 'must be a float (number), not the string "3"') in found
    data["inputs"]["numbers"] = 4.0
    assert ("inputs.numbers", "must be a list (float[]), not the number 4.0") in errors_of(data)


def test_all_problems_are_reported_at_once():
    data = grepwrap()
    data["inputs"]["before_context"] = "x"
    data["inputs"]["colour"] = 1
    data["container"]["settings"]["ram"] = 1
    data["cli"]["outputs"]["out_file"]["outputBinding"]["glob"] = "/abs"
    assert len(errors_of(data)) == 4


def test_unresolvable_connector_is_a_warning_once_per_command():
    data = batches([{"query_term": str(i), "text_file": {"class": "File", "connector": {"command": "red-connector-nowhere", "access": {}}}} for i in range(5)])
    assert errors_of(data) == []
    warnings = warnings_of(data)
    assert len(warnings) == 1
    assert warnings[0][0] == "batches[0].inputs.text_file.connector.command"
    assert "not installed here" in warnings[0][1]


def test_connector_on_path_is_resolved(tmp_path, monkeypatch):
    program = tmp_path / "red-connector-fake"
    program.write_text("#!/bin/sh\necho 1\n")
    program.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    from faice.connectors import registry

    registry.resolve.cache_clear()
    data = grepwrap()
    data["inputs"]["text_file"]["connector"]["command"] = "red-connector-fake"
    try:
        assert warnings_of(data) == []
    finally:
        registry.resolve.cache_clear()


def test_secret_values_never_appear_in_messages():
    data = grepwrap()
    data["container"]["settings"]["image"]["auth"] = {"username": "me", "password": 12345678}
    data["inputs"]["text_file"] = http_file(auth={"username": "u", "password": "hunter2-secret", "method": "Magic"})
    messages = " ".join(m for _, m in errors_of(data))
    assert "auth" in " ".join(p for p, _ in errors_of(data))
    assert "12345678" not in messages
    assert "hunter2-secret" not in messages


def test_cwl_tool_is_recognised_as_not_red():
    assert errors_of({"cwlVersion": "v1.0", "class": "CommandLineTool", "inputs": {}, "outputs": {}}) == [
        ("", "this is a CWL CommandLineTool, not a RED file: a RED file embeds it under cli: (faice convert cwl goes the other way)")
    ]


def test_problems_are_located_by_line_and_column(tmp_path: Path):
    path = tmp_path / "red.yml"
    path.write_text(
        "redVersion: '9'\n"
        "cli:\n"
        "  cwlVersion: v1.0\n"
        "  class: CommandLineTool\n"
        "  baseCommand: echo\n"
        "  inputs:\n"
        "    n:\n"
        "      type: int\n"
        "      inputBinding: {position: 0}\n"
        "  outputs: {}\n"
        "inputs:\n"
        "  n: three\n"
        "  m: 4\n"
        "container:\n"
        "  engine: docker\n"
        "  settings:\n"
        "    image: {url: 'faice-test-busybox:latest'}\n"
        "    ram: 100\n"
    )
    errors, _ = check(load(str(path)))
    rendered = [str(e) for e in errors]
    assert rendered == [
        f'{path}:12:3: inputs.n: must be an int, not the string "three"',
        f'{path}:13:3: inputs.m: unknown input "m"; the cli declares: n',
        f"{path}:18:5: container.settings.ram: must be at least 256, not 100",
    ]


def test_json_documents_are_located_too(tmp_path: Path):
    data = grepwrap()
    data["inputs"]["before_context"] = "x"
    path = write(tmp_path / "red.json", data, "json")
    errors, _ = check(load(str(path)))
    assert len(errors) == 1
    line = path.read_text().splitlines()[errors[0].line - 1]
    assert '"before_context"' in line


def test_validation_does_not_modify_the_document():
    data = grepwrap()
    data["inputs"]["colour"] = 1
    before = copy.deepcopy(data)
    validate_data(data)
    assert data == before


def test_empty_item_separator_is_a_warning():
    data = grepwrap()
    data["cli"]["inputs"]["words"] = {"type": "string[]?", "inputBinding": {"prefix": "-w", "itemSeparator": ""}}
    assert errors_of(data) == []
    assert warnings_of(data) == [("cli.inputs.words.inputBinding.itemSeparator", "an empty itemSeparator joins the items with nothing between them (cwltool drops them instead)")]


def test_messages_that_say_what_was_meant():
    typo = grepwrap()
    typo["inputs"]["text_file"]["connector"]["command"] = "red-conector-local"
    assert warnings_of(typo) == [("inputs.text_file.connector.command", 'connector "red-conector-local" is not installed here (no faice plugin, not on PATH)'
                                  ' (did you mean "red-connector-local"?); faice exec will refuse to run')]
    for typo, meant in (("red-connector-htp", "red-connector-http"), ("red-connector-shh", "red-connector-ssh"), ("red-connector-xnat", None)):
        data = grepwrap()
        data["inputs"]["text_file"]["connector"]["command"] = typo
        (message,) = [m for _path, m in warnings_of(data)]
        assert (f'(did you mean "{meant}"?)' in message) if meant else ("did you mean" not in message), message
    clas = grepwrap()
    clas["inputs"]["text_file"]["clas"] = clas["inputs"]["text_file"].pop("class")
    assert ("inputs.text_file", 'has no "class" (is "clas" meant to be "class"?); it must have class "File"') in errors_of(clas)
    no_jobs = grepwrap()
    del no_jobs["inputs"]
    assert errors_of(no_jobs) == [("", 'the jobs are missing: "inputs" (and "outputs") for one batch, or "batches" for several')]


@pytest.mark.parametrize("ram", [2**62, 1e30])
def test_ram_is_bounded_where_docker_can_take_it(ram: Any):
    data = grepwrap()
    data["container"]["settings"]["ram"] = ram
    assert any(path == "container.settings.ram" for path, _message in errors_of(data))
