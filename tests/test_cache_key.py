"""The cache key of a batch (faice/cache/key.py): what is in it, what is not, and `faice why`'s account of a miss."""

from __future__ import annotations

import re

import pytest

from faice.cache.key import FORMAT, InputContent, batch_key, canonical, differences, key_parts
from faice.red.model import CliOutput


def parts(**change):
    base = {
        "image_id": "sha256:" + "a" * 64,
        "argv": ["grepwrap", "-B", "1", "QU", "/cc/inputs/text_file/in.txt"],
        "environment": {"LANG": "C.UTF-8"},
        "gpus": None,
        "network": None,
        "user": "1000:1000",
        "inputs": [InputContent("text_file", None, "File", "b" * 64, "red-connector-http", {"url": "https://example.org/in.txt", "auth": {"password": "********"}})],
        "outputs": [CliOutput("out_file", "File", False, "out.txt")],
    }
    return key_parts(**{**base, **change})


def test_the_key_is_the_sha256_of_canonical_json_and_stable():
    first = parts()
    assert first["format"] == FORMAT
    assert re.fullmatch(r"[0-9a-f]{64}", batch_key(first))
    assert batch_key(first) == batch_key(parts())
    assert canonical({"b": {"d": 1, "c": [1, "é"]}, "a": None}) == '{"a":null,"b":{"c":[1,"é"],"d":1}}'.encode()
    assert canonical(first).startswith(b'{"argv":["grepwrap"')


def test_the_order_a_file_lists_things_in_does_not_change_the_key():
    inputs = [InputContent("b", None, "File", "1" * 64, "red-connector-local", {"path": "b"}),
              InputContent("a", 1, "File", "2" * 64, "red-connector-local", {"path": "a1"}),
              InputContent("a", 0, "File", "3" * 64, "red-connector-local", {"path": "a0"})]
    outputs = [CliOutput("y", "stdout"), CliOutput("x", "File", glob="x.txt")]
    one = parts(inputs=inputs, outputs=outputs, environment={"A": "1", "B": "2"})
    other = parts(inputs=list(reversed(inputs)), outputs=list(reversed(outputs)), environment={"B": "2", "A": "1"})
    assert batch_key(one) == batch_key(other)
    assert [(i["key"], i["index"]) for i in one["inputs"]] == [("a", 0), ("a", 1), ("b", None)]


@pytest.mark.parametrize(("change", "said"), [
    ({"image_id": "sha256:" + "c" * 64}, "image: "),
    ({"argv": ["grepwrap", "-B", "2"]}, "argv: "),
    ({"argv": ["grepwrap", "-B", "2", "QU", "/cc/inputs/text_file/in.txt"]}, 'argv[2]: "1" -> "2"'),
    ({"environment": {"LANG": "C"}}, "environment LANG changed"),
    ({"environment": {"LANG": "C.UTF-8", "TZ": "UTC"}}, "environment TZ added"),
    ({"gpus": {"count": 1}}, "gpus: "),
    ({"network": "none"}, "network: "),
    ({"user": "0:0"}, "user: "),
    ({"inputs": [InputContent("text_file", None, "File", "d" * 64, "red-connector-http", {"url": "https://example.org/in.txt", "auth": {"password": "********"}})]},
     "input text_file: content "),
    ({"inputs": [InputContent("text_file", None, "File", "b" * 64, "red-connector-http", {"url": "https://example.org/other.txt", "auth": {"password": "********"}})]},
     "input text_file: access url changed"),
    ({"streams": {"stdout": "out.txt"}}, "streams: "),
    ({"inputs": []}, "input text_file: removed"),
    ({"outputs": [CliOutput("out_file", "File", False, "*.txt")]}, "outputs: "),
])
def test_every_part_changes_the_key_and_why_names_it(change, said):
    old, new = parts(), parts(**change)
    assert batch_key(old) != batch_key(new)
    found = differences(old, new)
    assert len(found) == 1 and found[0].startswith(said), found


def test_no_differences_between_equal_parts_and_long_values_are_shortened():
    assert differences(parts(), parts()) == []
    found = differences(parts(argv=["x"] * 40), parts(argv=["y"] * 41))
    assert len(found) == 1 and len(found[0]) < 200 and "..." in found[0]
    found = differences(parts(argv=["x"] * 40 + ["a" * 200 + "1"]), parts(argv=["x"] * 40 + ["a" * 200 + "2"]))
    assert found == [f'argv[40]: "{"a" * 76}... -> "{"a" * 76}...'], found  # the position tells where, even when the values are cut


def test_what_is_not_a_part_cannot_reach_the_key():
    """Memory and time limits, ids and the image's tag have no place in the parts at all."""
    with pytest.raises(TypeError):
        parts(ram=512)  # type: ignore[call-arg]
    assert set(parts()) == {"format", "image", "argv", "environment", "gpus", "network", "user", "inputs", "outputs", "streams"}
