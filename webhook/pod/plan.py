"""What an opted-in pod needs, decided once from its annotations, labels and the policy.

The plan holds every decision and every validation, so the injectors only write; a pod that cannot be served
is denied here, before anything is changed, and nothing is half-applied.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from infergate import constants
from infergate.workloads import GroupIdentity, PodFieldError, group_identity, server_family, serving_markers, workload_class_of
from policies.loader import Policy
from policies.schema import Defaults, Model, NamespaceRule, PriorityClassRef, Runtime
from policies.selection import select_runtime
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
    # Who places the pod when not the scheduler: "spec.nodeName" (bound by its author) or "DaemonSet NAME" (its
    # controller pins each pod to a node). Such pods get no schedulerName and no product affinity.
    placed_by: str | None = None
    untouched: bool = False  # a DaemonSet's pod without a model: a node agent, left as it is
    # The serving container gets its devices from Dynamic Resource Allocation (resources.claims): no device
    # plugin resource is added beside them.
    dra_claims: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def placed_by_scheduler(self) -> bool:
        return self.placed_by is None

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


def _daemonset(metadata: dict[str, Any]) -> str | None:
    for owner in metadata.get("ownerReferences") or []:
        if owner.get("kind") == "DaemonSet" and owner.get("controller"):
            return str(owner.get("name") or "")
    return None


def _inference_service(metadata: dict[str, Any]) -> str | None:
    """The InferenceService whose controller made this pod (KServe's and OME's pod labels), if any."""
    labels = metadata.get("labels") or {}
    for label in (constants.KSERVE_ISVC_POD_LABEL, constants.OME_ISVC_POD_LABEL):
        if isinstance(labels.get(label), str):
            return labels[label]
    return None


def _plan(pod: dict[str, Any], namespace: str, policy: Policy) -> PodPlan:
    metadata = pod.get("metadata") or {}
    annotations: dict[str, str] = metadata.get("annotations") or {}
    values.check_no_padding(annotations)
    model_name = annotations.get(constants.MODEL_ANNOTATION)
    cluster = policy.cluster
    defaults = cluster.spec.defaults
    found_rule = cluster.rule_for(namespace)
    default_class = found_rule.default_class if found_rule else constants.TRAINING
    daemonset = _daemonset(metadata)
    if daemonset is not None and model_name is None:
        # Node agents (device plugins, exporters, log shippers): their controller runs one per node; a class, a
        # scheduler or a GPU requirement of ours would only leave some of them pending.
        return PodPlan(namespace=namespace, defaults=defaults, workload_class=default_class,
                       priority_class=defaults.priority_classes[default_class], untouched=True)  # type: ignore[index]
    node_name = (pod.get("spec") or {}).get("nodeName")
    controller = _inference_service(metadata)
    model_of_isvc = None
    if controller is not None and model_name is not None:
        # KServe (and OME) copy the InferenceService's annotations onto its pods: the model was defaulted on the
        # InferenceService, and the controller built the serving container from its own runtime. Merging ours
        # into it would replace KServe's server with another; the annotation only classes the pod here.
        model_of_isvc, model_name = model_name, None
    try:
        workload_class, class_reason = workload_class_of(
            metadata, has_model=(model_name or model_of_isvc) is not None, spec=pod.get("spec"), default=default_class
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
        placed_by=f"DaemonSet {daemonset}" if daemonset is not None else ("spec.nodeName" if node_name else None),
    )
    _check_priority_class(plan, pod)
    if model_name is None:
        rule = found_rule
        _check_class_allowed(plan, rule, class_reason)
        _check_plain_pod_gpus(asks, plan, rule)
        plan.serves_inference_service = (
            workload_class == constants.INFERENCE and serving_markers(metadata, pod.get("spec")) is not None
        )
        product = annotations.get(constants.GPU_PRODUCT_ANNOTATION)
        plan.gpu_product = values.label_value(constants.GPU_PRODUCT_ANNOTATION, product) if product else None
        if model_of_isvc is not None:
            known = policy.models.get(model_of_isvc)
            if known is not None and not product:
                plan.gpu_product = known.spec.gpu_product
            plan.warnings.append(
                f"pod of InferenceService {controller}: {constants.MODEL_ANNOTATION} {model_of_isvc} came from the "
                "InferenceService, whose controller built the serving container; no runtime is injected into it")
        _check_placement(plan, pod, product is not None)
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
    if plan.container.exists:
        _match_server(plan, policy, rule, pod, asks, constants.RUNTIME_ANNOTATION in annotations)
    if not plan.container.exists:
        _check_no_serving_sidecar(pod, asks)
    if not plan.container.exists and (pod.get("spec") or {}).get("containers"):
        others = ", ".join(c.get("name", "") for c in pod["spec"]["containers"])
        plan.warnings.append(
            f"added container {plan.container.name} to serve model {plan.model.name} beside {others}: none of them asks "
            f"for GPUs, runs a model server or is named {plan.container.name}; to serve from your own container, name it "
            f"{plan.container.name} or give it the GPU limit"
        )
    _resolve_gpus(plan, asks, rule, annotations, pod)
    _check_group(plan)
    _check_placement(plan, pod, constants.GPU_PRODUCT_ANNOTATION in annotations)
    return plan


def _runtime_family(runtime: Runtime) -> str | None:
    return server_family({"image": runtime.spec.image, "command": runtime.spec.command or []})


def _match_server(plan: PodPlan, policy: Policy, rule: NamespaceRule, pod: dict[str, Any], asks: PodAccelerators,
                  named: bool) -> None:
    """The runtime whose server the user's container runs: its flags are that server's. An automatic choice
    follows the container (SGLang's container gets the sglang runtime); a named runtime that runs another
    server, or a server no runtime of the policy runs, is a 400 rather than one server's flags on another."""
    assert plan.runtime is not None and plan.model is not None and plan.container is not None
    container = next(c for c in pod["spec"]["containers"] if c.get("name") == plan.container.name)
    family = server_family(container)
    if family is None or _runtime_family(plan.runtime) in (family, None):
        return
    script = serving.shell_script(container)
    if script is not None and (script.parameters or not script.reads_parameters()):
        return  # a script that runs as written: no flag of the runtime reaches its server
    field = f"spec.containers[{pod['spec']['containers'].index(container)}]"
    if named:
        raise InvalidValue(
            f"runtime {plan.runtime.name} runs another server than container {plan.container.name}, which runs {family}; "
            f"name a runtime that runs {family} in {constants.RUNTIME_ANNOTATION} or leave it out",
            annotation_field(constants.RUNTIME_ANNOTATION),
        )
    fitting = [r for r in policy.runtimes.values() if _runtime_family(r) == family]
    selection = select_runtime(plan.model, fitting, rule)
    if selection.runtime is None:
        reasons = "; ".join(str(r) for r in selection.rejected) or f"no runtime of the policy runs {family}"
        raise InvalidValue(
            f"container {plan.container.name} runs {family}, and no runtime that runs it can serve model "
            f"{plan.model.name} here ({reasons}); run a server of a policy runtime or remove {constants.MODEL_ANNOTATION}",
            field,
        )
    plan.warnings.append(f"runtime {selection.runtime.name} chosen: container {plan.container.name} runs {family}")
    plan.runtime = selection.runtime
    plan.container = serving.choose(pod, plan.runtime.spec.container_name, asks)


def _check_priority_class(plan: PodPlan, pod: dict[str, Any]) -> None:
    """One of infergate's priority classes that is not the pod's class is a contradiction, not a choice to
    overwrite: the class decides preemption (inference is never a victim of training)."""
    named = (pod.get("spec") or {}).get("priorityClassName")
    ours = {ref.name: cls for cls, ref in plan.defaults.priority_classes.items()}
    if named in ours and named != plan.priority_class.name:
        raise InvalidValue(
            f"spec.priorityClassName {named} is infergate's class for {ours[named]} workloads, but this pod is "
            f"{plan.workload_class}; set {constants.WORKLOAD_ANNOTATION}: {ours[named]} or leave priorityClassName out",
            "spec.priorityClassName",
        )


def _check_placement(plan: PodPlan, pod: dict[str, Any], product_annotated: bool) -> None:
    """Pods the scheduler does not place, and a product the user's nodeSelector contradicts."""
    spec = pod.get("spec") or {}
    selected = (spec.get("nodeSelector") or {}).get(constants.GPU_PRODUCT_LABEL)
    if plan.gpu_product and selected is not None and selected != plan.gpu_product:
        if product_annotated:
            raise InvalidValue(
                f"spec.nodeSelector[{constants.GPU_PRODUCT_LABEL}] is {selected} but {constants.GPU_PRODUCT_ANNOTATION} "
                f"asks for {plan.gpu_product}; no node has both: make them agree",
                f"spec.nodeSelector[{constants.GPU_PRODUCT_LABEL}]",
            )
        plan.warnings.append(f"keeps spec.nodeSelector[{constants.GPU_PRODUCT_LABEL}] {selected} over the product "
                             f"{plan.gpu_product} of model {plan.model.name if plan.model else ''}".rstrip())
        plan.gpu_product = selected
    if plan.placed_by is None:
        return
    if plan.gpu_milli:
        raise InvalidValue(
            f"{constants.GPU_FRACTION_ANNOTATION} needs infergate's scheduler to pick the GPU, but {plan.placed_by} "
            f"places this pod; remove {'spec.nodeName' if plan.placed_by == 'spec.nodeName' else 'the annotation'} "
            "or ask for whole GPUs",
            "spec.nodeName" if plan.placed_by == "spec.nodeName" else annotation_field(constants.GPU_FRACTION_ANNOTATION),
        )
    if plan.model is not None or plan.gpus or plan.group is not None:
        plan.warnings.append(
            f"{plan.placed_by} places this pod, not the scheduler: infergate sets no schedulerName"
            + (f" and no node affinity to {plan.gpu_product}" if plan.gpu_product else "")
            + ("; its group is not placed all-or-nothing" if plan.group is not None else "")
        )


def _check_no_serving_sidecar(pod: dict[str, Any], asks: PodAccelerators) -> None:
    """A sidecar (an init container with restartPolicy: Always) that runs the model server or asks for GPUs,
    beside app containers that do not: the runtime would be added as a second server next to it."""
    for index, container in enumerate((pod.get("spec") or {}).get("initContainers") or []):
        ask = next((a for a in asks.asks if a.init and a.index == index), None)
        if ask is None or not ask.sidecar:
            continue
        if ask.amounts or serving.looks_like_server(container):
            raise InvalidValue(
                f"sidecar {ask.name} (an init container with restartPolicy: Always) "
                f"{'asks for GPUs' if ask.amounts else 'runs a model server'}; infergate serves the model from a "
                "container of spec.containers: move the server there",
                f"spec.initContainers[{index}]",
            )


def _check_class_allowed(plan: PodPlan, rule: NamespaceRule | None, reason: str) -> None:
    allowed = rule.workload_classes if rule else [constants.TRAINING]
    if plan.workload_class not in allowed:
        raise AdmissionDenied(
            f"namespace {plan.namespace} may not run {plan.workload_class} workloads (from {reason}); "
            f"it may run: {', '.join(allowed) or 'none'}",
            annotation_field(constants.WORKLOAD_ANNOTATION),
        )


def _gpus_per_pod(asks: PodAccelerators, gpu_resource: str, replace: tuple[str, int] | None = None) -> int:
    """Accelerators of the whole pod, of every vendor (nvidia.com/gpu, amd.com/gpu, gpu.intel.com/i915,
    habana.ai/gaudi, aws.amazon.com/neuron, google.com/tpu ...): every container, sidecar and init container,
    the Kubernetes way. A share of one GPU is not a whole one."""
    resources = {r for a in asks.asks for r in a.amounts if r != constants.GPU_SHARE_RESOURCE} | {gpu_resource}
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


def _resolve_gpus(plan: PodPlan, asks: PodAccelerators, rule: NamespaceRule, annotations: dict[str, str],
                  pod: dict[str, Any]) -> None:
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
    if other is not None and own is not None and own.amounts.get(resource):
        raise InvalidValue(
            f"container {name} asks for both {resource} and {other[0]}; a model is served on one vendor's GPUs",
            f"spec.containers[{own.index}].resources.limits",
        )
    if other is not None:
        # Another vendor's GPUs: the user's container keeps them, and they are the count the templates see.
        plan.accelerator, container_gpus = other
        if not product:
            plan.gpu_product = None  # the model's product is an NVIDIA node label
    else:
        container_gpus = own.amounts.get(resource) if own is not None else None
    container_field = f"spec.containers[{own.index}].resources.limits[{plan.accelerator}]" if own is not None else None
    plan.dra_claims = _claims_devices(pod, name) and not container_gpus
    if plan.dra_claims:
        plan.warnings.append(f"container {name} gets its devices from resources.claims (DRA): infergate adds no "
                             f"{resource}; the templates count {gpus_text or plan.model.spec.gpus} GPUs")
    if fraction_text is not None and plan.dra_claims:
        raise InvalidValue(
            f"{constants.GPU_FRACTION_ANNOTATION} asks infergate's scheduler for a share of one GPU, but container {name} "
            "gets its devices from resources.claims (DRA); use one of them",
            annotation_field(constants.GPU_FRACTION_ANNOTATION),
        )
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


def _claims_devices(pod: dict[str, Any], name: str) -> bool:
    for container in (pod.get("spec") or {}).get("containers") or []:
        if container.get("name") == name:
            return bool(((container.get("resources") or {}).get("claims")))
    return False


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
    group = plan.group
    if shape is None:
        if group is not None and group.size and group.size > 1:
            plan.warnings.append(
                f"model {plan.model.name} runs in one pod, but group {group.key} has {group.size} pods: each gets "
                f"the runtime's single-pod flags (the group is still placed all-or-nothing)")
        return
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
