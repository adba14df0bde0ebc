"""Validation of the values users write in annotations, before anything is rendered from them.

Each parser accepts a narrow grammar, so a value can never carry a flag, a shell word or a path.
"""

from __future__ import annotations

import re

from infergate import constants
from webhook.errors import InvalidValue

_INTEGER = re.compile(r"^[0-9]{1,4}\Z")
_FRACTION = re.compile(r"^0?\.[0-9]{1,3}\Z")
# A Kubernetes label value: what a node's nvidia.com/gpu.product label can hold.
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?\Z")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\Z")


def annotation_field(key: str) -> str:
    return f"metadata.annotations[{key}]"


def name_at(field: str, value: object) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise InvalidValue(f"{field}: {value!r:.80} is not a valid name (lower-case letters, digits, '-' and '.')", field)
    return value


def whole_gpus(key: str, value: str) -> int:
    if not _INTEGER.match(value) or int(value) < 1:
        raise InvalidValue(f"{key}: {value!r:.80} is not a whole number of GPUs such as \"1\" or \"4\"", annotation_field(key))
    return int(value)


def gpu_fraction_milli(key: str, value: str) -> int:
    """A share of one GPU, 0 < F < 1 with at most three decimals, as thousandths."""
    if not _FRACTION.match(value):
        raise InvalidValue(
            f"{key}: {value!r:.80} is not a share of one GPU between 0 and 1 such as \"0.5\" (at most 3 decimals)",
            annotation_field(key),
        )
    milli = round(float(value) * constants.MILLI_PER_GPU)
    if not 0 < milli < constants.MILLI_PER_GPU:
        raise InvalidValue(f"{key}: {value!r:.80} must be more than 0 and less than 1", annotation_field(key))
    return milli


def label_value(key: str, value: str) -> str:
    if not _LABEL_VALUE.match(value):
        raise InvalidValue(f"{key}: {value!r:.80} is not a valid label value such as NVIDIA-H100-80GB-HBM3", annotation_field(key))
    return value


def choice(key: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise InvalidValue(f"{key}: {value!r:.80} must be one of {', '.join(allowed)}", annotation_field(key))
    return value


def group_size(field: str, value: str) -> int:
    if not _INTEGER.match(value) or int(value) < 1:
        raise InvalidValue(f"{field}: {value!r:.80} is not a group size such as \"2\"", field)
    return int(value)


# The annotations users write to infergate; values are read exactly as written.
USER_ANNOTATIONS = (
    constants.MODEL_ANNOTATION, constants.RUNTIME_ANNOTATION, constants.GPUS_ANNOTATION, constants.GPU_FRACTION_ANNOTATION,
    constants.GPU_PRODUCT_ANNOTATION, constants.WORKLOAD_ANNOTATION, constants.GROUP_ANNOTATION,
    constants.GROUP_SIZE_ANNOTATION, constants.ROLE_ANNOTATION,
)


def check_no_padding(annotations: dict[str, str], where: str = "metadata.annotations") -> None:
    """A value with leading or trailing whitespace is refused, not trimmed: a YAML block scalar (`key: |`) keeps
    its newline, and a value that differs from what the user sees must never reach a node affinity or a flag."""
    for key in USER_ANNOTATIONS:
        value = annotations.get(key)
        if isinstance(value, str) and value != value.strip():
            raise InvalidValue(
                f"{key}: {value!r:.80} has leading or trailing whitespace (a YAML block scalar `|` keeps its newline); "
                f"write the value on one line, or use `|-`",
                f"{where}[{key}]",
            )
