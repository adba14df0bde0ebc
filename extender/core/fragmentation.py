"""Expected GPU fragmentation of a node, the measure behind FGD (Weng et al., USENIX ATC'23).

A node's free GPU capacity is a fragment for a pod shape when that shape cannot use it: every free milli-GPU
counts when the shape does not fit the node at all (CPU, GPU count, GPU product), and when it fits, the free
part of each GPU too small for one slot of the shape counts. Weighting shapes by how often the workload asks
for them gives the node's expected fragmentation; a good placement raises it as little as possible. Pods
without GPUs count all free GPU capacity as fragment (they can never use it), which shifts every node by the
same amount and so only matters for the paper's score quantisation.

`shares_limited_by_host` (infergate's measure; off for the paper's) also asks whether the node can host
enough pods of a share shape to reach its free GPUs: a share takes one GPU, so with CPU and memory for c more
such pods only the c largest fitting GPUs are usable, the rest is fragment. A node whose CPU is nearly spent
strands its free GPUs for shares as surely as a full GPU does; the paper's measure notices only when not even
one more pod fits.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from extender.core.cluster import ClusterState
from extender.core.resources import MILLI_PER_GPU, PodRequest

__all__ = ["CompiledProfile", "PodShape", "WorkloadProfile", "expected_fragmentation"]


@dataclass(frozen=True, slots=True)
class PodShape:
    """A pod request with identity removed: what the fragmentation measure looks at."""

    cpu_milli: int
    gpu_slots: int  # GPUs touched (1 for a share)
    milli_per_gpu: int  # 1000 for whole GPUs, the share for a fraction, 0 without GPUs
    gpu_products: frozenset[str] = frozenset()
    memory_bytes: int = 0

    @classmethod
    def of(cls, request: PodRequest, *, with_memory: bool = False) -> PodShape:
        return cls(
            cpu_milli=request.cpu_milli,
            gpu_slots=request.gpu_slots,
            milli_per_gpu=request.milli_per_slot if request.wants_gpu else 0,
            gpu_products=request.gpu_products,
            memory_bytes=request.memory_bytes if with_memory else 0,
        )


@dataclass(frozen=True)
class WorkloadProfile:
    """The distribution of pod shapes placement expects to see next (weights sum to 1)."""

    shapes: tuple[PodShape, ...]
    weights: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.shapes) != len(self.weights) or not self.shapes:
            raise ValueError("a workload profile needs at least one shape and one weight per shape")
        total = float(sum(self.weights))
        if total <= 0 or any(w < 0 for w in self.weights):
            raise ValueError("workload profile weights must be non-negative and not all zero")
        object.__setattr__(self, "weights", tuple(float(w) / total for w in self.weights))

    @classmethod
    def from_requests(
        cls, requests: Iterable[PodRequest], *, coverage: float = 0.95, with_memory: bool = False
    ) -> WorkloadProfile:
        """The most popular shapes that together make up `coverage` of the pods, re-weighted to sum to 1.

        Dropping the long tail (as the paper does with its 95% threshold) keeps scoring cheap; the tail is
        rare by construction.
        """
        return cls.from_counts(Counter(PodShape.of(r, with_memory=with_memory) for r in requests), coverage=coverage)

    @classmethod
    def from_counts(cls, counts: Counter[PodShape], *, coverage: float = 0.95) -> WorkloadProfile:
        """As `from_requests`, from how many pods of each shape were seen."""
        counts = +counts  # drops shapes counted zero times
        if not counts:
            raise ValueError("cannot build a workload profile from no pods")
        total = sum(counts.values())
        # Ties in popularity are ordered by shape so the profile is deterministic.
        ordered = sorted(counts.items(), key=lambda kv: (-kv[1], _shape_key(kv[0])))
        shapes: list[PodShape] = []
        weights: list[float] = []
        covered = 0
        for shape, count in ordered:
            shapes.append(shape)
            weights.append(count)
            covered += count
            if covered >= coverage * total:
                break
        return cls(tuple(shapes), tuple(weights))

    @classmethod
    def default(cls) -> WorkloadProfile:
        """A generic serving mix for when nothing better is known: shares, single GPUs, and multi-GPU pods."""
        shapes = (
            PodShape(4000, 1, 250), PodShape(4000, 1, 500), PodShape(8000, 1, MILLI_PER_GPU),
            PodShape(16000, 2, MILLI_PER_GPU), PodShape(32000, 4, MILLI_PER_GPU),
            PodShape(64000, 8, MILLI_PER_GPU), PodShape(4000, 0, 0),
        )
        return cls(shapes, (0.2, 0.15, 0.35, 0.1, 0.07, 0.03, 0.1))

    def compile(self, state: ClusterState) -> CompiledProfile:
        return CompiledProfile.build(self, state)


def _shape_key(shape: PodShape) -> tuple[int, int, int, tuple[str, ...], int]:
    return (shape.cpu_milli, shape.gpu_slots, shape.milli_per_gpu, tuple(sorted(shape.gpu_products)),
            shape.memory_bytes)


@dataclass(frozen=True)
class CompiledProfile:
    """A profile as arrays, bound to a state's product table (rebuild when new products appear)."""

    cpu: np.ndarray  # (T,)
    memory: np.ndarray  # (T,)
    slots: np.ndarray  # (T,)
    weight: np.ndarray  # (T,)
    share: np.ndarray  # (T,) bool: a share of one GPU
    whole: np.ndarray  # (T,) bool: whole GPUs
    thresholds: np.ndarray  # (U,) distinct per-GPU slot sizes of GPU shapes
    threshold_of: np.ndarray  # (T,) index into thresholds (0 for CPU-only shapes, unused)
    access: np.ndarray  # (P+1, T) bool: node product id -> shape may use it; last row: node without product
    products_known: int
    uses_memory: bool

    @classmethod
    def build(cls, profile: WorkloadProfile, state: ClusterState) -> CompiledProfile:
        shapes = profile.shapes
        milli = np.array([s.milli_per_gpu for s in shapes], dtype=np.int64)
        gpu_shapes = milli > 0
        thresholds = np.unique(milli[gpu_shapes]) if gpu_shapes.any() else np.array([MILLI_PER_GPU])
        threshold_of = np.where(gpu_shapes, np.searchsorted(thresholds, milli), 0)
        products = state.products
        access = product_access(state, [s.gpu_products for s in shapes])
        memory = np.array([s.memory_bytes for s in shapes], dtype=np.int64)
        return cls(
            cpu=np.array([s.cpu_milli for s in shapes], dtype=np.int64),
            memory=memory,
            slots=np.array([s.gpu_slots for s in shapes], dtype=np.int64),
            weight=np.array(profile.weights, dtype=np.float64),
            share=gpu_shapes & (milli < MILLI_PER_GPU),
            whole=milli >= MILLI_PER_GPU,
            thresholds=thresholds.astype(np.int64),
            threshold_of=threshold_of,
            access=access,
            products_known=len(products),
            uses_memory=bool(memory.any()),
        )


