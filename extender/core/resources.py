"""Plain data the placement core works on: what a pod asks for, what a node offers, what was given."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from infergate.constants import MILLI_PER_GPU

__all__ = [
    "MILLI_PER_GPU",
    "Allocation",
    "AlreadyAllocated",
    "DoesNotFit",
    "NodeSpec",
    "PlacementError",
    "PodRequest",
    "UnknownNode",
    "UnknownPod",
]


class PlacementError(Exception):
    """Base of every error the core raises; the message is meant for a person."""


class UnknownNode(PlacementError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "unknown node"


class UnknownPod(PlacementError, KeyError):
    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown pod"


class AlreadyAllocated(PlacementError):
    """The pod already holds resources elsewhere or in another shape; release it first."""


class DoesNotFit(PlacementError):
    """The node cannot take the pod; the message is the per-node reason."""


@dataclass(frozen=True, slots=True)
class PodRequest:
    """What one pod needs. A pod asks either for whole GPUs or for a share of one GPU, never both.

    `gpu_milli` is a share of a single GPU in thousandths (0 < gpu_milli < 1000); a request for exactly one
    whole GPU is `gpus=1`, so every request has one canonical form (see `from_per_gpu`).
    """

    cpu_milli: int = 0
    memory_bytes: int = 0
    gpus: int = 0
    gpu_milli: int = 0
    gpu_products: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        for name in ("cpu_milli", "memory_bytes", "gpus", "gpu_milli"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        if self.gpu_milli >= MILLI_PER_GPU:
            raise ValueError(f"gpu_milli must be below {MILLI_PER_GPU} (a share of one GPU), got {self.gpu_milli}")
        if self.gpus and self.gpu_milli:
            raise ValueError("a pod asks for whole GPUs or for a share of one GPU, not both")
        if not isinstance(self.gpu_products, frozenset):
            object.__setattr__(self, "gpu_products", frozenset(self.gpu_products))

    @classmethod
    def from_per_gpu(
        cls,
        *,
        cpu_milli: int,
        memory_bytes: int,
        num_gpu: int,
        milli_per_gpu: int,
        gpu_products: frozenset[str] | set[str] = frozenset(),
    ) -> PodRequest:
        """Build from the openb shape (a GPU count and a per-GPU share)."""
        if num_gpu < 0 or milli_per_gpu < 0 or milli_per_gpu > MILLI_PER_GPU:
            raise ValueError(f"bad GPU request: {num_gpu} GPUs x {milli_per_gpu} milli")
        if num_gpu == 0 or milli_per_gpu == 0:
            return cls(cpu_milli=cpu_milli, memory_bytes=memory_bytes, gpu_products=frozenset(gpu_products))
        if milli_per_gpu == MILLI_PER_GPU:
            return cls(cpu_milli=cpu_milli, memory_bytes=memory_bytes, gpus=num_gpu,
                       gpu_products=frozenset(gpu_products))
        if num_gpu != 1:
            raise ValueError(f"a share of a GPU ({milli_per_gpu} milli) is only supported on one GPU, not {num_gpu}")
        return cls(cpu_milli=cpu_milli, memory_bytes=memory_bytes, gpu_milli=milli_per_gpu,
                   gpu_products=frozenset(gpu_products))

    @property
    def is_fractional(self) -> bool:
        return self.gpu_milli > 0

    @property
    def wants_gpu(self) -> bool:
        return self.gpus > 0 or self.gpu_milli > 0

    @property
    def total_gpu_milli(self) -> int:
        return self.gpus * MILLI_PER_GPU + self.gpu_milli

    @property
    def gpu_slots(self) -> int:
        """How many GPU indices the pod touches."""
        return self.gpus if self.gpus else (1 if self.gpu_milli else 0)

    @property
    def milli_per_slot(self) -> int:
        return MILLI_PER_GPU if self.gpus else self.gpu_milli

    def describe_gpu(self) -> str:
        if self.gpus:
            return f"{self.gpus} GPU{'s' if self.gpus != 1 else ''}"
        if self.gpu_milli:
            return f"{self.gpu_milli}m of one GPU"
        return "no GPU"


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """A node's allocatable resources and the labels placement looks at (GPU product, topology)."""

    name: str
    cpu_milli: int
    memory_bytes: int
    gpus: int = 0
    gpu_product: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    # Taints that keep pods off the node unless tolerated (NoSchedule, NoExecute; a cordon is one): opaque to
    # the core, which only records them, and read by extender.constraints.
    taints: tuple[object, ...] = ()

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a node needs a name")
        for attr in ("cpu_milli", "memory_bytes", "gpus"):
            value = getattr(self, attr)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"node {self.name}: {attr} must be a non-negative integer, got {value!r}")
        object.__setattr__(self, "labels", MappingProxyType(dict(self.labels)))


@dataclass(frozen=True, slots=True)
class Allocation:
    """What one pod holds on one node. `release` of this exact record undoes `allocate` exactly."""

    pod_key: str
    node: str
    request: PodRequest
    gpu_indices: tuple[int, ...] = ()
    gpu_milli: tuple[int, ...] = ()  # milli taken on each of gpu_indices

    @property
    def cpu_milli(self) -> int:
        return self.request.cpu_milli

    @property
    def memory_bytes(self) -> int:
        return self.request.memory_bytes

    @property
    def total_gpu_milli(self) -> int:
        return sum(self.gpu_milli)
