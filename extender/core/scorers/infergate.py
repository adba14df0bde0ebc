"""Our default scorer: the fragmentation gradient, memory-aware, with BestFit deciding its ties."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import numpy as np

from extender.core.cluster import ClusterState
from extender.core.fragmentation import PodShape, WorkloadProfile
from extender.core.resources import MILLI_PER_GPU, PodRequest
from extender.core.scorers.base import Scored
from extender.core.scorers.gradient import FragmentationCache, bestfit_leftover, fgd_quantise, fragmentation_delta

__all__ = ["InfergateScorer"]


class InfergateScorer:
    """Our default: FGD's fragmentation gradient, made aware of memory, with BestFit deciding its ties.

    - Pod shapes carry their memory request, so a node whose GPUs are free but whose memory is spent counts
      those GPUs as fragments (the published FGD looks at CPU and GPU only and strands them).
    - The profile covers 98% of the pods rather than 95%: the shapes just past the paper's cut-off are the
      mid-size shares and multi-GPU pods whose fit decides what a fragment is.
    - The increase is squashed as the paper does (100 levels of sigmoid(-increase / 1000)); among nodes on
      the same level the one with the least CPU and GPU left after placement wins (BestFit), which packs
      nodes consistently and keeps empty nodes whole for multi-GPU pods. Random tie-breaks there cost several
      points; full-precision increases without the squashing cost about one.
    - How much CPU counts in that tie-break follows the learned workload: BestFit weighs free CPU and free
      GPU half and half, and so does infergate while whole GPUs carry most of the GPU demand. Once pods
      sharing a GPU carry most of it (`sharing_share` >= 0.5), CPU's half is scaled by the share whole GPUs
      still carry (`cpu_weight` = 0.5 x (1 - `sharing_share`); GPU alone when every GPU pod shares). Packing
      CPU keeps nodes whole for whole-GPU and multi-GPU pods; when shares dominate, the GPU left on a node
      decides whether the next share fits, and packing CPU there spreads the shares instead.
    - A share goes to the GPU of the node that raises fragmentation least.
    - It keeps learning: every pod placed (`observe`) counts as a sample of the workload, and once the samples
      have doubled since the profile was last built (and number at least `MIN_SAMPLE`), the profile is rebuilt
      from all of them. A scorer that starts knowing nothing (the extender at start-up) has the workload's shapes
      after its first `MIN_SAMPLE` pods; one that learned a whole trace relearns at most once per doubling.
    """

    name = "infergate"
    COVERAGE = 0.98
    MIN_SAMPLE = 50

    def __init__(self, profile: WorkloadProfile | None = None, *, max_cpu_milli: int = 128_000,
                 max_gpus: int = 8, samples: Counter[PodShape] | None = None) -> None:
        self.profile = profile or WorkloadProfile.default()
        self.max_cpu_milli = max_cpu_milli
        self.max_gpu_milli = max_gpus * MILLI_PER_GPU
        self._cache = FragmentationCache(self.profile)
        self._samples: Counter[PodShape] = Counter(samples or {})
        self._learned_from = sum(self._samples.values())
        self.cpu_weight = self._cpu_weight(self._samples)

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
            self.cpu_weight = self._cpu_weight(self._samples)
            if profile != self.profile:
                self.profile = profile
                self._cache = FragmentationCache(profile)

    @staticmethod
    def sharing_share(samples: Counter[PodShape]) -> float:
        """The share of the sampled GPU demand (milli-GPU) that comes from pods sharing a GPU; 0 without GPU pods."""
        total = shared = 0
        for shape, count in samples.items():
            milli = count * shape.gpu_slots * shape.milli_per_gpu
            total += milli
            if 0 < shape.milli_per_gpu < MILLI_PER_GPU:
                shared += milli
        return shared / total if total else 0.0

    @classmethod
    def _cpu_weight(cls, samples: Counter[PodShape]) -> float:
        """CPU's weight in the tie-break: BestFit's half while whole GPUs carry most of the learned GPU demand;
        once shares carry most of it, that half scaled by the share whole GPUs still carry."""
        sharing = cls.sharing_share(samples)
        return 0.5 if sharing < 0.5 else 0.5 * (1.0 - sharing)

    def score(self, state: ClusterState, request: PodRequest, rows: np.ndarray) -> Scored:
        delta = fragmentation_delta(self._cache, state, request, rows)
        left = bestfit_leftover(state, request, rows, self.max_cpu_milli, self.max_gpu_milli, self.cpu_weight)
        values = fgd_quantise(delta.increase) + 0.5 * (1.0 - left)
        return Scored(rows, values, delta.gpu_choice)