def product_access(state: ClusterState, wanted: Sequence[frozenset[str]]) -> np.ndarray:
    """(products + 1, shapes) bool: may a node of each product id run each shape, given the GPU models the shape
    asks for (none: any). The last row is for nodes without a product (id -1)."""
    access = np.ones((len(state.products) + 1, len(wanted)), dtype=bool)
    for t, products in enumerate(wanted):
        if products:
            access[:, t] = False
            access[state.product_ids(products), t] = True
    return access


def expected_fragmentation(
    profile: CompiledProfile,
    cpu_free: np.ndarray,
    gpu_free: np.ndarray,
    product: np.ndarray,
    memory_free: np.ndarray | None = None,
    *,
    shares_limited_by_host: bool = False,
) -> np.ndarray:
    """Expected fragmented milli-GPU of each state row (S rows of cpu, (S, G) free GPU milli, product ids)."""
    free = gpu_free.astype(np.int64, copy=False)
    total = free.sum(axis=1)
    u = profile.thresholds
    # below[s, k]: free milli on GPUs of row s with less than thresholds[k] free (too small for one slot)
    small = free[:, :, None] < u[None, None, :]
    below = (free[:, :, None] * small).sum(axis=1)
    largest = free.max(axis=1) if free.shape[1] else np.zeros(len(free), dtype=np.int64)
    whole_free = (free >= MILLI_PER_GPU).sum(axis=1)

    ok = cpu_free[:, None] >= profile.cpu[None, :]
    gpu_ok = (profile.share[None, :] & (largest[:, None] >= u[profile.threshold_of][None, :])) | (
        profile.whole[None, :] & (whole_free[:, None] >= profile.slots[None, :]))
    ok &= gpu_ok
    ok &= profile.access[product]
    use_memory = profile.uses_memory and memory_free is not None
    if use_memory:
        ok &= memory_free[:, None] >= profile.memory[None, :]
    usable = total[:, None] - below[:, profile.threshold_of]  # free milli a fitting shape could use
    if shares_limited_by_host and profile.share.any():
        fitting = free.shape[1] - small.sum(axis=1)  # (S, U): GPUs with at least the threshold free
        usable = usable.copy()
        usable[:, profile.share] = _hosted_share_usable(
            profile, free, fitting, cpu_free, memory_free if use_memory else None)
    return total - (ok * usable) @ profile.weight


def _hosted_share_usable(profile: CompiledProfile, free: np.ndarray, fitting: np.ndarray, cpu_free: np.ndarray,
                         memory_free: np.ndarray | None) -> np.ndarray:
    """(S, share shapes): free milli on the GPUs more pods of each share shape could reach: the largest of the
    GPUs it fits on, as many as the node's CPU and memory can host pods of it."""
    shares = np.flatnonzero(profile.share)
    # free milli of the k largest GPUs of each row, k = 0..G
    reach = np.zeros((len(free), free.shape[1] + 1), dtype=np.int64)
    np.cumsum(-np.sort(-free, axis=1), axis=1, out=reach[:, 1:])
    gpus = hosted_at_most(fitting[:, profile.threshold_of[shares]], profile.cpu[shares], profile.memory[shares],
                          cpu_free, memory_free)
    return np.take_along_axis(reach, gpus, axis=1)


def hosted_at_most(count: np.ndarray, cpu: np.ndarray, memory: np.ndarray, cpu_free: np.ndarray,
                   memory_free: np.ndarray | None) -> np.ndarray:
    """(S, T) `count`, capped per row at how many pods of each shape (T CPU and memory requests) the row's free
    CPU and memory (S) can host; memory is not checked when `memory_free` is None."""
    for need, available in ((cpu, cpu_free), (memory, memory_free)):
        if available is None:
            continue
        hosted = np.maximum(available, 0)[:, None] // np.maximum(need, 1)[None, :]
        count = np.where(need[None, :] > 0, np.minimum(count, hosted), count)
    return count
