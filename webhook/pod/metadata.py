"""Labels the pod with its workload class, model and runtime, and records what was injected."""

from __future__ import annotations

import json

from infergate import constants
from webhook.patch import PatchBuilder
from webhook.pod.plan import PodPlan

LABELS = ("metadata", "labels")
ANNOTATIONS = ("metadata", "annotations")


def injected_summary(plan: PodPlan) -> str:
    summary: dict[str, object] = {"workload": plan.workload_class, "priorityClass": plan.priority_class.name}
    if plan.model is not None and plan.runtime is not None:
        summary.update(model=plan.model.name, runtime=plan.runtime.name, storage=plan.model.spec.storage_uri.split("://")[0])
        summary["gpus" if not plan.gpu_milli else "gpuMilli"] = plan.gpus or plan.gpu_milli
        if plan.gpu_product:
            summary["gpuProduct"] = plan.gpu_product
    if plan.group is not None:
        summary["group"] = plan.group.key
    return json.dumps(summary, sort_keys=True, separators=(",", ":"))


def inject(plan: PodPlan, patch: PatchBuilder) -> None:
    patch.set(LABELS + (constants.WORKLOAD_LABEL,), plan.workload_class)
    if plan.model is not None and plan.runtime is not None:
        patch.set(LABELS + (constants.MODEL_LABEL,), plan.model.name)
        patch.set(LABELS + (constants.RUNTIME_LABEL,), plan.runtime.name)
    patch.set(ANNOTATIONS + (constants.INJECTED_ANNOTATION,), injected_summary(plan))
