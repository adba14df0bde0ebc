"""What OME and KServe components share: replica bounds and GPU resources, defaulted and checked.

Precedence, lowest first: the policy's defaults, the runtime, the model, then the user's own spec, which
always wins: every default here is written only where the user wrote nothing.
"""

from __future__ import annotations

from typing import Any

from infergate import constants
from policies.schema import NamespaceRule, ReplicaBounds
from webhook.errors import AdmissionDenied, InvalidValue
from webhook.pod.accelerators import OTHER_VENDOR_PREFIXES
from webhook.patch import PatchBuilder, Path, dotted


def _int_at(patch: PatchBuilder, path: Path) -> int | None:
    value = patch.get(path)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidValue(f"{dotted(path)}: {value!r:.80} is not a whole number", dotted(path))
    return value


def replicas(patch: PatchBuilder, component: Path, bounds: ReplicaBounds) -> None:
    """Check the user's bounds, then fill in the missing ones from the policy."""
    low = _int_at(patch, component + ("minReplicas",))
    high = _int_at(patch, component + ("maxReplicas",))
    if low is not None and low < 0:
        raise InvalidValue(f"{dotted(component)}.minReplicas: {low} is negative", dotted(component + ("minReplicas",)))
    if high is not None and high < 1:
        raise InvalidValue(f"{dotted(component)}.maxReplicas: {high} must be at least 1", dotted(component + ("maxReplicas",)))
    if low is not None and high is not None and high < low:
        raise InvalidValue(
            f"{dotted(component)}: maxReplicas {high} is less than minReplicas {low}", dotted(component + ("maxReplicas",))
        )
    low = low if low is not None else (min(bounds.min, high) if high is not None else bounds.min)
    patch.set_default(component + ("minReplicas",), low)
    patch.set_default(component + ("maxReplicas",), max(bounds.max, low, 1))


def gpus(patch: PatchBuilder, resources: Path, count: int | None, resource: str, rule: NamespaceRule, namespace: str) -> int:
    """Default the GPU requests and limits of one container's resources; return the count in force.

    `count` None: no default (a model infergate does not know; GPUs as the object asks). Another vendor's GPUs in the resources are left as they are (and count against the cap); a request that
    differs from the limit is refused, as Kubernetes would refuse the pods."""
    mapping_at(patch, resources)
    amounts: dict[str, dict[str, int]] = {}
    for kind in ("limits", "requests"):
        for name, value in (mapping_at(patch, resources + (kind,)) or {}).items():
            if name == resource or name.startswith(OTHER_VENDOR_PREFIXES):
                path = resources + (kind, name)
                if isinstance(value, bool) or not str(value).isdigit():
                    raise InvalidValue(f"{dotted(path)}: {value!r:.80} is not a whole number of GPUs", dotted(path))
                amounts.setdefault(name, {})[kind] = int(str(value))
    for name, kinds in amounts.items():
        if "limits" in kinds and "requests" in kinds and kinds["limits"] != kinds["requests"]:
            path = dotted(resources + ("requests", name))
            raise InvalidValue(f"{path}: {kinds['requests']} differs from the limit {kinds['limits']}; GPUs cannot be "
                               "overcommitted, so requests must equal limits", path)
    other = next((n for n in amounts if n != resource), None)
    used = other or resource
    kinds = amounts.get(used, {})
    effective = kinds.get("limits", kinds.get("requests", count))
    if effective is None:
        return 0
    if effective > rule.max_gpus_per_pod:
        raise AdmissionDenied(
            f"{dotted(resources)}: {effective} {used} per pod is more than the {rule.max_gpus_per_pod} "
            f"namespace {namespace} may use",
            dotted(resources + ("limits", used)),
        )
    if other is None:
        for kind in ("limits", "requests"):
            patch.set_default(resources + (kind, resource), str(effective))
    return effective


def product_annotation(patch: PatchBuilder, component: Path, product: str | None) -> None:
    """Pods of the component carry the product, so the pod webhook adds the node affinity; not where the
    component's own nodeSelector already names a product (the user's choice; the pods would be denied for
    asking two products)."""
    selector = mapping_at(patch, component + ("nodeSelector",)) or {}
    selected = selector.get(constants.GPU_PRODUCT_LABEL)
    written = (mapping_at(patch, component + ("annotations",)) or {}).get(constants.GPU_PRODUCT_ANNOTATION)
    if selected is not None and written is not None and written != selected:
        field = f"{dotted(component)}.nodeSelector[{constants.GPU_PRODUCT_LABEL}]"
        raise InvalidValue(f"{field} is {selected} but {dotted(component)}.annotations[{constants.GPU_PRODUCT_ANNOTATION}] "
                           f"asks for {written}; no node has both: make them agree", field)
    if product and selected is None:
        patch.set_default(component + ("annotations", constants.GPU_PRODUCT_ANNOTATION), product)


def mapping_at(patch: PatchBuilder, path: Path) -> dict[str, Any] | None:
    value = patch.get(path)
    if value is not None and not isinstance(value, dict):
        raise InvalidValue(f"{dotted(path)}: must be an object, not {type(value).__name__}", dotted(path))
    return value
