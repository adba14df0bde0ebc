"""The pod mutator: plan once, then run one injector per concern, in order."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from policies.loader import Policy
from webhook.patch import PatchBuilder
from webhook.pod import gpu, metadata, runtime_container, scheduling, storage
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

