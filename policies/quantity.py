"""Parsing of the few quantities policies carry: Kubernetes memory sizes and model parameter counts."""

from __future__ import annotations

import re

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50}
_DECIMAL = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15}
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$")
_PARAMS = re.compile(r"^([0-9]+(?:\.[0-9]+)?)([KMBT])$")
_PARAM_UNITS = {"K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}


def parse_bytes(text: str) -> int:
    """A Kubernetes quantity of bytes, such as `16Gi` or `500M`."""
    match = _QUANTITY.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a size such as 16Gi or 512Mi")
    number, unit = match.groups()
    unit = unit or ""
    return int(float(number) * (_BINARY.get(unit) or _DECIMAL[unit]))


def parse_parameters(text: str) -> int:
    """A model's parameter count, such as `8B`, `70B` or `1.5B`."""
    match = _PARAMS.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a parameter count such as 8B, 70B or 1.5B")
    number, unit = match.groups()
    return int(float(number) * _PARAM_UNITS[unit])
