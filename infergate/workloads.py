"""What a pod is, read the same way by the webhook and the extender: its workload class and its group.

Groups are recognised, in this order: infergate's own annotations, LeaderWorkerSet labels (size from its
annotation, rank from the worker index), a native PodGroup named by spec.schedulingGroup.podGroupName, and the
PodGroup label of the scheduler-plugins coscheduling API. Both PodGroup kinds keep their size (and topology) in
the PodGroup object, not on the pod: the identity has no size, and the extender reads it from the PodGroup.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from infergate import constants

_COUNT = re.compile(r"^[0-9]{1,5}$")


class PodFieldError(ValueError):
    def __init__(self, message: str, field: str):
        self.field = field
        super().__init__(message)


@dataclass(frozen=True)
class GroupIdentity:
    key: str  # "namespace/name", unique per group in the cluster
    size: int | None  # None where the pod does not say (a PodGroup keeps it in the object)
    rank: int | None
    role: str | None
    source: str  # which convention identified it
    topology: tuple[str, ...] = ()  # node label keys whose one value all members must share (a PodGroup's)


def _count(field: str, value: str | None, minimum: int) -> int | None:
    if value is None:
        return None
    if not _COUNT.match(value) or int(value) < minimum:
        raise PodFieldError(f"{field}: {value!r} is not a whole number of at least {minimum}", field)
    return int(value)


def group_identity(metadata: dict[str, Any], spec: dict[str, Any] | None = None) -> GroupIdentity | None:
    """The pod's group from its metadata and, for the native PodGroup API, its spec (optional: without it,
    pods are read as before that API existed)."""
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
    if lws is not None and constants.LWS_GROUP_INDEX_LABEL in labels:
        size = _count(
            f"metadata.annotations[{constants.LWS_SIZE_ANNOTATION}]", annotations.get(constants.LWS_SIZE_ANNOTATION), 1
        )
        rank = _count(
            f"metadata.labels[{constants.LWS_WORKER_INDEX_LABEL}]", labels.get(constants.LWS_WORKER_INDEX_LABEL), 0
        )
        if role is None and rank is not None:
            role = "leader" if rank == 0 else "worker"
        key = f"{namespace}/{lws}-{labels[constants.LWS_GROUP_INDEX_LABEL]}"
        return GroupIdentity(key, size, rank, role, "LeaderWorkerSet")

    # --- native PodGroup (scheduling.k8s.io/v1beta1, GenericWorkload): the pod names it in its spec
    native = _native_pod_group(spec)
    if native is not None:
        return GroupIdentity(f"{namespace}/{native}", None, 0 if role == "leader" else None, role, constants.NATIVE_POD_GROUP)
    # --- end native PodGroup

    pod_group = labels.get(constants.POD_GROUP_LABEL)
    if pod_group is not None:
        return GroupIdentity(f"{namespace}/{pod_group}", None, 0 if role == "leader" else None, role, "PodGroup")
    return None


def _native_pod_group(spec: dict[str, Any] | None) -> str | None:
    group = spec.get("schedulingGroup") if isinstance(spec, dict) else None
    if group is None:
        return None
    name = group.get("podGroupName") if isinstance(group, dict) else None
    if name is None:
        return None
    if not isinstance(name, str) or not name:
        raise PodFieldError(f"spec.schedulingGroup.podGroupName: {name!r} is not the name of a PodGroup",
                            "spec.schedulingGroup.podGroupName")
    return name


def workload_class_of(metadata: dict[str, Any], has_model: bool) -> tuple[str, str]:
    """The pod's workload class and why: the annotation, a training job's labels, or having a model.

    Pods without a model and without a training label are training: nothing jumps the queue by omission.
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
    if any(label in labels for label in constants.ISVC_POD_LABELS):
        return constants.INFERENCE, "InferenceService pod"
    return constants.TRAINING, "default for pods without a model"
