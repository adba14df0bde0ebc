"""Parsing of the few quantities policies carry: Kubernetes memory sizes and model parameter counts."""

from __future__ import annotations

import re
from decimal import Decimal
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


# Kubernetes' resource.Quantity grammar (k8s.io/apimachinery/pkg/api/resource):
#   <quantity> ::= <signedNumber><suffix>;  <number> ::= <digits> | <digits>.<digits> | <digits>. | .<digits>
#   <suffix> ::= <binarySI> | <decimalExponent> | <decimalSI>;  <decimalExponent> ::= "e" <signedNumber> | "E" <signedNumber>
_QUANTITY_GRAMMAR = re.compile(
    r"([+-]?)([0-9]*)(?:\.([0-9]*))?(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?"
)
_BINARY_SHIFT = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
# How many decimal digits a binary suffix adds at most (Gi multiplies by 2**30, about 10 digits).
_SHIFT_DIGITS = {shift: len(str(1 << shift)) for shift in (0, *_BINARY_SHIFT.values())}
_DECIMAL_EXPONENT = {"m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
# Longer text is refused before any arithmetic: the API server accepts pods with quantities of thousands of digits
# in namespaces no webhook sees, and big-number arithmetic on them grows with the square of their length.
MAX_QUANTITY_CHARS = 64
# Amounts are bounded like resource.Quantity's int64 values: anything larger is refused, not computed.
MAX_QUANTITY = Decimal(2**63 - 1)
_MAX_DIGITS = 19  # decimal digits of MAX_QUANTITY


def parse_quantity(value: str | int | float) -> Decimal:
    """Any Kubernetes resource quantity (`500m`, `2`, `16Gi`, `1e9`) as an exact number, in time bounded by
    MAX_QUANTITY_CHARS; ValueError for what is not one, or larger in magnitude than MAX_QUANTITY."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a Kubernetes quantity such as 500m, 2 or 16Gi")
    if isinstance(value, int):
        if value.bit_length() > 64:  # int to Decimal is cheap, but a huge one is still refused
            raise ValueError(f"quantity of {value.bit_length()} bits is too large")
        return _bounded(Decimal(value), value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{value!r} is not a Kubernetes quantity")
        return _bounded(Decimal(repr(value)), value)
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a Kubernetes quantity such as 500m, 2 or 16Gi")
    text = value.strip()
    if len(text) > MAX_QUANTITY_CHARS:
        raise ValueError(f"quantity of {len(text)} characters is longer than any Kubernetes accepts for a resource "
                         f"({MAX_QUANTITY_CHARS} at most here)")
    match = _QUANTITY_GRAMMAR.fullmatch(text)
    if not match or not (match.group(2) or match.group(3)):
        raise ValueError(f"{value!r} is not a Kubernetes quantity such as 500m, 2 or 16Gi")
    sign, whole_digits, fraction, suffix = match.groups()
    fraction = fraction or ""
    digits = (whole_digits + fraction).lstrip("0")
    exponent = -len(fraction)
    shift = 0
    if suffix in _BINARY_SHIFT:
        shift = _BINARY_SHIFT[suffix]
    elif suffix:
        exponent += _DECIMAL_EXPONENT[suffix] if suffix in _DECIMAL_EXPONENT else int(suffix[1:])
    if not digits:
        return Decimal(0)
    # The magnitude from the digit count and exponents alone, before building the number: 2**60 < 10**19.
    if len(digits) + exponent + _SHIFT_DIGITS[shift] > _MAX_DIGITS + 3:
        raise ValueError(f"{value!r} is too large a quantity")
    if len(digits) + exponent < -30:  # far below a milli: the smallest positive amount, as kube rounds it up
        amount = Decimal("1e-30")
    else:
        amount = Decimal(int(digits)).scaleb(exponent) * (1 << shift)
    return _bounded(-amount if sign == "-" else amount, value)


def _bounded(amount: Decimal, value: object) -> Decimal:
    if abs(amount) > MAX_QUANTITY:
        raise ValueError(f"{value!r} is too large a quantity")
    return amount


def milli(value: str | int | float) -> int:
    """A quantity in thousandths, rounded up as Kubernetes does for CPU."""
    return ceil(parse_quantity(value) * 1000)


def whole(value: str | int | float) -> int:
    """A quantity rounded up to a whole number (bytes, devices)."""
    return ceil(parse_quantity(value))
