"""Node scorers, pluggable by name. Each scores the candidate rows for one pod; higher is better.

A scorer may also say which GPU a fractional pod should take on each node (`Scored.gpu_choice`), because the
best node for a share depends on which of its GPUs the share lands on.

- `bestfit`: the paper's BestFit baseline, least leftover CPU and GPU after placement (integer 0-100).
- `spread`: kube-scheduler's LeastAllocated over CPU, memory and GPUs, emptiest node first (integer 0-100).
- `fgd`: the FGD paper's fragmentation gradient descent, as published: the increase in the node's expected
  fragmentation, squashed by a sigmoid into an integer 0-100.
- `infergate` (the default): the fragmentation gradient at full precision, with memory-aware pod shapes and
  shares limited to the GPUs a node can still host, BestFit breaking exact ties (see `InfergateScorer`).

Files: `base` (the protocol), `baseline` (bestfit, spread), `gradient` (the fragmentation gradient and its
caches), `fgd`, `infergate`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from extender.core.resources import PodRequest
from extender.core.scorers.base import Scored, Scorer
from extender.core.scorers.baseline import BestFitScorer, SpreadScorer
from extender.core.scorers.fgd import FGDScorer
from extender.core.scorers.infergate import InfergateScorer

__all__ = [
    "DEFAULT_SCORER",
    "BestFitScorer",
    "FGDScorer",
    "InfergateScorer",
    "Scored",
    "Scorer",
    "SpreadScorer",
    "make_scorer",
    "scorer_names",
]

DEFAULT_SCORER = "infergate"

_FACTORIES: dict[str, Callable[[list[PodRequest] | None], Scorer]] = {
    "infergate": lambda w: InfergateScorer.for_workload(w) if w else InfergateScorer(),
    "fgd": lambda w: FGDScorer.for_workload(w) if w else FGDScorer(),
    "bestfit": lambda w: BestFitScorer(),
    "spread": lambda w: SpreadScorer(),
}


def scorer_names() -> list[str]:
    return list(_FACTORIES)


def make_scorer(name: str, workload: Iterable[PodRequest] | None = None) -> Scorer:
    """A fresh scorer by name. `workload` is a sample of pod requests (for example every pod in view, or a
    trace) from which fragmentation-aware scorers learn which pod shapes to expect; without one they use a
    generic serving mix (`WorkloadProfile.default`)."""
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise ValueError(f"unknown scorer {name!r}; known: {', '.join(_FACTORIES)}") from None
    return factory(list(workload) if workload is not None else None)
