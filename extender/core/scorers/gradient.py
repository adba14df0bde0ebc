"""The fragmentation gradient: how much placing a pod raises a node's expected fragmentation.

Shared by `fgd` and `infergate`. Results are cached per node version and per request shape, so a placement,
which changes one node, costs the next pod of a known shape one node's worth of work.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from extender.core.cluster import ClusterState
from extender.core.fragmentation import CompiledProfile, WorkloadProfile, expected_fragmentation
from extender.core.resources import MILLI_PER_GPU, PodRequest

__all__ = ["FragmentationCache", "FragmentationDelta", "after_whole", "fgd_quantise", "fragmentation_delta"]


def after_whole(free: np.ndarray, gpus: int) -> np.ndarray:
    """Free GPU milli after taking `gpus` fully free GPUs on each row (which ones doesn't matter here)."""
    after = free.copy()
    full = free >= MILLI_PER_GPU
    after[full & (np.cumsum(full, axis=1) <= gpus)] = 0
    return after


def _share_candidates(free: np.ndarray, milli: int) -> tuple[np.ndarray, np.ndarray]:
    """(row position, GPU index) pairs where a share fits, one per distinct free value within a row.

    GPUs of a node with the same free milli are interchangeable, so only the lowest index of each value is
    tried; that is also the index kept when scores tie.
    """
    columns = free.shape[1]
    earlier_equal = (free[:, :, None] == free[:, None, :]) & np.tri(columns, k=-1, dtype=bool)[None]
    candidate = (free >= milli) & ~earlier_equal.any(axis=2)
    return np.nonzero(candidate)


def _best_per_row(pos: np.ndarray, gpu: np.ndarray, values: np.ndarray, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """For each row position, the highest value among its candidates, lowest GPU index on ties."""
    order = np.lexsort((gpu, -values, pos))
    pos_sorted = pos[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = pos_sorted[1:] != pos_sorted[:-1]
    chosen = order[first]
    best = np.full(n_rows, -np.inf)
    choice = np.full(n_rows, -1, dtype=np.int64)
    best[pos[chosen]] = values[chosen]
    choice[pos[chosen]] = gpu[chosen]
    return best, choice


# Per-shape results are kept within this many bytes, least recently used shapes dropped first: about 680
# shapes for the openb cluster (2,048 rows), 170 for 5,000 nodes (8,192 rows), never fewer than 32.
_DELTA_CACHE_BYTES = 32 << 20


@dataclass
class _DeltaEntry:
    version: np.ndarray  # row version the values were computed at (-1: never)
    increase: np.ndarray
    choice: np.ndarray


class FragmentationCache:
    """Per-node fragmentation results, recomputed only for rows whose version changed.

    Two levels: each node's current expected fragmentation, and per request shape the increase placing that
    shape would cause on each node (and the GPU a share would take). A placement changes one node, so the
    next pod of a shape already seen costs one node's worth of work instead of the whole cluster's; the
    extender gains the same for repeated prioritize calls.
    """

    def __init__(self, profile: WorkloadProfile, *, shares_limited_by_host: bool = False) -> None:
        self.profile = profile
        self.shares_limited_by_host = shares_limited_by_host
        self._compiled: CompiledProfile | None = None
        self._state_id = -1
        self._version = np.zeros(0, dtype=np.int64)
        self._value = np.zeros(0)
        self._deltas: dict[tuple[object, ...], _DeltaEntry] = {}

    def compiled(self, state: ClusterState) -> CompiledProfile:
        stale = (self._compiled is None or self._state_id != state.instance_id
                 or self._compiled.products_known != len(state.products))
        if stale:
            self._compiled = self.profile.compile(state)
            self._state_id = state.instance_id
            self._version = np.full(state.capacity_rows, -1, dtype=np.int64)
            self._value = np.zeros(state.capacity_rows)
            self._deltas.clear()
        return self._compiled  # type: ignore[return-value]

    def _fit(self, state: ClusterState) -> None:
        if len(self._version) < state.capacity_rows:
            grow = state.capacity_rows - len(self._version)
            self._version = np.concatenate([self._version, np.full(grow, -1, dtype=np.int64)])
            self._value = np.concatenate([self._value, np.zeros(grow)])

    def current(self, state: ClusterState, rows: np.ndarray) -> np.ndarray:
        compiled = self.compiled(state)
        self._fit(state)
        stale = rows[self._version[rows] != state.version[rows]]
        if len(stale):
            self._value[stale] = self.fragmentation(
                compiled, state.cpu_free[stale], state.gpu_free[stale], state.product[stale],
                state.memory_free[stale])
            self._version[stale] = state.version[stale]
        return self._value[rows]

    def fragmentation(self, compiled: CompiledProfile, cpu_free: np.ndarray, gpu_free: np.ndarray,
                      product: np.ndarray, memory_free: np.ndarray) -> np.ndarray:
        """The measure this cache keeps (see `expected_fragmentation`)."""
        return expected_fragmentation(compiled, cpu_free, gpu_free, product, memory_free,
                                      shares_limited_by_host=self.shares_limited_by_host)

    def delta_entry(self, state: ClusterState, request: PodRequest) -> _DeltaEntry:
        self.compiled(state)
        key = (request.cpu_milli, request.memory_bytes, request.gpus, request.gpu_milli,
               tuple(sorted(request.gpu_products)))
        entry = self._deltas.pop(key, None)  # re-inserted below: dict order is least recently used first
        size = state.capacity_rows
        if entry is None:
            entry = _DeltaEntry(np.full(size, -1, dtype=np.int64), np.zeros(size), np.full(size, -1, np.int64))
            limit = max(32, _DELTA_CACHE_BYTES // (24 * size))  # 3 arrays of 8 bytes per row
            while len(self._deltas) >= limit:
                del self._deltas[next(iter(self._deltas))]
        elif len(entry.version) < size:
            grow = size - len(entry.version)
            entry.version = np.concatenate([entry.version, np.full(grow, -1, dtype=np.int64)])
            entry.increase = np.concatenate([entry.increase, np.zeros(grow)])
            entry.choice = np.concatenate([entry.choice, np.full(grow, -1, dtype=np.int64)])
        self._deltas[key] = entry
        return entry


@dataclass
class FragmentationDelta:
    """How much placing the pod raises each candidate's expected fragmentation (best GPU for a share)."""

    increase: np.ndarray  # (R,) milli-GPU; lower is better
    gpu_choice: np.ndarray | None  # (R,) for fractional requests


def _compute_delta(
    cache: FragmentationCache,
    state: ClusterState,
    request: PodRequest,
    rows: np.ndarray,
    share_value: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None,
) -> tuple[np.ndarray, np.ndarray]:
    compiled = cache.compiled(state)
    before = cache.current(state, rows)
    free = state.gpu_free[rows]
    cpu_after = state.cpu_free[rows] - request.cpu_milli
    memory_after = state.memory_free[rows] - request.memory_bytes
    product = state.product[rows]
    if request.is_fractional:
        pos, gpu = _share_candidates(free, request.gpu_milli)
        after_free = free[pos]
        after_free[np.arange(len(pos)), gpu] -= request.gpu_milli
        after_each = cache.fragmentation(compiled, cpu_after[pos], after_free, product[pos], memory_after[pos])
        increase_each = after_each - before[pos]
        value = share_value(increase_each, pos, gpu) if share_value else -increase_each
        _, choice = _best_per_row(pos, gpu, value, len(rows))
        # the increase at the chosen GPU of each row (a row without a fitting GPU keeps +inf)
        lookup = np.full((len(rows), free.shape[1]), np.inf)
        lookup[pos, gpu] = increase_each
        increase = lookup[np.arange(len(rows)), np.maximum(choice, 0)]
        return increase, choice
    after_free = after_whole(free, request.gpus) if request.gpus else free
    after = cache.fragmentation(compiled, cpu_after, after_free, product, memory_after)
    return after - before, np.full(len(rows), -1, dtype=np.int64)


def fragmentation_delta(
    cache: FragmentationCache,
    state: ClusterState,
    request: PodRequest,
    rows: np.ndarray,
    share_value: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> FragmentationDelta:
    """Expected fragmentation increase of placing `request` on each row (rows must fit it).

    For a share every distinct GPU of each row is tried; `share_value(increase, pos, gpu)` ranks the tries
    (higher is better; default: smallest increase) so a scorer can pick the GPU by its own measure. A cache
    keeps one `share_value` per `cache`, so a scorer passes the same one every time.
    """
    entry = cache.delta_entry(state, request)
    stale = rows[entry.version[rows] != state.version[rows]]
    if len(stale):
        increase, choice = _compute_delta(cache, state, request, stale, share_value)
        entry.increase[stale] = increase
        entry.choice[stale] = choice
        entry.version[stale] = state.version[stale]
    return FragmentationDelta(entry.increase[rows].copy(),
                              entry.choice[rows].copy() if request.is_fractional else None)


def fgd_quantise(increase: np.ndarray) -> np.ndarray:
    """The paper's plugin score: int(sigmoid(-increase / 1000) * 100).

    The squashing makes the score coarse where it matters least: nodes whose fragmentation changes by a lot
    in the same direction all get the same score, and a tie-break then decides among them.
    """
    return np.trunc(100.0 / (1.0 + np.exp(np.clip(increase / 1000.0, -500, 500))))
