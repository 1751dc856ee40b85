"""The command line of a batch: one CWL v1.0 rule per test, each with the exact argv expected.

The rules are in /work/shared/reference/command-line.md; tests/test_cmdline_cwltool.py checks the
same builder against cwltool on generated cases.
"""

from __future__ import annotations

from typing import Any

import pytest

from faice.red.cmdline import build_argv, render
from faice.red.model import Cli

UNSET = object()


def inp(type_: str, **binding: Any) -> dict[str, Any]:
    return {"type": type_, "inputBinding": binding}


def argv(inputs: dict[str, Any], values: dict[str, Any], base: Any = "tool") -> list[str]:
    cli: dict[str, Any] = {"cwlVersion": "v1.0", "class": "CommandLineTool", "inputs": inputs, "outputs": {}}
    if base is not UNSET:
        cli["baseCommand"] = base
    return build_argv(Cli.from_data(cli), values)


# baseCommand


def test_base_command_string_is_one_element_even_with_spaces():
    assert argv({"a": inp("string")}, {"a": "x"}, base="my tool") == ["my tool", "x"]


def test_base_command_list_is_kept_as_given():
    assert argv({"a": inp("string")}, {"a": "x"}, base=["python3", "-m", "mod"]) == ["python3", "-m", "mod", "x"]


@pytest.mark.parametrize("base", [None, UNSET, []], ids=["null", "absent", "empty-list"])
def test_without_base_command_the_first_input_is_the_executable(base: Any):
    assert argv({"a": inp("string")}, {"a": "/bin/echo"}, base=base) == ["/bin/echo"]


# sorting


def test_inputs_sort_by_position_then_name_not_document_order():
    inputs = {
        "b": inp("string", position=1),
        "a": inp("string", position=1),
        "d": inp("string", position=0),
        "c": inp("string"),  # no position: 0
        "z": inp("string", prefix="-z", position=2),
        "y": inp("string", prefix="-y"),
    }
    values = {k: k.upper() for k in inputs}
    assert argv(inputs, values) == ["tool", "C", "D", "-y", "Y", "A", "B", "-z", "Z"]


def test_positions_compare_as_numbers():
    inputs = {"a": inp("string", position=10), "b": inp("string", position=2)}
    assert argv(inputs, {"a": "ten", "b": "two"}) == ["tool", "two", "ten"]


def test_names_compare_as_strings_by_code_point():
    inputs = {k: inp("string") for k in ("a2", "a10", "a", "B", "_u", "a-b", "1st")}
    assert argv(inputs, {k: k for k in inputs}) == ["tool", "1st", "B", "_u", "a", "a-b", "a10", "a2"]


# prefix and separate


def test_prefix_and_value_are_two_arguments_by_default():
    assert argv({"n": inp("int", prefix="-n")}, {"n": 5}) == ["tool", "-n", "5"]


def test_separate_true_is_the_default():
    assert argv({"n": inp("int", prefix="-n", separate=True)}, {"n": 5}) == ["tool", "-n", "5"]


def test_separate_false_joins_prefix_and_value():
    assert argv({"z": inp("float", prefix="-z=", separate=False)}, {"z": 10.5}) == ["tool", "-z=10.5"]
    assert argv({"o": inp("string", prefix="--out", separate=False)}, {"o": "x"}) == ["tool", "--outx"]


# booleans


def test_boolean_true_with_prefix_is_the_prefix_alone():
    assert argv({"v": inp("boolean", prefix="--verbose")}, {"v": True}) == ["tool", "--verbose"]


def test_boolean_true_with_prefix_and_separate_false_is_still_the_prefix_alone():
    assert argv({"v": inp("boolean", prefix="-v", separate=False)}, {"v": True}) == ["tool", "-v"]


def test_boolean_false_with_prefix_contributes_nothing():
    assert argv({"v": inp("boolean", prefix="--verbose")}, {"v": False}) == ["tool"]


@pytest.mark.parametrize("value", [True, False])
def test_boolean_without_prefix_contributes_nothing(value: bool):
    assert argv({"v": inp("boolean", position=1)}, {"v": value}) == ["tool"]


# arrays


def test_array_without_item_separator_prefix_once_then_each_item():
    assert argv({"f": inp("string[]", prefix="-f")}, {"f": ["a", "b c"]}) == ["tool", "-f", "a", "b c"]


def test_array_without_item_separator_and_without_prefix_is_the_items():
    assert argv({"n": inp("int[]")}, {"n": [1, -2, 3]}) == ["tool", "1", "-2", "3"]


def test_array_separate_false_does_not_join_prefix_to_the_items():
    assert argv({"f": inp("int[]", prefix="-f", separate=False)}, {"f": [1, 2]}) == ["tool", "-f", "1", "2"]


def test_array_with_item_separator_is_one_argument_after_the_prefix():
    assert argv({"f": inp("int[]", prefix="-f", itemSeparator=",")}, {"f": [1, 2, 3]}) == ["tool", "-f", "1,2,3"]


