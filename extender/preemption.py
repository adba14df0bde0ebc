"""Choosing whom kube-scheduler's preemption may evict: inference goes ahead of training, a training gang goes
as a whole, and the node whose victims cost the fewest GPUs wins.

kube-scheduler proposes candidate nodes with victims it picked by priority alone; only the extender knows
whether, with those victims gone, the preemptor's GPUs (or its share of one GPU) would really be free. No I/O
here: the server evicts what this module names.
"""

from __future__ import annotations

from extender.core import PodRequest, Statement, fit_mask
from extender.view import ClusterView
from extender.podspec import PodFacts
from infergate import constants


def choose_victims(
    view: ClusterView, preemptor: PodFacts, request: PodRequest, candidates: dict[str, list[str]]
) -> tuple[str, list[str], list[str]] | None:
    """(node, victims on it, members of their gangs on other nodes), or None when no candidate works."""
    state = view.state
    best: tuple[tuple[int, int, str], str, list[str], list[str]] | None = None
    for node, uids in candidates.items():
        if not state.has_node(node):
            continue
        victims = [key for key in map(view.key_of_uid, uids) if key is not None]
        elsewhere: set[str] = set()
        for gang in {g for g in (_gang_of(view, v) for v in victims) if g is not None}:
            for key in view.members(gang):
                facts = view.facts[key]
                if facts.node is not None and key not in victims:
                    if facts.node == node:
                        victims.append(key)
                    else:
                        elsewhere.add(key)
        if preemptor.workload_class == constants.TRAINING and any(
                view.facts[k].workload_class == constants.INFERENCE for k in (*victims, *elsewhere)):
            continue  # never evict inference to make room for training, not even a member of a victim's gang
        if not _fits_without(view, request, node, victims):
            continue
        cost = sum(state.allocation(k).total_gpu_milli for k in (*victims, *elsewhere) if state.allocation(k) is not None)
        rank = (cost, len(victims) + len(elsewhere), node)
        if best is None or rank < best[0]:
            best = (rank, node, victims, sorted(elsewhere))
    return None if best is None else (best[1], best[2], best[3])


def _gang_of(view: ClusterView, key: str) -> str | None:
    """The gang a victim takes with it: its group, unless its PodGroup makes it no gang (a basic policy)."""
    facts = view.facts[key]
    if facts.group is None:
        return None
    resolved = view.pod_groups.resolve(facts)
    return facts.group.key if isinstance(resolved, str) or resolved.group is not None else None


def _fits_without(view: ClusterView, request: PodRequest, node: str, victims: list[str]) -> bool:
    """Would the pod fit on the node with the victims gone? Tried in a statement and rolled back."""
    statement = Statement(view.state)
    try:
        for key in victims:
            if key in view.state:
                statement.release(key)
        return bool(fit_mask(view.state, request, view.state.rows([node])).all())
    finally:
        statement.rollback()
