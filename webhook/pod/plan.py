"""What an opted-in pod needs, decided once from its annotations, labels and the policy.

The plan holds every decision and every validation, so the injectors only write; a pod that cannot be served
is denied here, before anything is changed, and nothing is half-applied.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from infergate import constants
from infergate.workloads import GroupIdentity, PodFieldError, group_identity, workload_class_of
from policies.loader import Policy
from policies.schema import Defaults, Model, NamespaceRule, PriorityClassRef, Runtime
from webhook.errors import AdmissionDenied, InvalidValue
from webhook.pod import values
from webhook.pod.values import annotation_field
from webhook.resolve import namespace_rule, resolve_model, resolve_runtime


@dataclass
class PodPlan:
    namespace: str
    defaults: Defaults
    workload_class: str
    priority_class: PriorityClassRef
    model: Model | None = None
    runtime: Runtime | None = None
    gpus: int = 0  # whole GPUs per pod
    gpu_milli: int = 0  # a share of one GPU, in thousandths, for fractional pods
    gpu_product: str | None = None
    group: GroupIdentity | None = None
    # Pods an OME or KServe controller made: their own containers already ask for GPUs.
    serves_inference_service: bool = False
    gpu_containers: list[int] = field(default_factory=list)  # indexes of containers that request GPUs
    warnings: list[str] = field(default_factory=list)

    @property
    def needs_shm(self) -> bool:
        return self.gpus > 1 or (self.group is not None and (self.serves_inference_service or self.model is not None))

    @property
    def runtime_container_name(self) -> str:
        assert self.runtime is not None
        return self.runtime.spec.container_name

    def template_values(self) -> dict[str, str]:
        """The values templates may use; all were validated, so none can add a flag or a word."""
        assert self.model is not None and self.runtime is not None
        group_size = self.group.size if self.group and self.group.size else 1
        whole = self.gpus or 1
        result = {
            "model.name": self.model.name,
            "model.servedName": self.model.spec.served_model_name or self.model.name,
            "model.path": self.defaults.model_mount_path,
            "gpus": str(whole),
            "gpus.total": str(whole * group_size),
            "gpu.fraction": _fraction_text(self.gpu_milli) if self.gpu_milli else "1",
            "port": str(self.runtime.spec.port),
            "group.size": str(group_size),
        }
        rank = self.group.rank if self.group else 0
        if rank is not None:
            result["group.rank"] = str(rank)
        return result


def _fraction_text(milli: int) -> str:
    return f"{milli / constants.MILLI_PER_GPU:.3f}".rstrip("0").rstrip(".")


def describe(pod: dict[str, Any], namespace: str) -> str:
    metadata = pod.get("metadata") or {}
    name = metadata.get("name") or (metadata.get("generateName", "") + "*") or "(unnamed)"
    return f"pod {namespace}/{name}"


def plan_pod(pod: dict[str, Any], namespace: str, policy: Policy) -> PodPlan:
    """Decide everything the pod needs, or raise AdmissionDenied naming the pod and the field."""
    who = describe(pod, namespace)
    try:
        return _plan(pod, namespace, policy)
    except AdmissionDenied as exc:
        exc.message = f"{who}: {exc.message}"
        exc.args = (exc.message,)
        raise


def _plan(pod: dict[str, Any], namespace: str, policy: Policy) -> PodPlan:
    metadata = pod.get("metadata") or {}
    annotations: dict[str, str] = metadata.get("annotations") or {}
    model_name = annotations.get(constants.MODEL_ANNOTATION)
    try:
        workload_class, class_reason = workload_class_of(metadata, has_model=model_name is not None)
        group = group_identity({**metadata, "namespace": namespace}, pod.get("spec"))
    except PodFieldError as exc:
        raise InvalidValue(str(exc), exc.field) from None

    cluster = policy.cluster
    defaults = cluster.spec.defaults
    plan = PodPlan(
        namespace=namespace,
        defaults=defaults,
        workload_class=workload_class,
        priority_class=defaults.priority_classes[workload_class],  # type: ignore[index]
        group=group,
    )
    if model_name is None:
        rule = cluster.rule_for(namespace)
        _check_class_allowed(plan, rule, class_reason)
        _check_plain_pod_gpus(pod, plan, rule)
        labels = metadata.get("labels") or {}
        plan.serves_inference_service = any(label in labels for label in constants.ISVC_POD_LABELS)
        product = annotations.get(constants.GPU_PRODUCT_ANNOTATION)
        plan.gpu_product = values.label_value(constants.GPU_PRODUCT_ANNOTATION, product) if product else None
        return plan

    rule = namespace_rule(policy, namespace)
    _check_class_allowed(plan, rule, class_reason)
    model_field = annotation_field(constants.MODEL_ANNOTATION)
    plan.model = resolve_model(policy, rule, namespace, model_name, model_field)
    # The choice shows in the infergate.io/runtime label; pods skip the selection warnings to keep applies quiet.
    plan.runtime, _ = resolve_runtime(
        policy, rule, namespace, plan.model, annotations.get(constants.RUNTIME_ANNOTATION),
        annotation_field(constants.RUNTIME_ANNOTATION), model_field,
    )
    _resolve_gpus(plan, pod, rule, annotations)
    _check_group(plan)
    return plan


def _check_class_allowed(plan: PodPlan, rule: NamespaceRule | None, reason: str) -> None:
    allowed = rule.workload_classes if rule else [constants.TRAINING]
    if plan.workload_class not in allowed:
        raise AdmissionDenied(
            f"namespace {plan.namespace} may not run {plan.workload_class} workloads (from {reason}); "
            f"it may run: {', '.join(allowed) or 'none'}",
            annotation_field(constants.WORKLOAD_ANNOTATION),
        )


def _container_gpus(pod: dict[str, Any], resource: str, only: str | None = None) -> dict[int, int]:
    """GPU limits set on containers, by container index; malformed values are denied naming the field."""
    found: dict[int, int] = {}
    for index, container in enumerate((pod.get("spec") or {}).get("containers") or []):
        if only is not None and container.get("name") != only:
            continue
        resources = container.get("resources") or {}
        for kind in ("limits", "requests"):
            text = (resources.get(kind) or {}).get(resource)
            if text is None:
                continue
            field_path = f"spec.containers[{index}].resources.{kind}[{resource}]"
            if not str(text).isdigit():
                raise InvalidValue(f"{resource}: {text!r} is not a whole number of GPUs", field_path)
            found[index] = max(found.get(index, 0), int(str(text)))
    return found


def _check_plain_pod_gpus(pod: dict[str, Any], plan: PodPlan, rule: NamespaceRule | None) -> None:
    resource = plan.defaults.gpu_resource
    found = _container_gpus(pod, resource)
    plan.gpu_containers = sorted(found)
    total = sum(found.values())
    plan.gpus = total
    limit = rule.max_gpus_per_pod if rule else 0
    if total > limit:
        raise AdmissionDenied(
            f"requests {total} {resource}, more than the {limit} per pod namespace {plan.namespace} may use",
            "spec.containers[].resources",
        )


def _resolve_gpus(plan: PodPlan, pod: dict[str, Any], rule: NamespaceRule, annotations: dict[str, str]) -> None:
    assert plan.model is not None
    gpus_text = annotations.get(constants.GPUS_ANNOTATION)
    fraction_text = annotations.get(constants.GPU_FRACTION_ANNOTATION)
    if gpus_text is not None and fraction_text is not None:
        raise InvalidValue(
            f"set either {constants.GPUS_ANNOTATION} (whole GPUs) or {constants.GPU_FRACTION_ANNOTATION} "
            "(a share of one GPU), not both",
            annotation_field(constants.GPU_FRACTION_ANNOTATION),
        )
    product = annotations.get(constants.GPU_PRODUCT_ANNOTATION)
    plan.gpu_product = values.label_value(constants.GPU_PRODUCT_ANNOTATION, product) if product else plan.model.spec.gpu_product

    resource = plan.defaults.gpu_resource
    in_container = _container_gpus(pod, resource, only=plan.runtime_container_name)
    container_gpus = next(iter(in_container.values()), None)
    if fraction_text is not None:
        plan.gpu_milli = values.gpu_fraction_milli(constants.GPU_FRACTION_ANNOTATION, fraction_text)
        if plan.model.spec.multi_node:
            raise InvalidValue(
                f"model {plan.model.name} runs across {plan.model.spec.multi_node.size} pods and cannot use a share of one GPU",
                annotation_field(constants.GPU_FRACTION_ANNOTATION),
            )
        if container_gpus:
            raise InvalidValue(
                f"container {plan.runtime_container_name} requests {container_gpus} whole {resource} "
                f"but {constants.GPU_FRACTION_ANNOTATION} asks for a share of one; remove one of them",
                annotation_field(constants.GPU_FRACTION_ANNOTATION),
            )
        if rule.max_gpus_per_pod < 1:
            raise AdmissionDenied(
                f"namespace {plan.namespace} may not use GPUs", annotation_field(constants.GPU_FRACTION_ANNOTATION)
            )
        return

    if gpus_text is not None:
        plan.gpus = values.whole_gpus(constants.GPUS_ANNOTATION, gpus_text)
        if container_gpus is not None and container_gpus != plan.gpus:
            raise InvalidValue(
                f"{constants.GPUS_ANNOTATION} asks for {plan.gpus} GPUs but container "
                f"{plan.runtime_container_name} requests {container_gpus} {resource}; make them agree",
                annotation_field(constants.GPUS_ANNOTATION),
            )
        source = annotation_field(constants.GPUS_ANNOTATION)
    elif container_gpus is not None:
        plan.gpus = container_gpus
        source = f"spec.containers[{next(iter(in_container))}].resources.limits[{resource}]"
    else:
        plan.gpus = plan.model.spec.gpus
        source = annotation_field(constants.MODEL_ANNOTATION)
    if plan.gpus > rule.max_gpus_per_pod:
        raise AdmissionDenied(
            f"asks for {plan.gpus} GPUs per pod, more than the {rule.max_gpus_per_pod} namespace "
            f"{plan.namespace} may use; ask for fewer with {constants.GPUS_ANNOTATION} or ask a cluster admin",
            source,
        )


def _check_group(plan: PodPlan) -> None:
    assert plan.model is not None and plan.runtime is not None
    shape = plan.model.spec.multi_node
    if shape is None:
        return
    group = plan.group
    if group is None:
        raise AdmissionDenied(
            f"model {plan.model.name} runs as a group of {shape.size} pods; create it with a LeaderWorkerSet "
            f"of size {shape.size}, or set {constants.GROUP_ANNOTATION} and {constants.GROUP_SIZE_ANNOTATION}: \"{shape.size}\"",
            annotation_field(constants.GROUP_ANNOTATION),
        )
    if group.size is not None and group.size != shape.size:
        raise InvalidValue(
            f"model {plan.model.name} runs as a group of {shape.size} pods, but group {group.key} has size {group.size}",
            annotation_field(constants.GROUP_SIZE_ANNOTATION),
        )
    if group.rank is None:
        raise InvalidValue(
            f"the rank of this pod in group {group.key} is unknown; LeaderWorkerSet pods carry it in the "
            f"{constants.LWS_WORKER_INDEX_LABEL} label, or mark the leader with {constants.ROLE_ANNOTATION}: leader",
            f"metadata.labels[{constants.LWS_WORKER_INDEX_LABEL}]",
        )
