"""What every scorer is: scores for candidate rows, higher is better, plus a GPU choice for shares."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from extender.core.cluster import ClusterState
from extender.core.resources import PodRequest

__all__ = ["Scored", "Scorer"]


@dataclass
class Scored:
    """Scores of candidate rows. `gpu_choice[i]` is the GPU index a fractional pod takes on rows[i]."""

    rows: np.ndarray
    values: np.ndarray
    gpu_choice: np.ndarray | None = None


class Scorer(Protocol):
    name: str

    def score(self, state: ClusterState, request: PodRequest, rows: np.ndarray) -> Scored:
        """Score rows that already passed the fit check."""
        ...

    def observe(self, request: PodRequest) -> None:
        """A pod was placed (once per pod): scorers that learn the workload count it; the others ignore it."""
        ...
