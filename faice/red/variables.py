"""``{{variables}}``: where they may appear, and filling them.

Variables stand for values that must not be written into a RED file (credentials, hosts of
the user's own infrastructure). They may only appear inside strings below an ``access`` or
``auth`` key. A variable under a protected key is protected: prompts hide what is typed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from faice.errors import InvalidInput
from faice.red.secrets import CREDENTIAL_BLOCKS, is_protected_key

ENV_PREFIX = "FAICE_VAR_"


class VariableSyntaxError(ValueError):
    pass


def split_template(text: str) -> list[tuple[bool, str]]:
    """Split a string into (is_variable, text) parts; raise on malformed brackets."""
    parts: list[tuple[bool, str]] = []
    pos = 0
    while True:
        start = text.find("{{", pos)
        stray = text.find("}}", pos)
        if stray != -1 and (start == -1 or stray < start):
            raise VariableSyntaxError('"}}" without a matching "{{"')
        if start == -1:
            if pos < len(text):
                parts.append((False, text[pos:]))
            return parts
        end = text.find("}}", start + 2)
        if end == -1:
            raise VariableSyntaxError('"{{" without a closing "}}"')
        name = text[start + 2 : end].strip()
        if "{" in name or "}" in name:
            raise VariableSyntaxError("nested or extra brackets in a variable")
        if not name:
            raise VariableSyntaxError("a variable needs a name: {{name}}")
        if start > pos:
            parts.append((False, text[pos:start]))
        parts.append((True, name))
        pos = end + 2


def has_brackets(text: str) -> bool:
    return "{{" in text or "}}" in text


class VariableUse(NamedTuple):
    """One {{variable}} in a RED file: its name, where it is, and whether its value is a secret."""

    name: str
    path: tuple[Any, ...]
    protected: bool


def variable_uses(data: Any) -> list[VariableUse]:
    """Every well-formed variable below an access/auth block (others are validation errors)."""
    uses: list[VariableUse] = []

    def walk(node: Any, path: tuple[Any, ...], allowed: bool, protected: bool) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, path + (key,), allowed or key in CREDENTIAL_BLOCKS, protected or is_protected_key(key) or key == "auth")
        elif isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, path + (i,), allowed, protected)
        elif allowed and isinstance(node, str) and has_brackets(node):
            try:
                parts = split_template(node)
            except VariableSyntaxError:
                return
            uses.extend(VariableUse(text, path, protected) for is_var, text in parts if is_var)

    walk(data, (), False, False)
    return uses


#: where a CC-Agency's URL and login go: only faice submit needs them (and their variables)
AGENCY_ACCESS = ("execution", "settings", "access")


def substitute(text: str, values: Mapping[str, str]) -> str:
    """``text`` with its variables filled; as written when one has no value (a variable this run
    does not need: prepare(local=True))."""
    parts = split_template(text)
    if not all(t in values for is_var, t in parts if is_var):
        return text
    return "".join(values[t] if is_var else t for is_var, t in parts)


def fill(data: Any, values: Mapping[str, str], in_block: bool = False) -> Any:
    """A copy of ``data`` with every variable in access/auth blocks replaced (values are strings)."""
    if isinstance(data, dict):
        return {k: fill(v, values, in_block or k in CREDENTIAL_BLOCKS) for k, v in data.items()}
    if isinstance(data, list):
        return [fill(v, values, in_block) for v in data]
    if in_block and isinstance(data, str) and has_brackets(data):
        return substitute(data, values)
    return data


Prompt = Callable[[str, bool], str]


def resolve(
    uses: list[VariableUse],
    given: Mapping[str, str],
    *,
    environ: Mapping[str, str] | None = None,
    prompt: Prompt | None = None,
    optional_agency: bool = False,
) -> dict[str, str]:
    """Values for every used variable: ``--var`` first, then ``FAICE_VAR_<name>``, then the prompt.

    Without a prompt (``--non-interactive``, or no terminal) a missing variable is an error
    that lists all of them. With ``optional_agency`` (a local run), variables used only in
    ``execution.settings.access`` (a CC-Agency's URL and login) are filled when given and
    otherwise neither asked for nor missed.
    """
    environ = os.environ if environ is None else environ
    names: dict[str, bool] = {}
    for use in uses:
        names[use.name] = names.get(use.name, False) or use.protected
    values: dict[str, str] = {}
    missing: list[str] = []
    optional = {u.name for u in uses if u.path[:3] == AGENCY_ACCESS} - {u.name for u in uses if u.path[:3] != AGENCY_ACCESS} if optional_agency else set()
    for name in sorted(names):
        if name in given:
            values[name] = given[name]
        elif ENV_PREFIX + name in environ:
            values[name] = environ[ENV_PREFIX + name]
        elif name in optional:
            continue
        elif prompt is not None:
            values[name] = prompt(name, names[name])
        else:
            missing.append(name)
    if missing:
        listed = ", ".join(missing)
        raise InvalidInput(
            f"variables without a value: {listed}; give them with --var NAME=VALUE, "
            f"{ENV_PREFIX}NAME in the environment, or run interactively to be asked"
        )
    return values
