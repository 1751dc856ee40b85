"""Loading: YAML 1.2 scalars, JSON, stdin, URLs, RED 8 migration, and clean errors for junk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from faice.errors import LoadError
from faice.red.load import load
from faice.red.yamlload import YamlError, load_yaml, locate
from tests.redfiles import grepwrap, write


def test_yaml_scalars_follow_yaml_1_2_core_schema():
    data = load_yaml("a: [1, -2, 0o17, 0x1f, 2.5, 1e5, .inf, true, True, yes, on, null, ~, '', '1', !!str 5, !!float 3, 010]\n")
    assert data["a"] == [1, -2, 15, 31, 2.5, 100000.0, float("inf"), True, True, "yes", "on", None, None, "", "1", "5", 3.0, 10]


def test_yaml_1_2_that_libyaml_refuses_is_read_as_cwltool_reads_it():
    """A colon inside a flow collection's plain scalar: YAML 1.2 (ruamel, cwltool) reads it, libyaml's C parser does not."""
    text = "image: {url: 'x'}\nrequirements: {DockerRequirement: {dockerPull: busybox:latest}}\nlist: [a:b, 2]\nafter: &x {k: v}\nagain: *x\n"
    assert load_yaml(text) == {"image": {"url": "x"}, "requirements": {"DockerRequirement": {"dockerPull": "busybox:latest"}},
                               "list": ["a:b", 2], "after": {"k": "v"}, "again": {"k": "v"}}
    assert locate(text, [("list", 1)])[("list", 1)].line == 3
    with pytest.raises(YamlError) as failed:
        load_yaml("a: {b: c:d\nx: [1,\n")  # wrong for both parsers: libyaml's place is kept
    assert failed.value.line >= 2


def test_yaml_anchors_aliases_and_merge_keys():
    data = load_yaml("base: &b {x: 1, y: 2}\nderived:\n  <<: *b\n  y: 3\nlist: [*b]\n")
    assert data == {"base": {"x": 1, "y": 2}, "derived": {"y": 3, "x": 1}, "list": [{"x": 1, "y": 2}]}


@pytest.mark.parametrize(
    "text,line,column,message",
    [
        ("a: 1\nb: 2\na: 3\n", 3, 1, "duplicate key 'a'"),
        ("a: [1, 2\n", 2, 1, "not valid YAML"),
        ("a: 1\n---\nb: 2\n", 2, 1, "more than one YAML document"),
        ("a: *missing\n", 1, 4, "unknown alias"),
        ("a: !custom 1\n", 1, 4, "unsupported YAML tag"),
        ("a: !!int x\n", 1, 4, "cannot read 'x' as !!int"),
        ("{[1]: 2}\n", 1, 4, "mapping keys must be scalars"),
    ],
)
def test_yaml_errors_are_located(text, line, column, message):
    with pytest.raises(YamlError) as info:
        load_yaml(text)
    assert (info.value.line, info.value.column) == (line, column)
    assert message in info.value.message


def test_locate_finds_keys_values_and_nearest_ancestors():
    text = "a:\n  b:\n    - x\n    - {c: 1}\nd: 2\n"
    found = locate(text, [("a", "b", 1, "c"), ("a", "b", 0), ("d",), ("a", "missing", "deep")])
    assert (found[("a", "b", 1, "c")].line, found[("a", "b", 1, "c")].column) == (4, 8)
    assert (found[("a", "b", 0)].line, found[("a", "b", 0)].column) == (3, 7)
    assert (found[("d",)].line, found[("d",)].column) == (5, 1)
    assert (found[("a", "missing", "deep")].line, found[("a", "missing", "deep")].column) == (1, 1)


def test_json_and_yaml_give_the_same_document(tmp_path: Path):
    data = grepwrap()
    a = load(str(write(tmp_path / "a.yml", data, "yaml")))
    b = load(str(write(tmp_path / "b.json", data, "json")))
    assert a.data == b.data == data
    assert (a.source.format, b.source.format) == ("yaml", "json")


def test_json_duplicate_keys_are_errors(tmp_path: Path):
    path = tmp_path / "dup.json"
    path.write_text('{\n  "redVersion": "9",\n  "redVersion": "9"\n}\n')
    with pytest.raises(LoadError) as info:
        load(str(path))
    assert str(info.value) == f"{path}:3:3: duplicate key 'redVersion'"


@pytest.mark.parametrize(
    "content,message",
    [
        (b"", "is empty"),
        (b"  \n\n", "is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is a binary file"),
        (b"\xff\xfe\xfd junk", "is not UTF-8 text"),
        (b"- a\n- b\n", "but it is a list"),
        (b"just a string\n", "but it is a single value"),
        (b"redVersion: '7'\n", 'redVersion: "7" is not supported'),
        (b"redVersion: 9\n", '(quote it: redVersion: "9")'),
        (b"{\"a\": [1,}\n", "not valid JSON"),
    ],
)
def test_junk_gives_one_clean_error(tmp_path: Path, content: bytes, message: str):
    path = tmp_path / "junk.yml"
    path.write_bytes(content)
    with pytest.raises(LoadError) as info:
        load(str(path))
    assert message in str(info.value)
    assert str(info.value).startswith(str(path))


def test_missing_file_and_directory(tmp_path: Path):
    with pytest.raises(LoadError, match="no such file"):
        load(str(tmp_path / "nope.yml"))
    with pytest.raises(LoadError, match="is a directory"):
        load(str(tmp_path))


def test_red8_is_migrated_with_one_notice(tmp_path: Path):
    data = grepwrap(redVersion="8", execution={"engine": "ccagency", "settings": {"retryIfFailed": True, "batchConcurrencyLimit": 8}})
    doc = load(str(write(tmp_path / "red8.yml", data)))
    assert doc.data["redVersion"] == "9"
    assert doc.data["execution"]["settings"] == {"batchConcurrencyLimit": 8}
    assert doc.retries == 1
    assert len(doc.notices) == 1 and "retryIfFailed: true → 1 retry per batch" in doc.notices[0]


def test_red8_without_retry_keeps_no_retry_count(tmp_path: Path):
    doc = load(str(write(tmp_path / "red8.yml", grepwrap(redVersion="8"))))
    assert doc.retries is None and doc.data["redVersion"] == "9"


def test_load_from_url_and_http_errors(http_server):
    base, root = http_server.url, http_server.root
    (root / "red.json").write_text(json.dumps(grepwrap()))
    doc = load(f"{base}/red.json")
    assert doc.data == grepwrap() and doc.source.name == f"{base}/red.json"
    with pytest.raises(LoadError, match="HTTP 404"):
        load(f"{base}/missing.yml")


def test_unreachable_url_is_a_clean_error():
    with pytest.raises(LoadError, match="cannot fetch"):
        load("http://127.0.0.1:9/red.yml")


def test_load_from_stdin(faice):
    result = faice("validate", "-", input=json.dumps(grepwrap()))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("<stdin>: valid RED 9")


@pytest.mark.parametrize("text", ["[" * 100_000, '{"a":' * 5000, "doc: " + "[" * 3000 + "]" * 3000], ids=["json-list", "json-map", "yaml"])
def test_a_document_nested_too_deeply_is_an_error_not_a_crash(tmp_path: Path, text: str):
    from tests.conftest import run_faice

    path = tmp_path / "deep.yml"
    path.write_text(text)
    result = run_faice("validate", str(path))
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().endswith("nested too deeply to be a RED document")
    assert "Traceback" not in result.stderr


def _alias_bomb(levels: int, indent: str = "") -> str:
    """Nine times as many nodes per line: 9**levels strings from ``levels`` lines (a "billion laughs")."""
    lines = [f'{indent}l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"{indent}l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("inside_a_red_file", [False, True], ids=["bare", "x-key of a valid RED file"])
def test_an_alias_bomb_is_refused_at_once_with_its_location(tmp_path: Path, faice, inside_a_red_file: bool):
    import time

    text = _alias_bomb(9)
    if inside_a_red_file:
        text = write(tmp_path / "base.yml", grepwrap()).read_text() + "x-bomb:\n" + _alias_bomb(9, "  ")
    path = tmp_path / "bomb.yml"
    path.write_text(text)
    started = time.monotonic()
    for command in (["validate", str(path)], ["convert", "format", str(path), "--format", "json"]):
        result = faice(*command)
        assert result.returncode == 2, result.stdout[:300] + result.stderr
        line = 6 + (text.count("\n") - 9 if inside_a_red_file else 0)
        assert result.stderr.startswith(f"{path}:{line}:"), result.stderr
        assert "aliases expand the document to more than" in result.stderr and "alias bomb" in result.stderr
        assert len(result.stdout) < 1000
    assert time.monotonic() - started < 10  # two processes; it hung for minutes before


def test_an_alias_to_its_own_container_is_refused():
    with pytest.raises(YamlError, match=r"alias \*a refers to a collection that contains it") as info:
        load_yaml("x: &a [1, *a]\n")
    assert (info.value.line, info.value.column) == (1, 11)


def test_many_aliases_to_a_shared_block_are_fine():
    """Batch files repeat one access block by alias thousands of times: that is not a bomb."""
    batches = "".join(f"  - {{inputs: {{n: {i}, f: {{class: File, connector: {{command: c, access: *access}}}}}}}}\n" for i in range(20_000))
    data = load_yaml("access: &access {url: 'http://example.org/x', auth: {username: u, password: p}, method: GET}\nbatches:\n" + batches)
    assert len(data["batches"]) == 20_000 and data["batches"][-1]["inputs"]["f"]["connector"]["access"]["auth"]["username"] == "u"


@pytest.mark.parametrize("text,line,column,message", [
    ('{"a": 1,\n "b": 9223372036854775808}', 2, 7, "a number outside the 64-bit integer range"),
    ('{"a": ' + "9" * 5001 + "}", 1, 7, "a number outside the 64-bit integer range"),
    ("a: 1\nb: -9223372036854775809\n", 2, 4, "a number outside the 64-bit integer range"),
    ("a: " + "9" * 5001 + "\n", 1, 4, "a number outside the 64-bit integer range"),
    ('{"a": "x",\n  "b": "ok \\ud800"}', 2, 12, "a lone UTF-16 surrogate \\ud800"),
    ('{"a": "\\udc00 alone"}', 1, 8, "a lone UTF-16 surrogate \\udc00"),
    ('{"a": "\\\\ud800\\udc00"}', 1, 15, "a lone UTF-16 surrogate \\udc00"),  # an escaped backslash, the text ud800, a lone \udc00
], ids=["json-2**63", "json-5001-digits", "yaml-below-int64", "yaml-5001-digits", "json-lone-high", "json-lone-low", "json-after-an-escaped-backslash"])
def test_numbers_beyond_64_bits_and_lone_surrogates_are_located_errors(tmp_path: Path, text: str, line: int, column: int, message: str):
    path = tmp_path / "doc.yml"
    path.write_text(text)
    with pytest.raises(LoadError) as info:
        load(str(path))
    assert (info.value.line, info.value.column) == (line, column) and message in info.value.message, info.value


def test_the_largest_integers_pairs_of_surrogates_and_escaped_backslashes_load(tmp_path: Path):
    path = tmp_path / "doc.json"
    path.write_text('{"redVersion": "9", "max": 9223372036854775807, "min": -9223372036854775808, "emoji": "\\ud83d\\ude00", "text": "\\\\ud800"}')
    from faice.red.source import read_source

    _source, data = read_source(str(path))
    assert data == {"redVersion": "9", "max": 2**63 - 1, "min": -(2**63), "emoji": "\U0001F600", "text": "\\ud800"}