def test_array_with_item_separator_and_separate_false_is_one_argument():
    inputs = {"f": inp("string[]", prefix="--list=", separate=False, itemSeparator=";")}
    assert argv(inputs, {"f": ["a", "b"]}) == ["tool", "--list=a;b"]


def test_array_with_space_item_separator_and_no_prefix_stays_one_argument():
    assert argv({"f": inp("string[]", itemSeparator=" ")}, {"f": ["a", "b"]}) == ["tool", "a b"]


@pytest.mark.parametrize(
    "binding", [{"prefix": "-f"}, {"prefix": "-f", "itemSeparator": ","}, {"prefix": "-f", "separate": False}, {}]
)
def test_empty_array_contributes_nothing_not_even_the_prefix(binding: dict[str, Any]):
    assert argv({"f": inp("string[]", **binding)}, {"f": []}) == ["tool"]


def test_boolean_array_without_item_separator_is_only_the_prefix():
    assert argv({"b": inp("boolean[]", prefix="-b")}, {"b": [True, False]}) == ["tool", "-b"]


def test_boolean_array_without_item_separator_and_without_prefix_contributes_nothing():
    assert argv({"b": inp("boolean[]", position=1)}, {"b": [True, True]}) == ["tool"]


def test_boolean_array_with_item_separator_joins_true_and_false():
    assert argv({"b": inp("boolean[]", prefix="-b", itemSeparator=",")}, {"b": [True, False]}) == [
        "tool",
        "-b",
        "True,False",
    ]


def test_item_separator_on_a_scalar_has_no_effect():
    assert argv({"n": inp("int", prefix="-n", itemSeparator=",")}, {"n": 3}) == ["tool", "-n", "3"]


# missing optionals


@pytest.mark.parametrize("type_", ["string?", "int[]?", "File?", "boolean?"])
def test_missing_optional_contributes_nothing(type_: str):
    inputs = {"o": inp(type_, prefix="-o"), "r": inp("string", position=1)}
    assert argv(inputs, {"r": "x"}) == ["tool", "x"]


def test_null_optional_contributes_nothing():
    assert argv({"o": inp("string?", prefix="-o")}, {"o": None}) == ["tool"]


# scalar rendering


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.00001, "0.00001"),
        (1e20, "100000000000000000000"),
        (1e21, "1000000000000000000000"),
        (1e-7, "0.0000001"),
        (1.5, "1.5"),
        (2.0, "2.0"),
        (-0.0, "-0.0"),
        (-2.5e-05, "-0.000025"),
        (123456789.123, "123456789.123"),
        # cwltool formats from ruamel's round-trip text, which cuts (not rounds) an exponent-form mantissa
        (7.200000000000001e-09, "0.000000007200000000000000"),
    ],
)
def test_floats_render_like_cwltool_never_in_exponent_form(value: float, text: str):
    assert argv({"x": inp("double", prefix="-x")}, {"x": value}) == ["tool", "-x", text]


def test_ints_render_as_decimal_including_negative_and_int_for_float():
    inputs = {"a": inp("int", position=1), "b": inp("long", position=2), "c": inp("float", position=3)}
    assert argv(inputs, {"a": -3, "b": 2**40, "c": 3}) == ["tool", "-3", "1099511627776", "3"]


def test_string_with_spaces_stays_one_argument():
    assert argv({"s": inp("string", prefix="--name")}, {"s": "two words"}) == ["tool", "--name", "two words"]
    assert argv({"s": inp("string", prefix="--name=", separate=False)}, {"s": "two words"}) == [
        "tool",
        "--name=two words",
    ]


def test_empty_string_is_an_empty_argument():
    assert argv({"s": inp("string", prefix="-s")}, {"s": ""}) == ["tool", "-s", ""]


# File and Directory


def test_file_and_directory_render_as_their_path():
    inputs = {"f": inp("File", prefix="-i"), "d": inp("Directory", position=1)}
    values = {
        "f": {"class": "File", "path": "/cc/inputs/f/data.csv", "location": "ignored"},
        "d": {"class": "Directory", "path": "/cc/inputs/d/ref"},
    }
    assert argv(inputs, values) == ["tool", "-i", "/cc/inputs/f/data.csv", "/cc/inputs/d/ref"]


def test_file_array_with_item_separator_joins_the_paths():
    values = {"f": [{"class": "File", "path": "/cc/a.txt"}, {"class": "File", "path": "/cc/b.txt"}]}
    assert argv({"f": inp("File[]", prefix="--files=", separate=False, itemSeparator=",")}, values) == [
        "tool",
        "--files=/cc/a.txt,/cc/b.txt",
    ]


def test_file_without_path_is_an_error():
    with pytest.raises(ValueError, match="File value without a path"):
        render({"class": "File", "location": "file:///x"})
