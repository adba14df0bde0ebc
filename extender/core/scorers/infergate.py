"""Our default scorer: the fragmentation gradient, aware of memory and of what a node can still host."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import numpy as np

from extender.core.cluster import ClusterState
from extender.core.fragmentation import PodShape, WorkloadProfile, hosted_at_most
from extender.core.resources import MILLI_PER_GPU, PodRequest
from extender.core.scorers.base import Scored
from extender.core.scorers.baseline import bestfit_leftover
from extender.core.scorers.gradient import FragmentationCache, fragmentation_delta
from extender.core.scorers.homes import ScarceHomes

__all__ = ["InfergateScorer"]

# BestFit's leftover (0..1) is scaled to this many milli-GPU of fragmentation, far below any real difference
# in the increase, so it only orders nodes whose increase is the same.
_TIE_BREAK = 1e-3
# Taking a scarce home of a demanding shape costs more than any change in a node's fragmentation can.
_SCARCE_HOME = 1e6
# A share that raises fragmentation where no other pod of its shape could follow also costs more than any change
# in fragmentation can, and less than a scarce home, so the homes rule still comes first.
_NO_PEER = 1e5


class InfergateScorer:
    """Our default: FGD's fragmentation gradient with five changes, each a measure, none a tuned constant.

    - Pod shapes carry their memory request, so a node whose GPUs are free but whose memory is spent counts
      those GPUs as fragments (the published FGD looks at CPU and GPU only and strands them).
    - A share counts only the GPUs the node can still host pods of it on (`shares_limited_by_host`): with
      CPU and memory for two more pods of a share shape, two of its free GPUs are usable by that shape and
      the rest are fragments. The paper's measure counts them usable while one more pod fits, so it spends the
      CPU of GPU-rich nodes freely and strands their GPUs at the knee of the allocation curve.
    - A share that raises fragmentation goes only where another pod of its shape could still follow it (CPU
      and memory), while such a node fits (`_strands_its_gpu`): the measure above already counts the free GPUs
      of a node short of CPU as fragments, so starting a GPU there looks cheapest, and strands its rest.
    - The increase is used at full precision; the paper squashes it into 100 sigmoid levels, whose ties it
      then breaks by node order. Nodes with exactly the same increase (typically none, or the same change
      on identical nodes) go to the one with the least CPU and GPU left after placement (BestFit), which
      packs nodes and keeps empty ones whole for multi-GPU pods.
    - Before all of that, a pod keeps off the last homes of the workload's most demanding shapes while
      another node fits (`ScarceHomes`): the 128-CPU nodes an occasional 120-CPU training pod needs, the nodes
      of a GPU model that pinned pods ask for. The measure above weighs rare shapes by how rarely they come,
      so without this it spends those nodes first (they look roomiest) and such pods fail on a half-empty
      cluster.

    The shapes are the paper's: the most popular ones covering 95% of the pods. A share goes to the GPU of
    the node that raises fragmentation least. The scorer keeps learning: every pod placed (`observe`) counts
    as a sample of the workload, and once the samples have doubled since the profile was last built (and
    number at least `MIN_SAMPLE`), the profile is rebuilt from all of them. A scorer that starts knowing nothing
    (the extender at start-up) has the workload's shapes after its first `MIN_SAMPLE` pods; one that learned a
    whole trace relearns at most once per doubling.
    """

    name = "infergate"
    COVERAGE = 0.95
    MIN_SAMPLE = 50

    def __init__(self, profile: WorkloadProfile | None = None, *, max_cpu_milli: int = 128_000,
                 max_gpus: int = 8, samples: Counter[PodShape] | None = None) -> None:
        self.profile = profile or WorkloadProfile.default()
        self.max_cpu_milli = max_cpu_milli
        self.max_gpu_milli = max_gpus * MILLI_PER_GPU
        self._cache = self._new_cache(self.profile)
        self._samples: Counter[PodShape] = Counter(samples or {})
        self._learned_from = sum(self._samples.values())
        self._homes = ScarceHomes(self._samples)

    @staticmethod
    def _new_cache(profile: WorkloadProfile) -> FragmentationCache:
        return FragmentationCache(profile, shares_limited_by_host=True)

    @classmethod
    def for_workload(cls, requests: Iterable[PodRequest]) -> InfergateScorer:
        samples = Counter(cls._shape(r) for r in requests)
        if not samples:
            return cls()
        return cls(WorkloadProfile.from_counts(samples, coverage=cls.COVERAGE), samples=samples)

    @staticmethod
    def _shape(request: PodRequest) -> PodShape:
        return PodShape.of(request, with_memory=True)

    @property
    def samples(self) -> int:
        """Pods learned from so far (the trace or view it was built with, and the pods placed since)."""
        return sum(self._samples.values())

    def observe(self, request: PodRequest) -> None:
        """Count a placed pod as a sample of the workload; relearn when the samples doubled."""
        self._samples[self._shape(request)] += 1
        if self.samples >= max(self.MIN_SAMPLE, 2 * self._learned_from):
            self._learned_from = self.samples
            profile = WorkloadProfile.from_counts(self._samples, coverage=self.COVERAGE)
            self._homes = ScarceHomes(self._samples)
            if profile != self.profile:
                self.profile = profile
                self._cache = self._new_cache(profile)

    def score(self, state: ClusterState, request: PodRequest, rows: np.ndarray) -> Scored:
        delta = fragmentation_delta(self._cache, state, request, rows)
        left = np.clip(bestfit_leftover(state, request, rows, self.max_cpu_milli, self.max_gpu_milli), 0.0, 1.0)
        values = -delta.increase + _TIE_BREAK * (1.0 - left)
        if request.gpu_milli:
            values -= _NO_PEER * (self._strands_its_gpu(state, request, rows) & (delta.increase > 0))
        taken = self._homes.penalty(state, request, rows, delta.gpu_choice)
        if taken.any():
            values -= _SCARCE_HOME * (taken - taken.min())
        return Scored(rows, values, delta.gpu_choice)

    @staticmethod
    def _strands_its_gpu(state: ClusterState, request: PodRequest, rows: np.ndarray) -> np.ndarray:
        """Rows where, after this share, no other pod of its shape would fit for CPU or memory: the rest of
        the GPU it takes could then only go to a smaller pod. The fragmentation measure misses this on a node
        whose CPU is nearly spent, because it already counts that node's free GPUs as fragments, so placing
        there looks free; the share then strands the rest of its GPU for good."""
        hosted = hosted_at_most(np.full((len(rows), 1), 2), np.array([request.cpu_milli]),
                                np.array([request.memory_bytes]), state.cpu_free[rows], state.memory_free[rows])
        return hosted[:, 0] < 2  # this one and another
