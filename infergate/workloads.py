"""What a pod is, read the same way by the webhook and the extender: its workload class and its group.

Groups are recognised, in this order: infergate's own annotations, LeaderWorkerSet pods (size from its
annotation; group and rank from its labels or, before LWS's own webhook has added them, from the pod's name),
and the PodGroup label of the scheduler-plugins coscheduling API.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from infergate import constants

_COUNT = re.compile(r"^[0-9]{1,5}\Z")
_SERVING_IMAGE = re.compile(constants.SERVING_IMAGE_PATTERN)
_SERVING_COMMAND = re.compile(constants.SERVING_COMMAND_PATTERN)


class PodFieldError(ValueError):
    def __init__(self, message: str, field: str):
        self.field = field
        super().__init__(message)


@dataclass(frozen=True)
class GroupIdentity:
    key: str  # "namespace/name", unique per group in the cluster
    size: int | None  # None where the source does not say (a PodGroup label alone)
    rank: int | None
    role: str | None
    source: str  # which convention identified it


def _count(field: str, value: str | None, minimum: int) -> int | None:
    if value is None:
        return None
    if not _COUNT.match(value) or int(value) < minimum:
        raise PodFieldError(f"{field}: {value!r} is not a whole number of at least {minimum}", field)
    return int(value)


def group_identity(metadata: dict[str, Any]) -> GroupIdentity | None:
    namespace = metadata.get("namespace") or ""
    labels: dict[str, str] = metadata.get("labels") or {}
    annotations: dict[str, str] = metadata.get("annotations") or {}
    role = annotations.get(constants.ROLE_ANNOTATION)
    if role is not None and role not in constants.ROLES:
        field = f"metadata.annotations[{constants.ROLE_ANNOTATION}]"
        raise PodFieldError(f"{constants.ROLE_ANNOTATION}: {role!r} must be one of {', '.join(constants.ROLES)}", field)

    name = annotations.get(constants.GROUP_ANNOTATION)
    if name is not None:
        size_field = f"metadata.annotations[{constants.GROUP_SIZE_ANNOTATION}]"
        size = _count(size_field, annotations.get(constants.GROUP_SIZE_ANNOTATION), 1)
        if size is None:
            raise PodFieldError(
                f"{constants.GROUP_ANNOTATION} needs {constants.GROUP_SIZE_ANNOTATION} with the number of pods", size_field
            )
        rank = 0 if role == "leader" else None
        return GroupIdentity(f"{namespace}/{name}", size, rank, role, "infergate")

    lws = labels.get(constants.LWS_NAME_LABEL)
    if lws is not None:
        found = _leader_worker_set(namespace, lws, metadata, labels, annotations, role)
        if found is not None:
            return found

    pod_group = labels.get(constants.POD_GROUP_LABEL)
    if pod_group is not None:
        return GroupIdentity(f"{namespace}/{pod_group}", None, 0 if role == "leader" else None, role, "PodGroup")
    return None


def _ordinal(name: Any, parent: str) -> int | None:
    """The ordinal a StatefulSet gave the pod named `<parent>-<ordinal>`, or None for any other name."""
    if not isinstance(name, str) or not name.startswith(parent + "-"):
        return None
    tail = name[len(parent) + 1:]
    return int(tail) if _COUNT.match(tail) else None


def _leader_worker_set(
    namespace: str, lws: str, metadata: dict[str, Any], labels: dict[str, str], annotations: dict[str, str], role: str | None
) -> GroupIdentity | None:
    """A LeaderWorkerSet pod, read the same before and after LWS's own pod webhook has labelled it.

    The LWS controller creates the leader from the leader StatefulSet `<lws>` (template label worker-index "0",
    no group-index) and the workers from the StatefulSet `<lws>-<group>` (template label group-index, no
    worker-index). LWS's pod webhook then adds the missing index from the pod's name: the leader is
    `<lws>-<group>`, a worker `<lws>-<group>-<worker>`. Reading the name the same way gives the same identity
    whichever webhook ran first, and the extender, which sees the final pod, agrees.
    """
    name = metadata.get("name")
    size = _count(f"metadata.annotations[{constants.LWS_SIZE_ANNOTATION}]", annotations.get(constants.LWS_SIZE_ANNOTATION), 1)
    rank = _count(f"metadata.labels[{constants.LWS_WORKER_INDEX_LABEL}]", labels.get(constants.LWS_WORKER_INDEX_LABEL), 0)
    group_index = _count(f"metadata.labels[{constants.LWS_GROUP_INDEX_LABEL}]", labels.get(constants.LWS_GROUP_INDEX_LABEL), 0)
    leader_name = annotations.get(constants.LWS_LEADER_NAME_ANNOTATION)
    pod_index = labels.get(constants.STATEFULSET_POD_INDEX_LABEL)
    pod_index = int(pod_index) if isinstance(pod_index, str) and _COUNT.match(pod_index) else None
    if rank == 0:  # the leader: its name is <lws>-<group>
        if group_index is None:
            group_index = _ordinal(name, lws)
            group_index = pod_index if group_index is None else group_index
    else:  # a worker: its StatefulSet is named after the leader pod, <lws>-<group>
        if group_index is None:
            group_index = _ordinal(leader_name, lws)
        if rank is None and group_index is not None:
            rank = _ordinal(name, f"{lws}-{group_index}")
            rank = pod_index if rank is None and pod_index else rank
    if group_index is None:
        return None
    if role is None and rank is not None:
        role = "leader" if rank == 0 else "worker"
    return GroupIdentity(f"{namespace}/{lws}-{group_index}", size, rank, role, "LeaderWorkerSet")


def is_model_server(container: Any) -> bool:
    """A container that runs a known model server, by its image or its command line."""
    if not isinstance(container, dict):
        return False
    image = container.get("image")
    if isinstance(image, str) and _SERVING_IMAGE.search(image.rsplit("@", 1)[0]):
        return True
    words = [w for key in ("command", "args") for w in (container.get(key) or []) if isinstance(w, str)]
    return bool(_SERVING_COMMAND.search(" ".join(words)))


# Which model server a container runs: its command line first (a shell script included), then its image.
_SERVER_FAMILIES = (  # (family, command pattern, image pattern)
    ("sglang", r"sglang\.launch_server", r"(^|/)sglang([:@/_-]|$)"),
    ("vllm", r"(^|[\s/])vllm\s+serve\b|vllm\.entrypoints", r"(^|/)vllm(-openai)?([:@/_-]|$)"),
    ("tgi", r"text-generation-launcher", r"(^|/)text-generation-inference([:@/_-]|$)"),
    ("trtllm", r"trtllm-serve", r"(^|/)tensorrt-llm([:@/_-]|$)"),
    ("triton", r"(^|[\s/])tritonserver\b", r"(^|/)tritonserver([:@/_-]|$)"),
)


def server_family(container: Any) -> str | None:
    """"vllm", "sglang", "tgi", "trtllm", "triton", or None: the model server a container runs."""
    if not isinstance(container, dict):
        return None
    words = " ".join(w for key in ("command", "args") for w in (container.get(key) or []) if isinstance(w, str))
    image = container.get("image")
    image = image.rsplit("@", 1)[0] if isinstance(image, str) else ""
    for column, text in ((1, words), (2, image)):
        for family in _SERVER_FAMILIES:
            if text and re.search(family[column], text):
                return family[0]
    return None


def _runs_model_server(spec: dict[str, Any] | None) -> bool:
    containers = spec.get("containers") if isinstance(spec, dict) else None
    return any(is_model_server(c) for c in containers) if isinstance(containers, list) else False


def serving_markers(metadata: dict[str, Any], spec: dict[str, Any] | None = None) -> str | None:
    """Why the pod serves a model although it names none of ours: the first serving label or model server."""
    labels = metadata.get("labels") or {}
    for label in constants.SERVING_POD_LABELS:
        if label in labels:
            return f"label {label}"
    if _runs_model_server(spec):
        return "a model server container"
    return None


def workload_class_of(
    metadata: dict[str, Any], has_model: bool, *, spec: dict[str, Any] | None = None, default: str = constants.TRAINING
) -> tuple[str, str]:
    """The pod's workload class and why, in this order: the annotation, a training job's labels, serving (a
    model of ours, an OME/KServe/LeaderWorkerSet/llm-d pod, a model server container), else `default`: the
    namespace rule's default class. A serving pod is never training unless it says so.

    `spec` is optional so that callers with only the metadata (the extender) still get the labels' answer.
    """
    annotations: dict[str, str] = metadata.get("annotations") or {}
    labels: dict[str, str] = metadata.get("labels") or {}
    declared = annotations.get(constants.WORKLOAD_ANNOTATION)
    if declared is not None:
        if declared not in constants.WORKLOAD_CLASSES:
            field = f"metadata.annotations[{constants.WORKLOAD_ANNOTATION}]"
            raise PodFieldError(
                f"{constants.WORKLOAD_ANNOTATION}: {declared!r} must be one of {', '.join(constants.WORKLOAD_CLASSES)}", field
            )
        return declared, "annotation"
    for label in constants.TRAINING_JOB_LABELS:
        if label in labels:
            return constants.TRAINING, f"label {label}"
    if has_model:
        return constants.INFERENCE, "model"
    marker = serving_markers(metadata, spec)
    if marker is not None:
        return constants.INFERENCE, f"serving pod ({marker})"
    return default, "the namespace's default class for pods without a model"
