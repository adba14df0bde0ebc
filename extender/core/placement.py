"""Putting the pieces together: filter, score, pick, allocate; and the 0-10 scores of the extender protocol."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from extender.core.cluster import ClusterState
from extender.core.fit import fit_mask
from extender.core.resources import Allocation, PodRequest
from extender.core.scorers import Scored, Scorer

__all__ = ["MAX_EXTENDER_SCORE", "Choice", "choose", "normalize_scores", "place", "prioritize"]

MAX_EXTENDER_SCORE = 10
_TIE_TOLERANCE = 1e-9


def normalize_scores(values: np.ndarray | Iterable[float]) -> np.ndarray:
    """Map raw scores (higher is better) over the candidates to integers 0-10 for the extender protocol.

    Only the best nodes (equal to the highest raw score) get 10; the others are spread linearly over 0-9 and
    rounded down, so the worst gets 0. kube-scheduler then picks among the 10s at random, as the simulator picks
    among equal best scores, instead of letting its own scoring decide among a tenth of the range. When all
    candidates score the same they all get 10 (none is worse).
    """
    raw = np.asarray(values if isinstance(values, np.ndarray) else list(values), dtype=np.float64)
    if raw.size == 0:
        return np.zeros(0, dtype=np.int64)
    low, high = float(raw.min()), float(raw.max())
    best = raw >= high - _TIE_TOLERANCE * max(1.0, abs(high))
    if best.all():
        return np.full(raw.shape, MAX_EXTENDER_SCORE, dtype=np.int64)
    scaled = np.floor((raw - low) / (high - low) * (MAX_EXTENDER_SCORE - 1) + 1e-12)
    scaled = np.clip(scaled, 0, MAX_EXTENDER_SCORE - 1)
    scaled[best] = MAX_EXTENDER_SCORE
    return scaled.astype(np.int64)


@dataclass(frozen=True)
class Choice:
    """The node picked for a pod and the GPU indices it takes there."""

    row: int
    node: str
    gpu_indices: tuple[int, ...] | None  # None: the node's default choice


def _pick(scored: Scored, rng: np.random.Generator | None) -> int:
    """Position of the best score; ties go to a random one, as kube-scheduler's selectHost does."""
    values = scored.values
    best = values.max()
    tied = np.flatnonzero(values >= best - _TIE_TOLERANCE * max(1.0, abs(float(best))))
    if len(tied) == 1 or rng is None:
        return int(tied[0])
    return int(tied[rng.integers(len(tied))])


def choose(
    state: ClusterState,
    request: PodRequest,
    scorer: Scorer,
    rng: np.random.Generator | None = None,
    rows: np.ndarray | None = None,
) -> Choice | None:
    """The best node among `rows` (default: all) that fits, or None when none fits."""
    if rows is None:
        rows = np.arange(state.size)
    rows = rows[fit_mask(state, request, rows)]
    if not len(rows):
        return None
    scored = scorer.score(state, request, rows)
    i = _pick(scored, rng)
    row = int(scored.rows[i])
    gpus = None
    if scored.gpu_choice is not None and request.is_fractional:
        gpus = (int(scored.gpu_choice[i]),)
    return Choice(row=row, node=state.name_of(row), gpu_indices=gpus)


def place(
    state: ClusterState,
    pod_key: str,
    request: PodRequest,
    scorer: Scorer,
    rng: np.random.Generator | None = None,
    rows: np.ndarray | None = None,
) -> Allocation | None:
    """Choose a node and allocate there; None when the pod fits nowhere."""
    choice = choose(state, request, scorer, rng, rows)
    if choice is None:
        return None
    return state.allocate(pod_key, request, choice.node, choice.gpu_indices)


def prioritize(state: ClusterState, request: PodRequest, names: Iterable[str], scorer: Scorer) -> dict[str, int]:
    """The extender's prioritize: 0-10 per node. Nodes that cannot take the pod (or are unknown) get 0."""
    names = list(names)
    known = [n for n in names if state.has_node(n)]
    result = dict.fromkeys(names, 0)
    if not known:
        return result
    rows = state.rows(known)
    fits = fit_mask(state, request, rows)
    if fits.any():
        scored = scorer.score(state, request, rows[fits])
        for row, value in zip(scored.rows, normalize_scores(scored.values)):
            result[state.name_of(int(row))] = int(value)
    return result
