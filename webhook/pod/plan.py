"""What an opted-in pod needs, decided once from its annotations, labels and the policy.

The plan holds every decision and every validation, so the injectors only write; a pod that cannot be served
is denied here, before anything is changed, and nothing is half-applied.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from infergate import constants
from infergate.workloads import GroupIdentity, PodFieldError, group_identity, serving_markers, workload_class_of
from policies.loader import Policy
from policies.schema import Defaults, Model, NamespaceRule, PriorityClassRef, Runtime
from webhook.errors import AdmissionDenied, InvalidValue
from webhook.pod import accelerators, serving, values
from webhook.pod.accelerators import PodAccelerators
from webhook.pod.serving import ServingContainer
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
    # Serving pods without a model of ours (OME, KServe, LeaderWorkerSet, llm-d pods, model server containers):
    # their own containers already ask for GPUs, and get the placement wiring around them.
    serves_inference_service: bool = False
    gpu_containers: list[int] = field(default_factory=list)  # indexes of containers that request GPUs
    # The container the runtime is merged into (or added as), and the accelerator resource it counts: the
    # policy's GPU resource, or another vendor's that the user's container asks for (left untouched).
    container: ServingContainer | None = None
    accelerator: str = constants.GPU_RESOURCE
    # Whether the pod already carries infergate's record: a re-admission (reinvocation, or a copy of our output).
    readmission: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def other_vendor(self) -> bool:
        return self.accelerator != self.defaults.gpu_resource

    @property
    def needs_shm(self) -> bool:
        return self.gpus > 1 or (self.group is not None and (self.serves_inference_service or self.model is not None))

    @property
    def runtime_container_name(self) -> str:
        """The name of the serving container: the user's container the runtime is merged into, or the runtime's."""
        assert self.runtime is not None
        return self.container.name if self.container is not None else self.runtime.spec.container_name

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
    values.check_no_padding(annotations)
    model_name = annotations.get(constants.MODEL_ANNOTATION)
    cluster = policy.cluster
    defaults = cluster.spec.defaults
    found_rule = cluster.rule_for(namespace)
    default_class = found_rule.default_class if found_rule else constants.TRAINING
    try:
        workload_class, class_reason = workload_class_of(
            metadata, has_model=model_name is not None, spec=pod.get("spec"), default=default_class
        )
        group = group_identity({**metadata, "namespace": namespace})
    except PodFieldError as exc:
        raise InvalidValue(str(exc), exc.field) from None
    demoted = None
    if class_reason.startswith("serving pod") and found_rule and workload_class not in found_rule.workload_classes:
        # Recognised as serving by its labels or image, not claimed: a namespace that may not run inference
        # keeps it in its default class rather than refusing it.
        demoted = (f"serves a model ({class_reason}) but namespace {namespace} may not run {workload_class} "
                   f"workloads: it gets the namespace's default class {default_class}")
        workload_class, class_reason = default_class, "the namespace's default class"
    asks = accelerators.read(pod, defaults.gpu_resource)

    plan = PodPlan(
        namespace=namespace,
        defaults=defaults,
        workload_class=workload_class,
        priority_class=defaults.priority_classes[workload_class],  # type: ignore[index]
        group=group,
        accelerator=defaults.gpu_resource,
        readmission=constants.INJECTED_ANNOTATION in annotations,
        warnings=[demoted] if demoted else [],
    )
    if model_name is None:
        rule = found_rule
        _check_class_allowed(plan, rule, class_reason)
        _check_plain_pod_gpus(asks, plan, rule)
        plan.serves_inference_service = (
            workload_class == constants.INFERENCE and serving_markers(metadata, pod.get("spec")) is not None
        )
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
    plan.container = serving.choose(pod, plan.runtime.spec.container_name, asks)
    if not plan.container.exists and (pod.get("spec") or {}).get("containers"):
        others = ", ".join(c.get("name", "") for c in pod["spec"]["containers"])
        plan.warnings.append(
            f"added container {plan.container.name} to serve model {plan.model.name} beside {others}: none of them asks "
            f"for GPUs, runs a model server or is named {plan.container.name}; to serve from your own container, name it "
            f"{plan.container.name} or give it the GPU limit"
        )
    _resolve_gpus(plan, asks, rule, annotations)
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


def _gpus_per_pod(asks: PodAccelerators, gpu_resource: str, replace: tuple[str, int] | None = None) -> int:
    """GPUs of the whole pod, of every vendor: every container, sidecar and init container, the Kubernetes way."""
    resources = {r for a in asks.asks for r in a.amounts if r == gpu_resource or r.endswith("/gpu")} | {gpu_resource}
    return sum(asks.app(r, replace=replace if r == gpu_resource else None) for r in resources)


def _check_plain_pod_gpus(asks: PodAccelerators, plan: PodPlan, rule: NamespaceRule | None) -> None:
    resource = plan.defaults.gpu_resource
    plan.gpu_containers = [a.index for a in asks.asks if not a.init and a.amounts.get(resource)]
    plan.gpus = asks.app(resource)
    total = _gpus_per_pod(asks, resource)
    limit = rule.max_gpus_per_pod if rule else 0
    if total > limit:
        raise AdmissionDenied(
            f"asks for {total} GPUs per pod ({_gpu_listing(asks, resource)}), more than the {limit} per pod namespace "
            f"{plan.namespace} may use",
            "spec.containers[].resources",
        )


def _gpu_listing(asks: PodAccelerators, resource: str, replace: tuple[str, int] | None = None) -> str:
    parts = []
    for ask in asks.asks:
        amounts = dict(ask.amounts)
        if replace is not None and not ask.init and ask.name == replace[0]:
            amounts[resource] = replace[1]
        parts += [f"{'init container' if ask.init else 'container'} {ask.name}: {n} {r}" for r, n in amounts.items() if n]
    if replace is not None and asks.of(replace[0]) is None and replace[1]:
        parts.append(f"container {replace[0]}: {replace[1]} {resource}")
    return ", ".join(parts) or "none"


def _resolve_gpus(plan: PodPlan, asks: PodAccelerators, rule: NamespaceRule, annotations: dict[str, str]) -> None:
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
    name = plan.runtime_container_name
    own = asks.of(name)
    other = asks.other_vendor(name, resource)
    if other is not None:
        # Another vendor's GPUs: the user's container keeps them, and they are the count the templates see.
        plan.accelerator, container_gpus = other
        if not product:
            plan.gpu_product = None  # the model's product is an NVIDIA node label
    else:
        container_gpus = own.amounts.get(resource) if own is not None else None
    container_field = f"spec.containers[{own.index}].resources.limits[{plan.accelerator}]" if own is not None else None
    if fraction_text is not None:
        plan.gpu_milli = values.gpu_fraction_milli(constants.GPU_FRACTION_ANNOTATION, fraction_text)
        if plan.model.spec.multi_node:
            raise InvalidValue(
                f"model {plan.model.name} runs across {plan.model.spec.multi_node.size} pods and cannot use a share of one GPU",
                annotation_field(constants.GPU_FRACTION_ANNOTATION),
            )
        if container_gpus:
            raise InvalidValue(
                f"container {name} requests {container_gpus} whole {plan.accelerator} "
                f"but {constants.GPU_FRACTION_ANNOTATION} asks for a share of one; remove one of them",
                annotation_field(constants.GPU_FRACTION_ANNOTATION),
            )
        if rule.max_gpus_per_pod < 1:
            raise AdmissionDenied(
                f"namespace {plan.namespace} may not use GPUs", annotation_field(constants.GPU_FRACTION_ANNOTATION)
            )
        _check_pod_total(plan, asks, rule, 0, annotation_field(constants.GPU_FRACTION_ANNOTATION))
        return

    if gpus_text is not None:
        plan.gpus = values.whole_gpus(constants.GPUS_ANNOTATION, gpus_text)
        if container_gpus is not None and container_gpus != plan.gpus:
            raise InvalidValue(
                f"{constants.GPUS_ANNOTATION} asks for {plan.gpus} GPUs but container "
                f"{name} requests {container_gpus} {plan.accelerator}; make them agree",
                annotation_field(constants.GPUS_ANNOTATION),
            )
        source = annotation_field(constants.GPUS_ANNOTATION)
    elif container_gpus is not None:
        plan.gpus = container_gpus
        source = container_field or "spec.containers"
    else:
        plan.gpus = plan.model.spec.gpus
        source = annotation_field(constants.MODEL_ANNOTATION)
    _check_pod_total(plan, asks, rule, 0 if plan.other_vendor else plan.gpus, source)


def _check_pod_total(plan: PodPlan, asks: PodAccelerators, rule: NamespaceRule, serving_gpus: int, source: str) -> None:
    """The cap is per pod: the serving container's GPUs with every other container's, the Kubernetes way."""
    resource = plan.defaults.gpu_resource
    replace = (plan.runtime_container_name, serving_gpus)
    total = _gpus_per_pod(asks, resource, replace)
    if total > rule.max_gpus_per_pod:
        raise AdmissionDenied(
            f"asks for {total} GPUs per pod ({_gpu_listing(asks, resource, replace)}), more than the "
            f"{rule.max_gpus_per_pod} namespace {plan.namespace} may use; ask for fewer with "
            f"{constants.GPUS_ANNOTATION} or ask a cluster admin",
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
