"""Placement with no I/O: cluster state in numpy arrays, fit checks, scorers, allocations and statements.

Shared by the extender server, the simulator and the tests. Nothing here talks to Kubernetes.
"""

from extender.core.cluster import NO_PRODUCT, ClusterState
from extender.core.fit import FilterResult, explain, filter_nodes, fit_mask
from extender.core.fragmentation import PodShape, WorkloadProfile, expected_fragmentation
from extender.core.placement import MAX_EXTENDER_SCORE, Choice, choose, normalize_scores, place, prioritize
from extender.core.resources import (
    MILLI_PER_GPU,
    Allocation,
    AlreadyAllocated,
    DoesNotFit,
    NodeSpec,
    PlacementError,
    PodRequest,
    UnknownNode,
    UnknownPod,
)
from extender.core.scorers import (
    DEFAULT_SCORER,
    BestFitScorer,
    FGDScorer,
    InfergateScorer,
    Scored,
    Scorer,
    SpreadScorer,
    make_scorer,
    scorer_names,
)
from extender.core.statement import Statement, StatementClosed

__all__ = [
    "DEFAULT_SCORER",
    "MAX_EXTENDER_SCORE",
    "MILLI_PER_GPU",
    "NO_PRODUCT",
    "Allocation",
    "AlreadyAllocated",
    "BestFitScorer",
    "Choice",
    "ClusterState",
    "DoesNotFit",
    "FGDScorer",
    "FilterResult",
    "InfergateScorer",
    "NodeSpec",
    "PlacementError",
    "PodRequest",
    "PodShape",
    "Scored",
    "Scorer",
    "SpreadScorer",
    "Statement",
    "StatementClosed",
    "UnknownNode",
    "UnknownPod",
    "WorkloadProfile",
    "choose",
    "expected_fragmentation",
    "explain",
    "filter_nodes",
    "fit_mask",
    "make_scorer",
    "normalize_scores",
    "place",
    "prioritize",
    "scorer_names",
]
