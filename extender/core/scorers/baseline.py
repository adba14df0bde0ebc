"""The paper's baselines: BestFit (pack) and kube-scheduler's LeastAllocated (spread)."""

from __future__ import annotations

import numpy as np

from extender.core.cluster import ClusterState
from extender.core.resources import MILLI_PER_GPU, PodRequest
from extender.core.scorers.base import Scored

__all__ = ["BestFitScorer", "SpreadScorer", "bestfit_leftover"]


def bestfit_leftover(state: ClusterState, request: PodRequest, rows: np.ndarray, max_cpu_milli: int = 128_000,
                     max_gpu_milli: int = 8 * MILLI_PER_GPU) -> np.ndarray:
    """BestFit's leftover after placement: half the free CPU share plus half the free GPU share (0 = full)."""
    cpu_left = state.cpu_free[rows] - request.cpu_milli
    gpu_left = state.gpu_free[rows].sum(axis=1, dtype=np.int64) - request.total_gpu_milli
    return 0.5 * cpu_left / max_cpu_milli + 0.5 * gpu_left / max_gpu_milli


def _tightest_gpu(free: np.ndarray, milli: int) -> np.ndarray:
    """Per row, the GPU with the least free milli that still takes `milli` (lowest index on ties)."""
    masked = np.where(free >= milli, free, np.iinfo(np.int32).max)
    return masked.argmin(axis=1)


class BestFitScorer:
    """The paper's BestFit: 100 * (1 - leftover), leftover = 0.5 free CPU / 128 cores + 0.5 free GPU / 8 GPUs
    after placement, truncated to an integer as the paper's scheduler plugin does. Shares go to the tightest
    GPU."""

    name = "bestfit"

    def __init__(self, max_cpu_milli: int = 128_000, max_gpus: int = 8) -> None:
        self.max_cpu_milli = max_cpu_milli
        self.max_gpu_milli = max_gpus * MILLI_PER_GPU

    def observe(self, request: PodRequest) -> None:
        """Learns nothing from placements."""

    def score(self, state: ClusterState, request: PodRequest, rows: np.ndarray) -> Scored:
        leftover = bestfit_leftover(state, request, rows, self.max_cpu_milli, self.max_gpu_milli)
        values = np.trunc((1.0 - leftover) * 100.0)
        choice = _tightest_gpu(state.gpu_free[rows], request.gpu_milli) if request.is_fractional else None
        return Scored(rows, values, choice)


class SpreadScorer:
    """kube-scheduler's default NodeResourcesFit LeastAllocated: mean over CPU and memory (and GPUs on GPU
    nodes) of the share left free after placement, as an integer 0-100. Shares go to the emptiest GPU."""

    name = "spread"

    def __init__(self, include_gpu: bool = True) -> None:
        self.include_gpu = include_gpu

    def observe(self, request: PodRequest) -> None:
        """Learns nothing from placements."""

    def score(self, state: ClusterState, request: PodRequest, rows: np.ndarray) -> Scored:
        parts = []
        weights = []
        for free, capacity, want in (
            (state.cpu_free[rows], state.cpu_capacity[rows], request.cpu_milli),
            (state.memory_free[rows], state.memory_capacity[rows], request.memory_bytes),
        ):
            parts.append(np.where(capacity > 0, (free - want) * 100 // np.maximum(capacity, 1), 0))
            weights.append((capacity > 0).astype(np.int64))
        if self.include_gpu:
            gpu_capacity = state.gpu_count[rows].astype(np.int64) * MILLI_PER_GPU
            gpu_free = state.gpu_free[rows].sum(axis=1, dtype=np.int64)
            parts.append(np.where(gpu_capacity > 0,
                                  (gpu_free - request.total_gpu_milli) * 100 // np.maximum(gpu_capacity, 1), 0))
            weights.append((gpu_capacity > 0).astype(np.int64))
        total_weight = np.maximum(np.sum(weights, axis=0), 1)
        values = (np.sum(parts, axis=0) // total_weight).astype(np.float64)
        choice = None
        if request.is_fractional:
            choice = np.argmax(state.gpu_free[rows], axis=1)
        return Scored(rows, values, choice)
