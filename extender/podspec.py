"""Reading Kubernetes Pods and Nodes (as JSON dicts) into the placement core's plain types."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from extender.constraints import ANYWHERE, ConstraintError, Placement, node_taints, pod_placement
from extender.core import MILLI_PER_GPU, NodeSpec, PodRequest
from infergate import constants
from infergate.podneed import pod_need
from infergate.workloads import GroupIdentity, PodFieldError, group_identity, workload_class_of
from policies.quantity import milli, whole

TERMINAL_PHASES = ("Succeeded", "Failed")


class PodSpecError(ValueError):
    """A pod or node the extender cannot read; the message names the object and the field."""


def pod_key(pod: dict[str, Any]) -> str:
    metadata = pod.get("metadata") if isinstance(pod, dict) else None
    if not isinstance(metadata, dict):
        return "(unnamed)"
    namespace, name = metadata.get("namespace") or "default", metadata.get("name") or ""
    if not isinstance(namespace, str) or not isinstance(name, str):
        return "(unnamed)"
    return f"{namespace}/{name}"


def _names(obj: Any, kind: str) -> None:
    """metadata.name (and namespace) must be strings: everything else keys objects by them."""
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict):
        raise PodSpecError(f"{kind} {pod_key(obj)}: metadata: must be an object")
    for field in ("name", "namespace"):
        if not isinstance(metadata.get(field) or "", str):
            raise PodSpecError(f"{kind} {pod_key(obj)}: metadata.{field}: must be a string")


def _shaped(reader):
    """Objects come from clients: one shaped unlike a Pod or Node (a list where an object belongs) is a
    PodSpecError naming it, like any other unreadable value, never a crash."""

    def read(obj: Any, *args: Any):
        try:
            return reader(obj, *args)
        except (AttributeError, TypeError) as exc:
            kind = "node" if reader.__name__ == "node_spec" else "pod"
            raise PodSpecError(f"{kind} {pod_key(obj)}: not shaped like a Kubernetes {kind.title()}: {exc}") from None
        except ConstraintError as exc:
            kind = "node" if reader.__name__ == "node_spec" else "pod"
            raise PodSpecError(f"{kind} {pod_key(obj)}: {exc}") from None

    read.__name__ = reader.__name__
    read.__doc__ = reader.__doc__
    return read


def _resources(container: dict[str, Any], kind: str) -> dict[str, Any]:
    return ((container.get("resources") or {}).get(kind)) or {}


# Parsed quantities by (converter, text): a cluster repeats a handful of values ("1", "16Gi") across tens of
# thousands of pods, and parsing one goes through Decimal. Only strings are kept (hashable, immutable), and
# only values that parsed.
_AMOUNTS: dict[tuple[Any, str], int] = {}
_AMOUNTS_MAX = 4096


def _amount(who: str, field: str, value: Any, convert) -> int:
    if type(value) is str:
        known = _AMOUNTS.get((convert, value))
        if known is not None:
            return known
    try:
        amount = convert(value)
    except (ValueError, TypeError, ArithmeticError) as exc:
        shown = repr(value) if len(repr(value)) <= 80 else f"{repr(value)[:60]}... ({len(repr(value))} characters)"
        detail = f" ({exc})" if "too large" in str(exc) or "longer" in str(exc) else ""
        raise PodSpecError(f"{who}: {field}: {shown} is not a quantity{detail}") from None
    if amount < 0:
        raise PodSpecError(f"{who}: {field}: {value!r} is negative")
    if type(value) is str and len(_AMOUNTS) < _AMOUNTS_MAX:
        _AMOUNTS[(convert, value)] = amount
    return amount


def _container_request(who: str, index: int, container: dict[str, Any], init: bool, gpu_resource: str) -> tuple[int, int, int, int]:
    """cpu milli, memory bytes, whole GPUs and GPU milli that one container asks for."""
    requests, limits = _resources(container, "requests"), _resources(container, "limits")
    where = f"spec.{'initContainers' if init else 'containers'}[{index}].resources"
    cpu = requests.get("cpu", limits.get("cpu", 0))
    memory = requests.get("memory", limits.get("memory", 0))
    gpus = limits.get(gpu_resource, requests.get(gpu_resource, 0))
    share = limits.get(constants.GPU_SHARE_RESOURCE, requests.get(constants.GPU_SHARE_RESOURCE, 0))
    return (
        _amount(who, f"{where}.requests.cpu", cpu, milli),
        _amount(who, f"{where}.requests.memory", memory, whole),
        _amount(who, f"{where}.limits[{gpu_resource}]", gpus, whole),
        _amount(who, f"{where}.limits[{constants.GPU_SHARE_RESOURCE}]", share, whole),
    )


def _required_products(pod: dict[str, Any], who: str) -> frozenset[str]:
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    if constants.GPU_PRODUCT_ANNOTATION in annotations:
        product = annotations[constants.GPU_PRODUCT_ANNOTATION]
        if not isinstance(product, str):
            raise PodSpecError(f"{who}: metadata.annotations[{constants.GPU_PRODUCT_ANNOTATION}]: {product!r} is not a string")
        return frozenset([product])
    affinity = ((pod.get("spec") or {}).get("affinity") or {}).get("nodeAffinity") or {}
    required = affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    for term in required.get("nodeSelectorTerms") or []:
        for expression in term.get("matchExpressions") or []:
            if expression.get("key") == constants.GPU_PRODUCT_LABEL and expression.get("operator") == "In":
                values = expression.get("values") or []
                if not all(isinstance(v, str) for v in values):
                    raise PodSpecError(f"{who}: the node affinity on {constants.GPU_PRODUCT_LABEL}: values must be strings")
                return frozenset(values)
    return frozenset()


@_shaped
def pod_request(pod: dict[str, Any], gpu_resource: str = constants.GPU_RESOURCE) -> PodRequest:
    """What the pod needs on a node, as kube-scheduler counts it (component-helpers' PodRequests): the
    containers and the sidecars (init containers with restartPolicy Always) summed; each regular init container
    runs beside the sidecars started before it; the larger of the two, per resource, plus the pod overhead."""
    who = f"pod {pod_key(pod)}"
    _names(pod, "pod")
    spec = pod.get("spec") or {}
    containers = [_container_request(who, i, c, False, gpu_resource) for i, c in enumerate(spec.get("containers") or [])]
    inits = [(_container_request(who, i, c, True, gpu_resource), c.get("restartPolicy") == "Always")
             for i, c in enumerate(spec.get("initContainers") or [])]
    cpu, memory, gpus, share = pod_need(containers, inits, 4)
    # Pod-level resources (PodLevelResources, on by default since Kubernetes 1.34) replace the containers' sum
    # for CPU and memory, as kube-scheduler counts them; GPUs stay per container.
    pod_level = _resources(spec, "requests"), _resources(spec, "limits")
    if "cpu" in pod_level[0] or "cpu" in pod_level[1]:
        cpu = _amount(who, "spec.resources.requests.cpu", pod_level[0].get("cpu", pod_level[1].get("cpu")), milli)
    if "memory" in pod_level[0] or "memory" in pod_level[1]:
        memory = _amount(who, "spec.resources.requests.memory", pod_level[0].get("memory", pod_level[1].get("memory")), whole)
    overhead = spec.get("overhead") or {}
    cpu += _amount(who, "spec.overhead.cpu", overhead.get("cpu", 0), milli)
    memory += _amount(who, "spec.overhead.memory", overhead.get("memory", 0), whole)
    if gpus and share:
        raise PodSpecError(f"{who}: asks for whole GPUs and a share of one GPU; infergate places one or the other")
    if share >= MILLI_PER_GPU:
        raise PodSpecError(f"{who}: {constants.GPU_SHARE_RESOURCE} {share} must be below {MILLI_PER_GPU} (a share of one GPU)")
    return PodRequest(cpu_milli=cpu, memory_bytes=memory, gpus=gpus, gpu_milli=share, gpu_products=_required_products(pod, who))


def slim_pod(pod: dict[str, Any]) -> dict[str, Any]:
    """The parts of a pod that pod_key, pod_facts, pod_request and gpu_index read (metadata name, namespace,
    uid, labels and annotations; spec nodeName, overhead, pod-level resources, affinity, schedulingGroup, for a
    pod not bound yet its nodeSelector and tolerations, and the containers' resources and restartPolicy; status
    phase), without the rest.

    A listed pod is several kilobytes of objects and the extender keeps only a few hundred bytes of facts
    about it: listing tens of thousands of pods, slimming each page as it arrives keeps the process small.
    Anything malformed is kept as it is, so reading the slim pod fails exactly as reading the full one.
    Keep this in step with the readers above.
    """
    metadata, spec, status = pod.get("metadata"), pod.get("spec"), pod.get("status")
    if not isinstance(metadata, dict) or not isinstance(spec, dict) or not isinstance(status, (dict, type(None))):
        return pod
    slim: dict[str, Any] = {key: pod[key] for key in ("apiVersion", "kind") if key in pod}
    slim["metadata"] = {key: metadata[key] for key in ("name", "namespace", "uid", "labels", "annotations") if key in metadata}
    # nodeSelector and tolerations are read only for pods not bound yet (PodFacts.placement); schedulingGroup
    # always (the group a bound pod belongs to decides whom preemption takes with it)
    kept = ("nodeName", "overhead", "resources", "affinity", "schedulingGroup") if spec.get("nodeName") else (
        "nodeName", "overhead", "resources", "affinity", "nodeSelector", "tolerations", "schedulingGroup")
    slim_spec = {key: spec[key] for key in kept if key in spec}
    for key in ("initContainers", "containers"):
        containers = spec.get(key)
        if isinstance(containers, list):
            slim_spec[key] = [
                {k: c[k] for k in ("resources", "restartPolicy") if k in c} if isinstance(c, dict) else c
                for c in containers
            ]
        elif key in spec:
            slim_spec[key] = containers
    slim["spec"] = slim_spec
    if status is not None:
        slim["status"] = {"phase": status["phase"]} if "phase" in status else {}
    return slim


# Far more GPUs than any node has: a larger allocatable count is a broken or hostile object, not a node.
MAX_GPUS_PER_NODE = 1024


@_shaped
def node_spec(node: dict[str, Any], gpu_resource: str = constants.GPU_RESOURCE) -> NodeSpec:
    _names(node, "node")
    metadata = node.get("metadata") or {}
    name = metadata.get("name") or ""
    who = f"node {name}"
    allocatable = (node.get("status") or {}).get("allocatable") or {}
    labels = metadata.get("labels") or {}
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        raise PodSpecError(f"{who}: metadata.labels: keys and values must be strings")
    gpus = _amount(who, f"status.allocatable[{gpu_resource}]", allocatable.get(gpu_resource, 0), whole)
    if gpus > MAX_GPUS_PER_NODE:
        raise PodSpecError(f"{who}: status.allocatable[{gpu_resource}]: {gpus} is more GPUs than a node has")
    return NodeSpec(
        name=name,
        cpu_milli=_amount(who, "status.allocatable.cpu", allocatable.get("cpu", 0), milli),
        memory_bytes=_amount(who, "status.allocatable.memory", allocatable.get("memory", 0), whole),
        gpus=gpus,
        gpu_product=labels.get(constants.GPU_PRODUCT_LABEL),
        labels=labels,
        taints=tuple(t for t in node_taints(node) if t.effect in ("NoSchedule", "NoExecute")),
    )


def gpu_index(pod: dict[str, Any]) -> int | None:
    """The GPU a fractional pod was given at binding, from its annotation (a few digits at most)."""
    value = ((pod.get("metadata") or {}).get("annotations") or {}).get(constants.GPU_INDEX_ANNOTATION)
    return int(value) if isinstance(value, str) and 0 < len(value) <= 4 and value.isdigit() else None


@dataclass(frozen=True)
class PodFacts:
    """What the extender remembers about a pod besides its allocation."""

    key: str
    uid: str
    node: str | None
    workload_class: str
    group: GroupIdentity | None
    terminal: bool
    reserved_node: str | None = None  # a gang member's node, recorded at its group's first binding
    placement: Placement = ANYWHERE  # the nodes it may use at all (selector, affinity, tolerations)
    # "namespace/name" of the LeaderWorkerSet whose worker template describes the group's members not
    # created yet; None for groups that describe no missing member
    describer: str | None = None

    @property
    def in_gang(self) -> bool:
        """Placed all-or-nothing with other pods: a group of more than one (or of unknown size)."""
        return self.group is not None and (self.group.size is None or self.group.size > 1)


@_shaped
def pod_facts(pod: dict[str, Any], placements: dict[Placement, Placement] | None = None) -> PodFacts:
    """What the extender remembers about a pod. `placements`: Placements already read, to share (pods of one
    workload say the same about where they may go; every DaemonSet pod has the same tolerations)."""
    _names(pod, "pod")
    metadata = pod.get("metadata") or {}
    labels = metadata.get("labels") or {}
    annotations = metadata.get("annotations") or {}
    for where, mapping in (("labels", labels), ("annotations", annotations)):
        if not isinstance(mapping, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()):
            raise PodSpecError(f"pod {pod_key(pod)}: metadata.{where}: keys and values must be strings")
    node = (pod.get("spec") or {}).get("nodeName") or None
    if node is not None and not isinstance(node, str):
        raise PodSpecError(f"pod {pod_key(pod)}: spec.nodeName: must be a string")
    try:
        group = group_identity(metadata, pod.get("spec"))
        workload = labels.get(constants.WORKLOAD_LABEL) or workload_class_of(metadata, has_model=constants.MODEL_ANNOTATION in (metadata.get("annotations") or {}))[0]
    except PodFieldError as exc:
        raise PodSpecError(f"pod {pod_key(pod)}: {exc}") from None
    return PodFacts(
        key=pod_key(pod),
        uid=str(metadata.get("uid") or ""),
        node=node,
        workload_class=workload if workload in constants.WORKLOAD_CLASSES else constants.TRAINING,
        group=group,
        terminal=(pod.get("status") or {}).get("phase") in TERMINAL_PHASES,
        reserved_node=annotations.get(constants.RESERVED_NODE_ANNOTATION),
        # Where it may go matters only while it waits for a node (a gang member planned with its group).
        placement=ANYWHERE if node else _shared(pod_placement(pod.get("spec") or {}), placements),
        describer=f"{metadata.get('namespace') or 'default'}/{labels[constants.LWS_NAME_LABEL]}"
        if group is not None and group.source == "LeaderWorkerSet" else None,
    )


def _shared(placement: Placement, placements: dict[Placement, Placement] | None) -> Placement:
    if placement is ANYWHERE or placements is None:
        return placement
    return placements.setdefault(placement, placement)


@dataclass(frozen=True)
class Shape:
    request: PodRequest
    placement: Placement


@dataclass(frozen=True)
class Template:
    """The pods an object will create, as the extender plans them before they exist: a LeaderWorkerSet's
    leader (rank 0) and workers."""

    worker: Shape
    leader: Shape

    def of_rank(self, rank: int | None) -> Shape:
        return self.leader if rank == 0 else self.worker


def worker_template(lws: dict[str, Any], gpu_resource: str = constants.GPU_RESOURCE) -> Template:
    """A LeaderWorkerSet's pods (spec.leaderWorkerTemplate: workerTemplate, and leaderTemplate, which
    defaults to it), read as pods are; raises PodSpecError naming the field."""
    if not isinstance(lws, dict):
        raise PodSpecError("LeaderWorkerSet: not an object")
    metadata = lws.get("metadata") if isinstance(lws.get("metadata"), dict) else {}
    who = f"LeaderWorkerSet {metadata.get('namespace')}/{metadata.get('name')}"
    spec = lws.get("spec") if isinstance(lws.get("spec"), dict) else {}
    templates = spec.get("leaderWorkerTemplate") if isinstance(spec.get("leaderWorkerTemplate"), dict) else {}

    def shape(field: str) -> Shape | None:
        template = templates.get(field)
        if template is None:
            return None
        if not isinstance(template, dict) or not isinstance(template.get("spec"), dict):
            raise PodSpecError(f"{who}: spec.leaderWorkerTemplate.{field}: not a pod template")
        shaped = template.get("metadata") if isinstance(template.get("metadata"), dict) else {}
        pod = {"metadata": {**shaped, "name": f"{metadata.get('name')}-{field}", "namespace": metadata.get("namespace")},
               "spec": template["spec"]}
        try:
            return Shape(pod_request(pod, gpu_resource), pod_placement(template["spec"]))
        except (PodSpecError, ConstraintError) as exc:
            raise PodSpecError(f"{who}: {field}: {exc}") from None

    worker = shape("workerTemplate")
    if worker is None:
        raise PodSpecError(f"{who}: spec.leaderWorkerTemplate.workerTemplate: missing")
    return Template(worker, shape("leaderTemplate") or worker)
