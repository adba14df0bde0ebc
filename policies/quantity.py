"""Parsing of the few quantities policies carry: Kubernetes memory sizes and model parameter counts."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from math import ceil

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50}
_DECIMAL = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15}
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?\Z")
_PARAMS = re.compile(r"^([0-9]+(?:\.[0-9]+)?)([KMBT])\Z")
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


_SUFFIXED = re.compile(r"^([+-]?[0-9.]+)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?\Z")
_MULTIPLIERS = {
    "Ki": Decimal(2**10), "Mi": Decimal(2**20), "Gi": Decimal(2**30), "Ti": Decimal(2**40), "Pi": Decimal(2**50),
    "Ei": Decimal(2**60), "m": Decimal("0.001"), "k": Decimal(10**3), "M": Decimal(10**6), "G": Decimal(10**9),
    "T": Decimal(10**12), "P": Decimal(10**15), "E": Decimal(10**18),
}


def parse_quantity(value: str | int | float) -> Decimal:
    """Any Kubernetes resource quantity (`500m`, `2`, `16Gi`, `1e9`) as an exact number."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Decimal(str(value))
    match = _SUFFIXED.match(str(value).strip())
    if not match:
        raise ValueError(f"{value!r} is not a Kubernetes quantity such as 500m, 2 or 16Gi")
    number, suffix = match.groups()
    try:
        amount = Decimal(number)
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a Kubernetes quantity such as 500m, 2 or 16Gi") from None
    if suffix is None:
        return amount
    if suffix[0] in "eE":
        return amount * (Decimal(10) ** int(suffix[1:]))
    return amount * _MULTIPLIERS[suffix]


def milli(value: str | int | float) -> int:
    """A quantity in thousandths, rounded up as Kubernetes does for CPU."""
    return ceil(parse_quantity(value) * 1000)


def whole(value: str | int | float) -> int:
    """A quantity rounded up to a whole number (bytes, devices)."""
    return ceil(parse_quantity(value))
