"""Our default scorer: the fragmentation gradient, memory-aware, with BestFit deciding its ties."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from extender.core.cluster import ClusterState
from extender.core.fragmentation import WorkloadProfile
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
    - A share goes to the GPU of the node that raises fragmentation least.
    """

    name = "infergate"
    COVERAGE = 0.98

    def __init__(self, profile: WorkloadProfile | None = None, *, max_cpu_milli: int = 128_000,
                 max_gpus: int = 8) -> None:
        self.profile = profile or WorkloadProfile.default()
        self.max_cpu_milli = max_cpu_milli
        self.max_gpu_milli = max_gpus * MILLI_PER_GPU
        self._cache = FragmentationCache(self.profile)

    @classmethod
    def for_workload(cls, requests: Iterable[PodRequest]) -> InfergateScorer:
        return cls(WorkloadProfile.from_requests(requests, coverage=cls.COVERAGE, with_memory=True))

    def score(self, state: ClusterState, request: PodRequest, rows: np.ndarray) -> Scored:
        delta = fragmentation_delta(self._cache, state, request, rows)
        left = bestfit_leftover(state, request, rows, self.max_cpu_milli, self.max_gpu_milli)
        values = fgd_quantise(delta.increase) + 0.5 * (1.0 - left)
        return Scored(rows, values, delta.gpu_choice)
