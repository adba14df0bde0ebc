"""Templates in runtime and model args and env: `{{ variable }}` placeholders, nothing more.

Only a fixed set of variables exists, and every value is validated before it is rendered (see
webhook/pod/values.py), so an annotation can never smuggle a flag, a shell word or a path into args.
One template string always renders to exactly one argument.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z][A-Za-z0-9_.]*)\s*\}\}")

VARIABLES: dict[str, str] = {
    "model.name": "the Model's name",
    "model.servedName": "the name clients use (the Model's servedModelName, else its name)",
    "model.path": "where the weights are mounted",
    "gpus": "whole GPUs of this pod (1 for a fractional pod)",
    "gpus.total": "GPUs of the whole group: gpus x group.size",
    "gpu.fraction": "the pod's share of one GPU, 1 when it has whole GPUs",
    "port": "the runtime's serving port",
    "group.size": "pods in the multi-node group (1 outside a group)",
    "group.rank": "this pod's rank in the group (0 is the leader)",
}


def unknown_variables(template: str) -> list[str]:
    return [name for name in PLACEHOLDER.findall(template) if name not in VARIABLES]


def render(template: str, values: Mapping[str, str]) -> str:
    """Render one template; a variable without a value is a KeyError naming it."""
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], template)
