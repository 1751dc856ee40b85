"""The command line of a batch, by the CWL v1.0 rules (cwltool is the oracle in tests).

A pure function of the ``cli`` description and one batch's input values. File and Directory
values must carry their ``path`` (the path inside the container, filled in by planning).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import cache
from typing import Any

from faice.red.model import Cli, CliInput


@cache
def _round_trip_yaml() -> Any:
    from ruamel.yaml import YAML

    return YAML()  # round-trip, YAML 1.2: how cwltool reads a job file


def _float_text(value: float) -> str:
    """The text cwltool's YAML reader keeps for a float that the job file spells as ``repr(value)``.

    cwltool formats a job float from ruamel's round-trip text, which is not always ``repr``: in
    exponent form ruamel cuts the mantissa instead of rounding it (``7.200000000000001e-09`` comes back
    as ``7.200000000000000e-09``). faice asks the same ruamel code so that its argv is cwltool's.
    """
    from ruamel.yaml.nodes import ScalarNode

    yaml = _round_trip_yaml()
    scalar = yaml.constructor.construct_yaml_float(ScalarNode("tag:yaml.org,2002:float", repr(value)))
    return str(yaml.representer.represent_scalar_float(scalar).value)


def render(value: Any) -> str:
    """One value as an argument, formatted the way cwltool formats it."""
    if isinstance(value, bool):
        return str(value)  # cwltool joins boolean array items as True/False
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)  # .inf/.nan load as plain floats in cwltool: inf, -inf, nan
        # cwltool renders floats read from YAML through Decimal, never in exponent notation.
        from decimal import Decimal  # here: a millisecond at start-up that runs without floats need not pay

        number = Decimal(_float_text(value))
        text = str(number)
        return format(number, "f") if "E" in text else text
    if isinstance(value, dict):
        if "path" not in value:
            raise ValueError(f"{value.get('class', 'File')} value without a path")
        return str(value["path"])
    return str(value)


def argument(binding_input: CliInput, value: Any) -> list[str]:
    """The arguments one input contributes (CWL "Input binding" rules)."""
    if value is None:
        return []
    binding = binding_input.binding
    prefix, separate = binding.prefix, binding.separate
    if isinstance(value, list):
        if not value:
            return []
        if binding.item_separator is not None:
            items = [binding.item_separator.join(render(v) for v in value)]
        else:
            # Each item is bound on its own, without a prefix: a boolean item contributes nothing.
            return ([prefix] if prefix else []) + [render(v) for v in value if not isinstance(v, bool)]
    elif isinstance(value, bool):
        return [prefix] if value and prefix else []
    else:
        items = [value if isinstance(value, str) else render(value)]
    out: list[str] = []
    for item in items:
        if prefix is None:
            out.append(item)
        elif separate:
            out.extend((prefix, item))
        else:
            out.append(prefix + item)
    return out


def sort_key(cli_input: CliInput) -> tuple[int, str]:
    return (cli_input.binding.position, cli_input.key)


def build_argv(cli: Cli, values: Mapping[str, Any]) -> list[str]:
    """``baseCommand`` followed by every bound input, sorted by (position, input name)."""
    argv = list(cli.base_command)
    for cli_input in sorted(cli.inputs, key=sort_key):
        argv.extend(argument(cli_input, values.get(cli_input.key)))
    return argv
