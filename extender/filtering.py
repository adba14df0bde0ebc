"""Filter and prioritize for one call of kube-scheduler: extender.core's answers, over candidate rows resolved
once per call, with the reasons of failing nodes remembered until the node changes.

These are the fast forms of extender.core.filter_nodes and extender.core.prioritize; the property test
tests/extender/server/test_fastpaths.py proves them equal on random clusters.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from extender.core import ClusterState, PodRequest, Scorer, filter_nodes, fit_mask, normalize_scores
from extender.core.fit import FilterResult
from extender.view import ClusterView


class FailureReasons:
    """Why each failing node cannot take a request, remembered per request shape and node until the node
    changes (its row's version moves whenever anything about it does).

    Filter answers name every failing node, thousands in a large cluster, while a binding changes one node:
    the next pod of the same shape needs the wording of that one node again, not of all of them. The words
    are always extender.core.filter_nodes's own.
    """

    def __init__(self, shapes: int = 32) -> None:
        self.shapes = shapes
        self._by_request: OrderedDict[PodRequest, tuple[int, np.ndarray, list[str | None]]] = OrderedDict()

    def of(self, state: ClusterState, request: PodRequest, rows: np.ndarray, names: list[str]) -> list[str]:
        """Reasons for the failing `rows` (named `names`), in their order."""
        entry = self._by_request.pop(request, None)
        if entry is None or entry[0] != state.instance_id:
            entry = (state.instance_id, np.full(state.capacity_rows, -1, dtype=np.int64), [None] * state.capacity_rows)
        _, versions, words = entry
        if len(versions) < state.capacity_rows:
            grow = state.capacity_rows - len(versions)
            versions = np.concatenate([versions, np.full(grow, -1, dtype=np.int64)])
            words = words + [None] * grow
        self._by_request[request] = (state.instance_id, versions, words)
        if len(self._by_request) > self.shapes:
            self._by_request.popitem(last=False)
        current = state.version[rows]
        stale = np.flatnonzero(versions[rows] != current)
        if len(stale):
            stale_names = [names[i] for i in stale.tolist()]
            fresh = filter_nodes(state, request, stale_names).failed
            for i, name in zip(stale.tolist(), stale_names):
                row = int(rows[i])
                words[row] = fresh.get(name, f"node {name}: does not fit")
                versions[row] = current[i]
        return [words[row] for row in rows.tolist()]  # type: ignore[misc]


@dataclass
class Filtered:
    """A filter answer, a gang member's or a lone pod's: the nodes that fit; why the others do not (resolvable
    by preemption, or not)."""

    fits: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    unresolvable: dict[str, str] = field(default_factory=dict)
    result: str = "ok"  # for metrics


def filter_candidates(view: ClusterView, reasons: FailureReasons, request: PodRequest, names: list[str]) -> FilterResult:
    """What extender.core.filter_nodes answers (same fits, same reasons, same order)."""
    state = view.state
    rows = view.rows_of(names)
    result = FilterResult()
    unknown = np.flatnonzero(rows < 0)
    if len(unknown):
        result.failed.update(filter_nodes(state, request, [names[i] for i in unknown.tolist()]).failed)
    known = np.flatnonzero(rows >= 0)
    if not len(known):
        return result
    ok = fit_mask(state, request, rows[known])
    result.fits = [names[i] for i in known[ok].tolist()]
    failing = known[~ok]
    if len(failing):
        words = reasons.of(state, request, rows[failing], [names[i] for i in failing.tolist()])
        result.failed.update(zip((names[i] for i in failing.tolist()), words))
    return result


def score_candidates(state: ClusterState, scorer: Scorer, request: PodRequest, rows: np.ndarray) -> np.ndarray:
    """The score of each candidate (its row, -1 for an unknown name), as extender.core.prioritize gives it:
    unknown and unfit nodes 0, the others 0-10 over the fitting candidates."""
    scores = np.zeros(len(rows), dtype=np.int64)
    known = np.flatnonzero(rows >= 0)
    if len(known):
        fits = known[fit_mask(state, request, rows[known])]
        if len(fits):
            scored = scorer.score(state, request, rows[fits])
            by_row = np.zeros(state.capacity_rows, dtype=np.int64)
            by_row[scored.rows] = normalize_scores(scored.values)
            scores[fits] = by_row[rows[fits]]
    return scores
