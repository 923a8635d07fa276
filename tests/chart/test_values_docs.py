"""values.yaml documents every setting with a `## @param` line, and only settings it has."""

from __future__ import annotations

import re
from typing import Any

import yaml

from tools.delivery.chart import CHART

VALUES = CHART / "values.yaml"


def leaves(tree: dict[str, Any], prefix: str = "") -> set[str]:
    out: set[str] = set()
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out |= leaves(value, f"{path}.")
        else:
            out.add(path)
    return out


def test_every_value_has_a_param_line_and_every_param_a_value() -> None:
    text = VALUES.read_text()
    params = set(re.findall(r"^\s*## @param (\S+) \S", text, re.MULTILINE))
    keys = leaves(yaml.safe_load(text))
    # A parameter may document a whole map (api.resources covers its requests and limits).
    undocumented = {k for k in keys if not any(k == p or k.startswith(p + ".") for p in params)}
    assert not undocumented, f"values without a ## @param line: {sorted(undocumented)}"
    dangling = {p for p in params if not any(k == p or k.startswith(p + ".") for k in keys)}
    assert not dangling, f"## @param lines for values that do not exist: {sorted(dangling)}"
