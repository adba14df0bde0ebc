"""Homes for the most demanding pods: the nodes that can take the workload's largest shapes, kept for them.

Fragmentation is measured over the popular shapes, so a shape a few pods ask for (an 8-GPU pod with 120 CPUs
that only the 128-CPU nodes can take, a pod pinned to a scarce GPU model) weighs nothing in it, and a scorer
that spends the roomiest nodes first leaves such pods nowhere to go while most of the cluster is free.

`ScarceHomes` looks at every GPU shape it has learned. The demanding ones are those no other learned shape
needs more than (the skyline: at least as much CPU, memory, GPUs and GPU share, on the same GPU models). Each
has a need: the pods learned whose shapes can only run on nodes that could run it (by capacity). Its homes
are scarce while the cluster has room for no more pods of it than that need; `penalty` then counts, per
candidate node, the pods of such shapes that placing the pod there would leave no room for. The scorer ranks
on it first, so a pod goes elsewhere when anywhere else fits and is never refused for it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import numpy as np

from extender.core.cluster import ClusterState
from extender.core.fragmentation import PodShape, hosted_at_most, product_access
from extender.core.resources import MILLI_PER_GPU, PodRequest
from extender.core.scorers.gradient import after_whole

__all__ = ["ScarceHomes", "demanding_shapes"]


def demanding_shapes(shapes: Iterable[PodShape]) -> list[PodShape]:
    """The GPU shapes no other shape of `shapes` asks more than: at least as much CPU, memory, GPUs and GPU
    share, on the same GPU models (ordered as given)."""
    gpu_shapes = [s for s in dict.fromkeys(shapes) if s.milli_per_gpu > 0]
    if not gpu_shapes:
        return []
    groups = {products: i for i, products in enumerate(dict.fromkeys(s.gpu_products for s in gpu_shapes))}
    need = np.array([(s.cpu_milli, s.memory_bytes, s.gpu_slots, s.milli_per_gpu) for s in gpu_shapes], dtype=np.int64)
    group = np.array([groups[s.gpu_products] for s in gpu_shapes])
    # no_less[a, b]: shape a asks for at least what b does, on the same models; shapes are distinct, so a
    # shape other than b with no_less[a, b] asks for strictly more somewhere
    no_less = (need[:, None, :] >= need[None, :, :]).all(axis=2) & (group[:, None] == group[None, :])
    np.fill_diagonal(no_less, False)
    return [s for s, dominated in zip(gpu_shapes, no_less.any(axis=0)) if not dominated]


def _request(shape: PodShape) -> PodRequest:
    return PodRequest.from_per_gpu(cpu_milli=shape.cpu_milli, memory_bytes=shape.memory_bytes,
                                   num_gpu=shape.gpu_slots, milli_per_gpu=shape.milli_per_gpu,
                                   gpu_products=shape.gpu_products)


class ScarceHomes:
    """The demanding shapes of a learned workload and how many pods need their homes (see the module)."""

    def __init__(self, samples: Counter[PodShape]) -> None:
        self._samples = Counter({s: n for s, n in samples.items() if s.milli_per_gpu > 0 and n > 0})
        self._demanding = [_request(s) for s in demanding_shapes(self._samples)]
        d = self._demanding
        self._cpu = np.array([r.cpu_milli for r in d], dtype=np.int64)
        self._memory = np.array([r.memory_bytes for r in d], dtype=np.int64)
        self._gpus = np.array([r.gpus for r in d], dtype=np.int64)
        self._milli = np.array([r.gpu_milli for r in d], dtype=np.int64)
        self._needs: np.ndarray | None = None
        self._needs_for: tuple[int, int] | None = None
        # room[row, k]: pods of demanding shape k the row can take now, valid while version[row] is the state's
        self._state_id = -1
        self._room = np.zeros((0, len(d)), dtype=np.int64)
        self._version = np.zeros(0, dtype=np.int64)
        self._access: np.ndarray | None = None  # (products + 1, k): a node of that product id may run shape k

    @property
    def demanding(self) -> list[PodRequest]:
        return list(self._demanding)

    def needs(self, state: ClusterState) -> np.ndarray:
        """Per demanding shape: the learned pods that can only run on nodes that could run it."""
        key = (state.instance_id, state.kinds_version)
        if self._needs is None or self._needs_for != key:
            rows = state.rows()
            # what a node could ever run depends only on its kind: capacity and GPU model
            kinds = np.unique(np.stack([state.cpu_capacity[rows], state.memory_capacity[rows],
                                        state.gpu_count[rows].astype(np.int64), state.product[rows].astype(np.int64)],
                                       axis=1), axis=0)
            shapes = list(self._samples)
            capable = np.array([self._capable(state, _request(s), kinds) for s in shapes],
                               dtype=np.float32).reshape(len(shapes), len(kinds))
            homes = np.array([self._capable(state, d, kinds) for d in self._demanding],
                             dtype=np.float32).reshape(len(self._demanding), len(kinds))
            # (shapes, demanding): node kinds a shape could run on that the demanding shape could not
            elsewhere = capable @ (1.0 - homes).T
            only_there = (capable.sum(axis=1) > 0)[:, None] & (elsewhere == 0)
            counts = np.array([self._samples[s] for s in shapes], dtype=np.int64)
            self._needs = counts @ only_there
            self._needs_for = key
        return self._needs

    @staticmethod
    def _capable(state: ClusterState, request: PodRequest, kinds: np.ndarray) -> np.ndarray:
        """Node kinds (rows of CPU, memory, GPU count, product id) that could take `request` when empty."""
        ok = (kinds[:, 0] >= request.cpu_milli) & (kinds[:, 1] >= request.memory_bytes)
        ok &= kinds[:, 2] >= request.gpu_slots
        if request.gpu_products:
            ok &= np.isin(kinds[:, 3], state.product_ids(request.gpu_products))
        return ok

    def penalty(self, state: ClusterState, request: PodRequest, rows: np.ndarray,
                gpu_choice: np.ndarray | None) -> np.ndarray:
        """Per candidate row: how many pods of demanding shapes with scarce homes it would no longer take."""
        if not self._demanding:
            return np.zeros(len(rows), dtype=np.int64)
        room = self.room(state)
        total = room.sum(axis=0)
        scarce = np.flatnonzero((total > 0) & (total <= self.needs(state)))
        if not len(scarce):
            return np.zeros(len(rows), dtype=np.int64)
        before = room[rows][:, scarce]
        penalty = np.zeros(len(rows), dtype=np.int64)
        hosts = np.flatnonzero(before.any(axis=1))  # only these can lose room
        if len(hosts):
            choice = gpu_choice[hosts] if gpu_choice is not None else None
            after = self._copies(*self._after(state, request, rows[hosts], choice), scarce)
            penalty[hosts] = (before[hosts] - np.minimum(before[hosts], after)).sum(axis=1)
        return penalty

    def room(self, state: ClusterState) -> np.ndarray:
        """(rows up to state.size, demanding shapes): how many pods of each every node can take now."""
        if self._state_id != state.instance_id or len(self._version) < state.size:
            grow = max(state.capacity_rows, state.size)
            self._room = np.zeros((grow, len(self._demanding)), dtype=np.int64)
            self._version = np.full(grow, -1, dtype=np.int64)
            self._state_id = state.instance_id
        if self._access is None or len(self._access) != len(state.products) + 1:
            self._access = product_access(state, [d.gpu_products for d in self._demanding])
        stale = np.flatnonzero(self._version[: state.size] != state.version[: state.size])
        if len(stale):
            every = np.arange(len(self._demanding))
            copies = self._copies(state.cpu_free[stale], state.memory_free[stale], state.gpu_free[stale], every)
            ok = self._access[state.product[stale]] & state.active[stale][:, None]
            self._room[stale] = copies * ok
            self._version[stale] = state.version[stale]
        return self._room[: state.size]

    def _copies(self, cpu_free: np.ndarray, memory_free: np.ndarray, gpu_free: np.ndarray,
                shapes: np.ndarray) -> np.ndarray:
        """(rows, shapes): how many pods of each demanding shape the free resources could take (models not
        checked)."""
        gpus, milli = self._gpus[shapes], self._milli[shapes]
        copies = (gpu_free >= MILLI_PER_GPU).sum(axis=1)[:, None] // np.maximum(gpus, 1)[None, :]
        shares = np.flatnonzero(milli > 0)
        if len(shares):
            free = np.maximum(gpu_free.astype(np.int64), 0)
            copies[:, shares] = (free[:, :, None] // milli[shares][None, None, :]).sum(axis=1)
        return hosted_at_most(copies, self._cpu[shapes], self._memory[shapes], cpu_free, memory_free)

    @staticmethod
    def _after(state: ClusterState, request: PodRequest, rows: np.ndarray,
               gpu_choice: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Free CPU, memory and GPU milli of each row once `request` is placed there."""
        free = state.gpu_free[rows]
        if request.gpus:
            free = after_whole(free, request.gpus)
        elif request.gpu_milli and gpu_choice is not None:
            free = free.copy()
            free[np.arange(len(rows)), np.maximum(gpu_choice, 0)] -= request.gpu_milli
        return state.cpu_free[rows] - request.cpu_milli, state.memory_free[rows] - request.memory_bytes, free
