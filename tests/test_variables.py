"""{{variables}}, protected keys and masking."""

from __future__ import annotations

import pytest

from faice.errors import InvalidInput
from faice.red.secrets import MASK, Masker, is_protected_key, redact, secret_values, strip_protection
from faice.red.variables import VariableSyntaxError, fill, resolve, split_template, variable_uses


@pytest.mark.parametrize(
    "text,parts",
    [
        ("plain", [(False, "plain")]),
        ("{{a}}", [(True, "a")]),
        ("https://{{host}}:{{ port }}/x", [(False, "https://"), (True, "host"), (False, ":"), (True, "port"), (False, "/x")]),
        ("{single} braces", [(False, "{single} braces")]),
    ],
)
def test_split_template(text, parts):
    assert split_template(text) == parts


@pytest.mark.parametrize("text", ["{{}}", "{{ }}", "{{a", "a}}", "{{a}}}}", "{{{a}}}", "{{a{{b}}}}"])
def test_malformed_templates(text):
    with pytest.raises(VariableSyntaxError):
        split_template(text)


DATA = {
    "inputs": {
        "f": {"connector": {"access": {"url": "http://{{host}}/f", "auth": {"username": "{{user}}", "password": "{{pw}}"}}}},
        "g": {"connector": {"access": {"url": "http://{{host}}/g", "_token": "{{token}}"}}},
    },
    "doc": "no {{variables}} here are found because this is not an access block",
}


def test_variable_uses_know_which_are_protected():
    uses = {(u.name, u.protected) for u in variable_uses(DATA)}
    assert uses == {("host", False), ("user", True), ("pw", True), ("token", True)}  # everything in an auth block is asked without echo


def test_resolve_order_option_then_environment_then_prompt():
    asked = []

    def prompt(name, protected):
        asked.append((name, protected))
        return f"typed-{name}"

    values = resolve(variable_uses(DATA), {"host": "h"}, environ={"FAICE_VAR_user": "env-user", "FAICE_VAR_host": "ignored"}, prompt=prompt)
    assert values == {"host": "h", "user": "env-user", "pw": "typed-pw", "token": "typed-token"}
    assert asked == [("pw", True), ("token", True)]


def test_resolve_without_prompt_lists_every_missing_variable():
    with pytest.raises(InvalidInput) as info:
        resolve(variable_uses(DATA), {"host": "h"}, environ={})
    assert "pw, token, user" in str(info.value)


def test_fill_replaces_every_occurrence_and_copies():
    filled = fill(DATA, {"host": "127.0.0.1", "user": "u", "pw": "p", "token": "t"})
    assert filled["inputs"]["f"]["connector"]["access"] == {"url": "http://127.0.0.1/f", "auth": {"username": "u", "password": "p"}}
    assert DATA["inputs"]["f"]["connector"]["access"]["url"] == "http://{{host}}/f"


def test_protected_keys():
    assert [k for k in ("password", "privateKey", "_x", "username", "url", 3) if is_protected_key(k)] == ["password", "privateKey", "_x"]


def test_secret_values_cover_protected_keys_auth_blocks_and_filled_variables():
    data = {"access": {"url": "http://h", "auth": {"username": "alice", "password": 1234}, "_key": {"deep": "k-value"}}, "x": {"password": "pw"}}
    assert secret_values(data, ["filled"]) == {"alice", "1234", "k-value", "pw", "filled"}


def test_masker_is_regex_safe_and_prefers_longer_secrets():
    mask = Masker(["a(b)", "secret", "secretive", "", "run"])
    assert mask("x a(b) y secretive secret grun") == f"x {MASK} y {MASK} {MASK} grun"  # values under 4 characters are left alone
    assert Masker([])("unchanged") == "unchanged"
    assert redact({"k": ["secret", 1]}, mask=mask) == {"k": [MASK, 1]}


def test_strip_protection_removes_leading_underscores():
    assert strip_protection({"auth": {"_username": "u", "_password": "p"}, "url": "x"}) == {"auth": {"username": "u", "password": "p"}, "url": "x"}

