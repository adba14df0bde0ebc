"""Injects GPUs: whole GPUs as resources, or a share of one GPU wired to the index the extender picks;
the GPU toleration, node affinity to the GPU product, and a memory-backed /dev/shm for multi-GPU work."""

from __future__ import annotations

from typing import Any

from infergate import constants
from webhook.patch import PatchBuilder
from webhook.pod.containers import CONTAINERS, by_name, container_path, free_name
from webhook.pod.plan import PodPlan

REQUIRED_TERMS = ("spec", "affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms")


def inject(plan: PodPlan, patch: PatchBuilder) -> None:
    path = container_path(patch, plan.runtime_container_name)
    if plan.other_vendor:
        # The container asks for another vendor's GPUs: no nvidia.com/gpu, toleration or NVIDIA product next to them
        # (a toleration still when another container of the pod asks for the policy's GPUs).
        if plan.needs_shm:
            _shm(plan, patch, path)
        if any(plan.defaults.gpu_resource in ((c.get("resources") or {}).get("limits") or {})
               for c in patch.get(CONTAINERS) or []) and plan.defaults.gpu_toleration is not None:
            wanted = plan.defaults.gpu_toleration.as_k8s()
            patch.ensure_item(("spec", "tolerations"), wanted, lambda t: _covers(t, wanted))
        return
    if plan.gpu_milli:
        _share(plan, patch, path)
    elif plan.dra_claims:
        pass  # the devices come from the pod's resource claims
    else:
        amount = str(plan.gpus)
        for kind in ("limits", "requests"):
            patch.set_default(path + ("resources", kind, plan.defaults.gpu_resource), amount)
    _placement(plan, patch, [path])


def inject_inference_service_pod(plan: PodPlan, patch: PatchBuilder) -> None:
    """Pods of OME and KServe InferenceServices: their containers ask for GPUs; wire placement around them."""
    if plan.serves_inference_service and plan.gpus:
        _placement(plan, patch, [CONTAINERS + (index,) for index in plan.gpu_containers])


def _placement(plan: PodPlan, patch: PatchBuilder, gpu_containers: list[tuple]) -> None:
    toleration = plan.defaults.gpu_toleration
    if toleration is not None:
        wanted = toleration.as_k8s()
        patch.ensure_item(("spec", "tolerations"), wanted, lambda t: _covers(t, wanted))
    if plan.gpu_product and plan.placed_by_scheduler:
        _require_product(patch, plan.gpu_product)
    if plan.needs_shm:
        for path in gpu_containers:
            _shm(plan, patch, path)


def _share(plan: PodPlan, patch: PatchBuilder, path: tuple) -> None:
    amount = str(plan.gpu_milli)
    for kind in ("limits", "requests"):
        patch.set_default(path + ("resources", kind, constants.GPU_SHARE_RESOURCE), amount)
    field = f"metadata.annotations['{constants.GPU_INDEX_ANNOTATION}']"
    env = {"name": constants.VISIBLE_DEVICES_ENV, "valueFrom": {"fieldRef": {"fieldPath": field}}}
    patch.ensure_item(path + ("env",), env, by_name(constants.VISIBLE_DEVICES_ENV))


def _covers(existing: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Whether the user's toleration already tolerates what ours would: no key with Exists tolerates every
    taint, no effect every effect (Kubernetes' Toleration.ToleratesTaint)."""
    if existing.get("operator") == "Exists" and not existing.get("key"):
        return existing.get("effect") in (None, "", wanted.get("effect"))
    if existing.get("key") != wanted.get("key") or existing.get("effect") not in (None, "", wanted.get("effect")):
        return False
    if existing.get("operator") == "Exists":
        return True
    return existing.get("operator", "Equal") == wanted.get("operator", "Equal") and existing.get("value") == wanted.get("value")


def _product_expression(product: str) -> dict[str, Any]:
    return {"key": constants.GPU_PRODUCT_LABEL, "operator": "In", "values": [product]}


def _require_product(patch: PatchBuilder, product: str) -> None:
    """AND the product requirement into every required term (terms are ORed), or add the only term. A term
    that already constrains the product, an empty term (it matches no node) and a nodeSelector on the product
    label are the user's and left as they are."""
    if constants.GPU_PRODUCT_LABEL in (patch.get(("spec", "nodeSelector")) or {}):
        return
    expression = _product_expression(product)
    terms = patch.get(REQUIRED_TERMS)
    if not terms:
        patch.set(REQUIRED_TERMS, [{"matchExpressions": [expression]}])
        return
    for index, term in enumerate(terms):
        expressions = term.get("matchExpressions") or []
        if not (expressions or term.get("matchFields")):
            continue
        if not any(e.get("key") == constants.GPU_PRODUCT_LABEL for e in expressions if isinstance(e, dict)):
            patch.append(REQUIRED_TERMS + (index, "matchExpressions"), expression)


def _shm(plan: PodPlan, patch: PatchBuilder, path: tuple) -> None:
    """A memory-backed /dev/shm, unless the container already mounts one (under any volume name) or the pod
    shares the host's IPC namespace; ours takes a name no volume of the user's has."""
    if any(m.get("mountPath") == "/dev/shm" for m in patch.get(path + ("volumeMounts",)) or []):
        return
    if patch.get(("spec", "hostIPC")) is True:
        return  # the host's /dev/shm, which the user asked for; a volume over it would hide it
    name = free_name(patch.get(("spec", "volumes")) or [], constants.SHM_VOLUME)
    patch.append(("spec", "volumes"), {"name": name, "emptyDir": {"medium": "Memory", "sizeLimit": plan.defaults.shm_size}})
    patch.append(path + ("volumeMounts",), {"name": name, "mountPath": "/dev/shm"})
