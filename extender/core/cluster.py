"""The cluster as placement sees it: per-node capacity and usage in numpy arrays, and who holds what.

Rows are node slots. Arrays grow by doubling and removed nodes' rows are reused, so adding and removing nodes
is amortised O(1) and every fit check or score is one vectorised pass over candidate rows. GPU columns beyond a
node's GPU count hold 0 free milli, so they never fit and never count as capacity.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping

import numpy as np

from extender.core.fit import explain
from extender.core.resources import (
    MILLI_PER_GPU,
    Allocation,
    AlreadyAllocated,
    DoesNotFit,
    NodeSpec,
    PodRequest,
    UnknownNode,
    UnknownPod,
)

__all__ = ["ClusterState", "NO_PRODUCT"]

NO_PRODUCT = -1  # product id of a node without a GPU product label
_INITIAL_ROWS = 64
_INITIAL_GPU_COLUMNS = 8
_instance_ids = itertools.count(1)


class ClusterState:
    """Nodes, their free resources, and the allocation of every pod placed on them.

    The numpy attributes (`cpu_free`, `memory_free`, `gpu_free`, `gpu_count`, `product`, `active`,
    `version`) are indexed by row and are read by the fit checks and scorers; only this class writes them.
    `version[row]` changes whenever anything about that row changes, so scorers can cache per-row values.
    """

    def __init__(self, nodes: Iterable[NodeSpec] = ()) -> None:
        self.instance_id = next(_instance_ids)  # lets scorer caches tell two states apart
        self.kinds_version = 0  # changes when a node comes, goes, or changes capacity or GPU model
        self._clock = itertools.count(1)
        self._size = 0  # rows ever used (high-water mark); rows >= _size are untouched
        self._free_rows: list[int] = []
        self._row_of: dict[str, int] = {}
        self._names: list[str | None] = []
        self._labels: list[Mapping[str, str]] = []
        self._taints: list[tuple[object, ...]] = []
        self._pods_on_row: list[set[str]] = []
        self._pods: dict[str, Allocation] = {}
        self.products: list[str] = []
        self._product_ids: dict[str, int] = {}
        self._alloc_rows(_INITIAL_ROWS, _INITIAL_GPU_COLUMNS)
        for spec in nodes:
            self.add_node(spec)

    # ----------------------------------------------------------------------------------------------- storage
    def _alloc_rows(self, rows: int, columns: int) -> None:
        self.cpu_capacity = np.zeros(rows, dtype=np.int64)
        self.cpu_free = np.zeros(rows, dtype=np.int64)
        self.memory_capacity = np.zeros(rows, dtype=np.int64)
        self.memory_free = np.zeros(rows, dtype=np.int64)
        self.gpu_count = np.zeros(rows, dtype=np.int32)
        self.gpu_free = np.zeros((rows, columns), dtype=np.int32)
        self.product = np.full(rows, NO_PRODUCT, dtype=np.int32)
        self.active = np.zeros(rows, dtype=bool)
        self.tainted = np.zeros(rows, dtype=bool)
        self.version = np.zeros(rows, dtype=np.int64)

    def _grow(self, rows: int, columns: int) -> None:
        old = {name: getattr(self, name) for name in (
            "cpu_capacity", "cpu_free", "memory_capacity", "memory_free", "gpu_count", "gpu_free", "product",
            "active", "tainted", "version")}
        old_rows, old_columns = old["gpu_free"].shape
        self._alloc_rows(max(rows, old_rows), max(columns, old_columns))
        for name, array in old.items():
            target = getattr(self, name)
            if array.ndim == 2:
                target[:old_rows, :old_columns] = array
            else:
                target[:old_rows] = array

    @property
    def capacity_rows(self) -> int:
        return int(self.gpu_free.shape[0])

    @property
    def gpu_columns(self) -> int:
        return int(self.gpu_free.shape[1])

    @property
    def size(self) -> int:
        """Rows in use or once used; every row index handed out is below this."""
        return self._size

    def _touch(self, row: int) -> None:
        self.version[row] = next(self._clock)

    # ------------------------------------------------------------------------------------------------- nodes
    def product_id(self, product: str | None, *, create: bool = False) -> int:
        if not product:
            return NO_PRODUCT
        pid = self._product_ids.get(product)
        if pid is None:
            if not create:
                return -2  # matches no node
            pid = len(self.products)
            self.products.append(product)
            self._product_ids[product] = pid
        return pid

    def product_ids(self, products: Iterable[str]) -> np.ndarray:
        """Ids of the known products among `products` (unknown ones match no node)."""
        ids = [self._product_ids[p] for p in products if p in self._product_ids]
        return np.asarray(ids, dtype=np.int32)

    def add_node(self, spec: NodeSpec) -> int:
        """Add a node, or update its capacity and labels keeping what its pods hold. Returns its row."""
        row = self._row_of.get(spec.name)
        if row is not None:
            self._update_node(row, spec)
            return row
        if spec.gpus > self.gpu_columns:
            self._grow(self.capacity_rows, max(spec.gpus, 2 * self.gpu_columns))
        if self._free_rows:
            row = self._free_rows.pop()
        else:
            if self._size == self.capacity_rows:
                self._grow(2 * self.capacity_rows, self.gpu_columns)
            row = self._size
            self._size += 1
            self._names.append(None)
            self._labels.append({})
            self._taints.append(())
            self._pods_on_row.append(set())
        self._row_of[spec.name] = row
        self._names[row] = spec.name
        self._labels[row] = spec.labels
        self._taints[row] = spec.taints
        self.tainted[row] = bool(spec.taints)
        self._pods_on_row[row] = set()
        self.cpu_capacity[row] = self.cpu_free[row] = spec.cpu_milli
        self.memory_capacity[row] = self.memory_free[row] = spec.memory_bytes
        self.gpu_count[row] = spec.gpus
        self.gpu_free[row, :] = 0
        self.gpu_free[row, : spec.gpus] = MILLI_PER_GPU
        self.product[row] = self.product_id(spec.gpu_product, create=True)
        self.active[row] = True
        self.kinds_version += 1
        self._touch(row)
        return row

    def _update_node(self, row: int, spec: NodeSpec) -> None:
        """New capacity, labels and taints for a known node, keeping what its pods hold. Pods holding GPU indices
        the node no longer has (its allocatable GPUs shrank) are counted on its least used GPUs instead, so the
        node shows as full, never as having GPUs that do not exist."""
        if spec.gpus > self.gpu_columns:
            self._grow(self.capacity_rows, max(spec.gpus, 2 * self.gpu_columns))
        held: list[Allocation] = []
        stranded: list[Allocation] = []
        used_gpu = np.zeros(self.gpu_columns, dtype=np.int64)
        for key in sorted(self._pods_on_row[row]):
            alloc = self._pods[key]
            if any(i >= spec.gpus for i in alloc.gpu_indices):
                stranded.append(alloc)
                continue
            held.append(alloc)
            if alloc.gpu_indices:  # pods without GPUs hold no index (numpy cannot add an empty tuple)
                used_gpu[list(alloc.gpu_indices)] += np.asarray(alloc.gpu_milli, dtype=np.int64)
        for alloc in stranded:
            order = np.argsort(used_gpu[: spec.gpus], kind="stable")
            indices = tuple(sorted(int(i) for i in order[: min(len(alloc.gpu_indices), spec.gpus)]))
            moved = Allocation(alloc.pod_key, alloc.node, alloc.request, indices, tuple(alloc.request.milli_per_slot for _ in indices))
            self._pods[alloc.pod_key] = moved
            held.append(moved)
            if indices:
                used_gpu[list(indices)] += alloc.request.milli_per_slot
        used_cpu = sum(a.cpu_milli for a in held)
        used_memory = sum(a.memory_bytes for a in held)
        product = self.product_id(spec.gpu_product, create=True)
        if (self.cpu_capacity[row], self.memory_capacity[row], self.gpu_count[row], self.product[row]) != (
                spec.cpu_milli, spec.memory_bytes, spec.gpus, product):
            self.kinds_version += 1
        self._labels[row] = spec.labels
        self._taints[row] = spec.taints
        self.tainted[row] = bool(spec.taints)
        self.cpu_capacity[row] = spec.cpu_milli
        self.cpu_free[row] = spec.cpu_milli - used_cpu
        self.memory_capacity[row] = spec.memory_bytes
        self.memory_free[row] = spec.memory_bytes - used_memory
        self.gpu_count[row] = spec.gpus
        self.gpu_free[row, :] = 0
        self.gpu_free[row, : spec.gpus] = MILLI_PER_GPU - used_gpu[: spec.gpus]
        self.product[row] = product
        self._touch(row)

    def remove_node(self, name: str) -> list[Allocation]:
        """Forget a node; the allocations of the pods on it are dropped and returned."""
        row = self.row(name)
        dropped = [self._pods.pop(key) for key in sorted(self._pods_on_row[row])]
        self._pods_on_row[row] = set()
        del self._row_of[name]
        self._names[row] = None
        self._labels[row] = {}
        self._taints[row] = ()
        self.tainted[row] = False
        for array in (self.cpu_capacity, self.cpu_free, self.memory_capacity, self.memory_free, self.gpu_count):
            array[row] = 0
        self.gpu_free[row, :] = 0
        self.product[row] = NO_PRODUCT
        self.active[row] = False
        self.kinds_version += 1
        self._touch(row)
        self._free_rows.append(row)
        return dropped

    def has_node(self, name: str) -> bool:
        return name in self._row_of

    def row(self, name: str) -> int:
        try:
            return self._row_of[name]
        except KeyError:
            raise UnknownNode(f"node {name}: unknown node") from None

    def rows(self, names: Iterable[str] | None = None) -> np.ndarray:
        """Rows of the named nodes (all active nodes when None). Unknown names raise UnknownNode."""
        if names is None:
            return np.flatnonzero(self.active[: self._size])
        row_of = self._row_of
        try:
            return np.fromiter((row_of[n] for n in names), dtype=np.int64)
        except KeyError as exc:
            raise UnknownNode(f"node {exc.args[0]}: unknown node") from None

    def name_of(self, row: int) -> str:
        name = self._names[row] if 0 <= row < self._size else None
        if name is None:
            raise UnknownNode(f"row {row}: no node")
        return name

    def names_of(self, rows: Iterable[int]) -> list[str]:
        return [self.name_of(int(r)) for r in rows]

    def node_names(self) -> list[str]:
        return list(self._row_of)

    def __len__(self) -> int:
        return len(self._row_of)

    def labels(self, name: str) -> Mapping[str, str]:
        return self._labels[self.row(name)]

    def labels_at(self, row: int) -> Mapping[str, str]:
        return self._labels[row]

    def taints_at(self, row: int) -> tuple[object, ...]:
        return self._taints[row]

    def node_spec(self, name: str) -> NodeSpec:
        row = self.row(name)
        pid = int(self.product[row])
        return NodeSpec(
            name=name,
            cpu_milli=int(self.cpu_capacity[row]),
            memory_bytes=int(self.memory_capacity[row]),
            gpus=int(self.gpu_count[row]),
            gpu_product=self.products[pid] if pid >= 0 else None,
            labels=self._labels[row],
            taints=self._taints[row],
        )

    def gpu_product(self, row: int) -> str | None:
        pid = int(self.product[row])
        return self.products[pid] if pid >= 0 else None

    # -------------------------------------------------------------------------------------------------- pods
    def allocation(self, pod_key: str) -> Allocation | None:
        return self._pods.get(pod_key)

    def allocations(self) -> Iterator[Allocation]:
        return iter(list(self._pods.values()))

    def pods_on(self, name: str) -> list[Allocation]:
        return [self._pods[k] for k in sorted(self._pods_on_row[self.row(name)])]

    def __contains__(self, pod_key: object) -> bool:
        return pod_key in self._pods

    @property
    def pod_count(self) -> int:
        return len(self._pods)

    def default_gpu_indices(self, row: int, request: PodRequest) -> tuple[int, ...] | None:
        """Where a pod goes on this node when the caller has no preference: the lowest fully free GPUs for
        whole GPUs; the tightest GPU that fits for a share (lowest index among equals). None: no GPU fits."""
        if not request.wants_gpu:
            return ()
        free = self.gpu_free[row, : self.gpu_count[row]]
        if request.gpus:
            whole = np.flatnonzero(free >= MILLI_PER_GPU)
            return tuple(int(i) for i in whole[: request.gpus]) if len(whole) >= request.gpus else None
        fitting = np.flatnonzero(free >= request.gpu_milli)
        if not len(fitting):
            return None
        return (int(fitting[np.argmin(free[fitting])]),)

    def _least_used_indices(self, row: int, request: PodRequest) -> tuple[int, ...] | None:
        """For an overcommitted node: count the pod on its least used GPUs, so the node shows as full (never as
        having room it does not have). None when the node has fewer GPUs than the pod asks for."""
        count = int(self.gpu_count[row])
        if request.gpu_slots > count:
            return None
        order = np.argsort(-self.gpu_free[row, :count], kind="stable")
        return tuple(sorted(int(i) for i in order[: request.gpu_slots]))

    def allocate(
        self,
        pod_key: str,
        request: PodRequest,
        node: str,
        gpu_indices: Iterable[int] | None = None,
        *,
        force: bool = False,
    ) -> Allocation:
        """Give `request` on `node` to `pod_key` and return the record that `release` takes back.

        Allocating a pod that already holds the same request on the same node (and, when given, the same GPU
        indices) returns the existing record; anything else for a pod already placed raises AlreadyAllocated,
        so nothing is ever counted twice. `force` records what the API server reports even when it overcommits
        the node (used when rebuilding state, never for a placement decision).
        """
        row = self.row(node)
        indices = None if gpu_indices is None else tuple(int(i) for i in gpu_indices)
        existing = self._pods.get(pod_key)
        if existing is not None:
            if existing.node == node and existing.request == request and (
                    indices is None or indices == existing.gpu_indices):
                return existing
            raise AlreadyAllocated(
                f"pod {pod_key} already holds {existing.request.describe_gpu()} on node {existing.node}")
        if not force:
            reason = explain(self, request, row)
            if reason is not None:
                raise DoesNotFit(reason)
        if indices is None:
            indices = self.default_gpu_indices(row, request)
            if indices is None:  # only reachable with force: the API server reports more than fits
                # On a node with fewer GPUs than the pod holds (it shrank under it): on every GPU it has.
                indices = self._least_used_indices(row, request) or tuple(range(int(self.gpu_count[row])))
                if not indices:
                    raise DoesNotFit(f"node {node}: has no GPUs, cannot hold {request.describe_gpu()}")
        self._check_indices(row, node, request, indices, force)
        milli = tuple(request.milli_per_slot for _ in indices)
        alloc = Allocation(pod_key=pod_key, node=node, request=request, gpu_indices=indices, gpu_milli=milli)
        self._apply(row, alloc, sign=-1)
        self._pods[pod_key] = alloc
        self._pods_on_row[row].add(pod_key)
        return alloc

    def _check_indices(self, row: int, node: str, request: PodRequest, indices: tuple[int, ...],
                       force: bool) -> None:
        if len(indices) != request.gpu_slots and not (force and request.gpus and len(indices) == int(self.gpu_count[row]) < request.gpus):
            raise DoesNotFit(f"node {node}: {request.describe_gpu()} needs {request.gpu_slots} GPU indices, "
                             f"got {len(indices)}")
        if len(set(indices)) != len(indices):
            raise DoesNotFit(f"node {node}: GPU indices {list(indices)} repeat")
        count = int(self.gpu_count[row])
        for i in indices:
            if not 0 <= i < count:
                raise DoesNotFit(f"node {node}: has no GPU index {i} (it has {count} GPUs)")
            if not force and self.gpu_free[row, i] < request.milli_per_slot:
                raise DoesNotFit(f"node {node}: GPU {i} has {int(self.gpu_free[row, i])}m free, "
                                 f"needs {request.milli_per_slot}m")

    def _apply(self, row: int, alloc: Allocation, sign: int) -> None:
        self.cpu_free[row] += sign * alloc.cpu_milli
        self.memory_free[row] += sign * alloc.memory_bytes
        if alloc.gpu_indices:
            self.gpu_free[row, list(alloc.gpu_indices)] += sign * np.asarray(alloc.gpu_milli, dtype=np.int32)
        self._touch(row)

    def release(self, alloc_or_key: Allocation | str) -> Allocation:
        """Give back exactly what `allocate` took. A stale record (not the one held) raises UnknownPod."""
        key = alloc_or_key if isinstance(alloc_or_key, str) else alloc_or_key.pod_key
        held = self._pods.get(key)
        if held is None or (isinstance(alloc_or_key, Allocation) and held != alloc_or_key):
            raise UnknownPod(f"pod {key}: holds nothing{' like that' if held is not None else ''}")
        row = self.row(held.node)
        self._apply(row, held, sign=+1)
        del self._pods[key]
        self._pods_on_row[row].discard(key)
        return held

    # ------------------------------------------------------------------------------------------------ totals
    def gpu_capacity_milli(self) -> int:
        return int(self.gpu_count[: self._size].sum()) * MILLI_PER_GPU

    def gpu_used_milli(self) -> int:
        return self.gpu_capacity_milli() - int(self.gpu_free[: self._size].sum())

    def free_summary(self, name: str) -> dict[str, object]:
        """Free resources of one node, for messages and debugging."""
        row = self.row(name)
        return {
            "cpu_milli": int(self.cpu_free[row]),
            "memory_bytes": int(self.memory_free[row]),
            "gpu_free_milli": [int(x) for x in self.gpu_free[row, : self.gpu_count[row]]],
            "gpu_product": self.gpu_product(row),
        }
