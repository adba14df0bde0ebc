"""The pod mutator: plan once, then run one injector per concern, in order."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from infergate import constants
from policies.loader import Policy
from webhook.patch import PatchBuilder
from webhook.pod import gpu, metadata, runtime_container, scheduling, storage
from webhook.pod.args import merge_args
from webhook.pod.plan import PodPlan, plan_pod

Injector = Callable[[PodPlan, PatchBuilder], None]

# Only pods with a model get these; the runtime container comes first because the others edit it.
MODEL_INJECTORS: tuple[Injector, ...] = (runtime_container.inject, storage.inject, gpu.inject)
# Pods without a model: an InferenceService's pods get GPU placement wiring around their own containers.
PLAIN_INJECTORS: tuple[Injector, ...] = (gpu.inject_inference_service_pod,)
# Every opted-in pod gets its workload class.
CLASS_INJECTORS: tuple[Injector, ...] = (scheduling.inject, metadata.inject)


@dataclass
class Mutation:
    patch: list[dict[str, Any]]
    warnings: list[str]


def mutate_pod(pod: dict[str, Any], namespace: str, policy: Policy) -> Mutation:
    """Edit the pod in place and return the JSON patch that does the same; AdmissionDenied before any edit."""
    plan = plan_pod(pod, namespace, policy)
    if plan.untouched:
        return Mutation([], plan.warnings)
    patch = PatchBuilder(pod)
    injectors = (MODEL_INJECTORS if plan.model is not None else PLAIN_INJECTORS) + CLASS_INJECTORS
    for inject in injectors:
        inject(plan, patch)
    return Mutation(patch.ops, plan.warnings)


def keep_merged_args(pod: dict[str, Any], old: dict[str, Any]) -> list[dict[str, Any]]:
    """On UPDATE: a client re-applying the manifest it created the pod from sends its own args again, which
    would undo the runtime's merged flags, and the API server forbids changing a pod's args. Merging the sent
    args into the stored ones again gives the stored ones back when nothing really changed."""
    if constants.INJECTED_ANNOTATION not in ((old.get("metadata") or {}).get("annotations") or {}):
        return []
    stored = {c.get("name"): c.get("args") for c in (old.get("spec") or {}).get("containers") or []}
    patch = PatchBuilder(pod)
    for index, container in enumerate((pod.get("spec") or {}).get("containers") or []):
        before = stored.get(container.get("name"))
        if before and container.get("args") != before:
            patch.set(("spec", "containers", index, "args"), merge_args(before, container.get("args") or []))
    return patch.ops
