"""Accelerators a pod asks for, read the way Kubernetes reads them, checked before anything is injected.

Extended resources (every GPU is one) cannot be overcommitted: Kubernetes requires a limit and takes the request
from it, so a request that differs from the limit is refused here with the field named, instead of by the API
server after infergate has planned around it. A pod's need is what the scheduler counts, and what the extender
places (`infergate.podneed`): the sum over its containers and sidecars (init containers with `restartPolicy:
Always`), or the peak of the init phase (each other init container beside the sidecars started before it) if that
is more.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from infergate import constants
from infergate.podneed import pod_need
from webhook.errors import InvalidValue

# Device plugins of other vendors. A container asking for one of these is left to that vendor's device:
# infergate adds no nvidia.com/gpu next to it.
OTHER_VENDOR_PREFIXES = ("amd.com/", "gpu.intel.com/", "habana.ai/", "aws.amazon.com/neuron", "google.com/tpu", "qualcomm.com/")


def is_accelerator(resource: str, gpu_resource: str) -> bool:
    return resource in (gpu_resource, constants.GPU_SHARE_RESOURCE) or resource.startswith(OTHER_VENDOR_PREFIXES)


@dataclass
class ContainerAsk:
    index: int
    name: str
    init: bool
    sidecar: bool  # an init container that keeps running beside the app containers
    amounts: dict[str, int] = field(default_factory=dict)  # accelerator resource -> whole units


@dataclass
class PodAccelerators:
    asks: list[ContainerAsk]

    def app(self, resource: str, *, replace: tuple[str, int] | None = None) -> int:
        """What the pod needs of the resource (`pod_need`, as the extender counts it); `replace` counts
        (app container name, amount) instead of that container's own, adding it when there is none."""
        def amount(ask: ContainerAsk) -> int:
            if replace is not None and not ask.init and ask.name == replace[0]:
                return replace[1]
            return ask.amounts.get(resource, 0)

        containers = [(amount(a),) for a in self.asks if not a.init]
        if replace is not None and not any(not a.init and a.name == replace[0] for a in self.asks):
            containers.append((replace[1],))
        inits = [((amount(a),), a.sidecar) for a in self.asks if a.init]
        return pod_need(containers, inits, 1)[0]

    def of(self, name: str) -> ContainerAsk | None:
        return next((a for a in self.asks if not a.init and a.name == name), None)

    def other_vendor(self, name: str, gpu_resource: str) -> tuple[str, int] | None:
        ask = self.of(name)
        if ask is None:
            return None
        return next(((r, n) for r, n in ask.amounts.items() if r not in (gpu_resource, constants.GPU_SHARE_RESOURCE)), None)


def _whole(value: Any, field_path: str, resource: str) -> int:
    text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    if text is None or not text.isdigit():
        raise InvalidValue(f"{field_path}: {value!r:.80} is not a whole number of {resource}", field_path)
    return int(text)


def read(pod: dict[str, Any], gpu_resource: str) -> PodAccelerators:
    spec = pod.get("spec") or {}
    asks: list[ContainerAsk] = []
    for key in ("initContainers", "containers"):
        for index, container in enumerate(spec.get(key) or []):
            init = key == "initContainers"
            ask = ContainerAsk(index, container.get("name", ""), init, init and container.get("restartPolicy") == "Always")
            resources = container.get("resources") or {}
            limits = resources.get("limits") or {}
            requests = resources.get("requests") or {}
            for resource in dict.fromkeys([*limits, *requests]):
                if not is_accelerator(resource, gpu_resource):
                    continue
                where = f"spec.{key}[{index}].resources"
                limit = limits.get(resource)
                request = requests.get(resource)
                if limit is None:
                    raise InvalidValue(
                        f"container {ask.name} requests {request} {resource} without a limit; GPUs cannot be "
                        f"overcommitted: set limits.{resource} (the request follows it)",
                        f"{where}.limits[{resource}]",
                    )
                amount = _whole(limit, f"{where}.limits[{resource}]", resource)
                if request is not None and _whole(request, f"{where}.requests[{resource}]", resource) != amount:
                    raise InvalidValue(
                        f"container {ask.name} requests {request} {resource} but its limit is {limit}; GPUs cannot "
                        f"be overcommitted, so requests must equal limits (or leave the request out)",
                        f"{where}.requests[{resource}]",
                    )
                ask.amounts[resource] = amount
            asks.append(ask)
    return PodAccelerators(asks)
