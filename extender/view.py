"""The extender's view of the cluster: Nodes and Pods as the API server reports them, plus the pods it has
bound and not yet seen bound. No I/O: the watch, the snapshot loader and the tests all feed it the same way.

A pod counts against its node from the moment the extender binds it, so no GPU is given twice while the watch
catches up; a pod the API server reports on a node counts there whatever the extender thought.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from extender.core import Allocation, ClusterState, PlacementError, PodRequest, UnknownNode
from extender.constraints import ANYWHERE, Placement
from extender.podgroups import PodGroups
from extender.podspec import PodFacts, PodSpecError, gpu_index, node_spec, pod_facts, pod_key, pod_request
from infergate import constants

log = logging.getLogger(__name__)

_PLACEMENTS_PRUNE_FLOOR = 1024  # below this many, pruning would cost more than it frees

# A pod the extender bound but the watch never showed bound is released after this long (the binding failed
# in a way the extender did not see, or the pod was deleted while the watch was down; a relist also settles it).
ASSUME_TTL_SECONDS = 300.0


@dataclass
class Assumed:
    uid: str
    since: float
    held: Allocation | None = None  # what it holds, kept to count it again should its node be re-created


@dataclass
class ClusterView:
    state: ClusterState = field(default_factory=ClusterState)
    facts: dict[str, PodFacts] = field(default_factory=dict)
    requests: dict[str, PodRequest] = field(default_factory=dict)
    assumed: dict[str, Assumed] = field(default_factory=dict)
    synced: bool = False
    gpu_resource: str = constants.GPU_RESOURCE  # the policy's gpuResource: the extended resource of whole GPUs
    problems: int = 0  # objects that could not be read; counted in metrics, logged once each
    # PodGroups (both APIs), which give the size and topology of the gangs whose pods name them
    pod_groups: PodGroups = field(default_factory=PodGroups)
    # Called with the new state after a full relist, for holders of capacity that is not a pod (gang slots).
    rebuild_hooks: list[Callable[[ClusterState], None]] = field(default_factory=list)
    # Called with a node's name after it changed or was removed, for holders of capacity that is not a pod.
    node_hooks: list[Callable[[str], None]] = field(default_factory=list)
    # The keys of `facts` by the node the pod is reported on, and each key's place in `facts`: a node update
    # looks at its own pods instead of every pod in the cluster (tens of milliseconds at 50,000 pods).
    _on_node: dict[str, set[str]] = field(default_factory=dict, repr=False)
    _order: dict[str, int] = field(default_factory=dict, repr=False)
    _next: Iterator[int] = field(default_factory=itertools.count, repr=False)
    # The keys of `facts` by group and by pod UID: gang planning and preemption look up a group's members and a
    # victim's pod without a walk over every pod.
    _in_group: dict[str, set[str]] = field(default_factory=dict, repr=False)
    _by_uid: dict[str, str] = field(default_factory=dict, repr=False)
    # Where pods may go, interned (pods of one workload say the same); pruned to the pods still waiting each
    # time it has doubled since the last prune, so a long-lived extender does not keep every one it ever read.
    _placements: dict[Placement, Placement] = field(default_factory=dict, repr=False)
    _placements_kept: int = field(default=0, repr=False)

    def members(self, group: str) -> list[str]:
        """Keys of the pods of `group`, in the order the view first saw them."""
        return sorted(self._in_group.get(group, ()), key=self._order.__getitem__)

    def resolve(self, facts: PodFacts) -> PodFacts | str:
        """The pod's facts with its group's size and topology from its PodGroup, if it names one (see
        PodGroups.resolve); a str saying what to fix when that PodGroup is missing or unreadable."""
        group = facts.group
        if group is None or group.size is not None:
            return facts
        bound = sum(1 for k in self._in_group.get(group.key, ())
                    if k != facts.key and self.facts[k].node is not None and not self.facts[k].terminal)
        return self.pod_groups.resolve(facts, bound)

    def groups(self) -> list[str]:
        """The keys of the groups with a pod in view."""
        return list(self._in_group)

    def key_of_uid(self, uid: str) -> str | None:
        return self._by_uid.get(uid) if uid else None

    def rows_of(self, names: list[str]) -> np.ndarray:
        """The state's row of each name, -1 where no such node is known."""
        try:
            return self.state.rows(names)  # kube-scheduler sends only nodes it knows: usually all are known here
        except UnknownNode:
            return np.fromiter((self.state.row(n) if self.state.has_node(n) else -1 for n in names), dtype=np.int64,
                               count=len(names))

    # ------------------------------------------------------------------------------------------------ nodes
    def read_pod(self, pod: dict[str, Any]) -> tuple[PodFacts, PodRequest]:
        """A pod's facts and request as this view counts it (raises PodSpecError)."""
        if len(self._placements) > max(_PLACEMENTS_PRUNE_FLOOR, 2 * self._placements_kept):
            self._placements = {f.placement: f.placement for f in self.facts.values() if f.placement is not ANYWHERE}
            self._placements_kept = len(self._placements)
        return pod_facts(pod, self._placements), pod_request(pod, self.gpu_resource)

    def apply_node(self, node: dict[str, Any]) -> None:
        try:
            spec = node_spec(node, self.gpu_resource)
            self.state.add_node(spec)
        except (PodSpecError, PlacementError, ValueError) as exc:
            self.problems += 1
            log.warning("ignoring node update: %s", exc)
            return
        # Pods reported on this node before the node itself arrived can be counted now (in the order of
        # `facts`, as a walk over it would), and so can our bindings in flight to it (the node was deleted
        # and re-created before the watch showed them bound).
        waiting = [key for key in self._on_node.get(spec.name, ()) if key not in self.state and not self.facts[key].terminal]
        waiting.sort(key=self._order.__getitem__)
        for key in waiting:
            self._hold(key, self.facts[key], self.requests[key], None, force=True)
        for key, assumed in self.assumed.items():
            if assumed.held is not None and assumed.held.node == spec.name and key not in self.state:
                self._hold_assumed(key, assumed.held)
        for hook in self.node_hooks:
            hook(spec.name)

    def delete_node(self, name: str) -> None:
        if self.state.has_node(name):
            self.state.remove_node(name)
            for hook in self.node_hooks:
                hook(name)

    # ------------------------------------------------------------------------------------------------- pods
    def apply_pod(self, pod: dict[str, Any]) -> None:
        key = pod_key(pod)
        try:
            facts, request = self.read_pod(pod)
        except (PodSpecError, ValueError) as exc:
            self.problems += 1
            log.warning("ignoring pod update: %s", exc)
            return
        known = self.facts.get(key)
        if known is not None and known.uid != facts.uid and facts.uid:
            self._release(key)  # the same name, a new pod
            self.assumed.pop(key, None)
        self._set_facts(key, known, facts)
        self.requests[key] = request
        if facts.terminal:
            self._release(key)
            self.assumed.pop(key, None)
            return
        if facts.node is None:
            if key not in self.assumed:
                self._release(key)
            return
        self.assumed.pop(key, None)
        held = self.state.allocation(key)
        if held is not None and held.node == facts.node and held.request == request:
            return
        self._release(key)
        self._hold(key, facts, request, gpu_index(pod), force=True)

    def _set_facts(self, key: str, known: PodFacts | None, facts: PodFacts) -> None:
        if known is None:
            self._order[key] = next(self._next)
        else:
            self._unindex(key, known, keep=facts)
        if facts.node is not None:
            self._on_node.setdefault(facts.node, set()).add(key)
        if facts.group is not None:
            self._in_group.setdefault(facts.group.key, set()).add(key)
        if facts.uid:
            self._by_uid[facts.uid] = key
        self.facts[key] = facts

    def _unindex(self, key: str, known: PodFacts, keep: PodFacts | None = None) -> None:
        """Drop `key` from the indexes where `known` put it and `keep` (its next facts, if any) does not."""
        group = known.group.key if known.group else None
        if keep is not None:
            node = known.node if known.node != keep.node else None
            group = group if group != (keep.group.key if keep.group else None) else None
        else:
            node = known.node
        for index, value in ((self._on_node, node), (self._in_group, group)):
            keys = index.get(value) if value is not None else None
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del index[value]
        if known.uid and self._by_uid.get(known.uid) == key and (keep is None or keep.uid != known.uid):
            del self._by_uid[known.uid]

    def delete_pod(self, key: str) -> None:
        self._release(key)
        known = self.facts.pop(key, None)
        if known is not None:
            self._order.pop(key, None)
            self._unindex(key, known)
        self.requests.pop(key, None)
        self.assumed.pop(key, None)

    def replace_all(self, nodes: Iterable[dict[str, Any]], pods: Iterable[dict[str, Any]]) -> None:
        """A full list from the API server: rebuild from it, keeping the pods bound but not yet listed."""
        pending = {key: (self.state.allocation(key), self.assumed[key]) for key in self.assumed}
        fresh = ClusterView(gpu_resource=self.gpu_resource)
        for node in nodes:
            fresh.apply_node(node)
        # Pods with a known GPU index first, so pods without one take the GPUs around them.
        ordered = sorted(pods, key=lambda p: gpu_index(p) is None)
        for pod in ordered:
            fresh.apply_pod(pod)
        for key, (alloc, assumed) in pending.items():
            if alloc is not None and key not in fresh.state and not (fresh.facts.get(key) and fresh.facts[key].terminal):
                try:
                    fresh.state.allocate(key, alloc.request, alloc.node, alloc.gpu_indices)
                    fresh.assumed[key] = assumed
                except PlacementError as exc:
                    log.warning("dropping the binding of %s in flight: %s", key, exc)
        self.state, self.facts, self.requests, self.assumed = fresh.state, fresh.facts, fresh.requests, fresh.assumed
        self._on_node, self._order, self._next = fresh._on_node, fresh._order, fresh._next
        self._in_group, self._by_uid = fresh._in_group, fresh._by_uid
        self._placements, self._placements_kept = fresh._placements, len(fresh._placements)
        self.problems += fresh.problems
        for hook in self.rebuild_hooks:
            hook(self.state)
        self.synced = True

    # ------------------------------------------------------------------------------------------ our binding
    def assume(self, key: str, uid: str, request: PodRequest, node: str, gpu_indices: tuple[int, ...] | None) -> Allocation:
        """Hold the pod's resources on the node from now on (idempotent for the same pod, node and request)."""
        alloc = self.state.allocate(key, request, node, gpu_indices)
        if self.facts.get(key) is None or self.facts[key].node != node:
            self.assumed[key] = Assumed(uid, time.monotonic(), alloc)
        return alloc

    def confirm(self, key: str, node: str) -> None:
        """The pod is bound to `node` (our binding, seen done): count it as the watch would show it."""
        facts = self.facts.get(key)
        if facts is not None and facts.node != node:
            self._set_facts(key, facts, replace(facts, node=node))
        self.assumed.pop(key, None)

    def recorded(self, key: str, node: str) -> None:
        """The pod's reserved node was written on it (by us): count it as the watch will show it."""
        facts = self.facts.get(key)
        if facts is not None and facts.reserved_node != node:
            self._set_facts(key, facts, replace(facts, reserved_node=node))

    def forget(self, key: str) -> None:
        """A binding of ours failed: give back what it held."""
        if key in self.assumed:
            del self.assumed[key]
            self._release(key)

    def overdue(self, now: float | None = None, ttl: float = ASSUME_TTL_SECONDS) -> list[tuple[str, str]]:
        """(pod, node) of our bindings not seen bound after `ttl` seconds: to be checked with the API server."""
        now = time.monotonic() if now is None else now
        return [(key, a.held.node if a.held else "") for key, a in self.assumed.items() if now - a.since > ttl]

    # ------------------------------------------------------------------------------------------------ inner
    def _hold(self, key: str, facts: PodFacts, request: PodRequest, index: int | None, *, force: bool) -> None:
        if not self.state.has_node(facts.node or ""):
            return  # counted when the node arrives
        indices = (index,) if index is not None and request.is_fractional else None
        try:
            self.state.allocate(key, request, facts.node or "", indices, force=force)
            return
        except PlacementError as exc:
            if indices is None:
                self.problems += 1
                log.warning("cannot count pod %s on node %s: %s", key, facts.node, exc)
                return
            # A gpu-index the node does not have (it shrank, or the annotation is wrong): the pod still runs
            # there, so it is counted on the GPU the node would pick, never left out.
            log.warning("pod %s: %s; counting it on another GPU of the node", key, exc)
        try:
            self.state.allocate(key, request, facts.node or "", None, force=force)
        except PlacementError as exc:
            self.problems += 1
            log.warning("cannot count pod %s on node %s: %s", key, facts.node, exc)

    def _hold_assumed(self, key: str, held: Allocation) -> None:
        for indices in (held.gpu_indices, None):
            try:
                self.state.allocate(key, held.request, held.node, indices, force=True)
                return
            except PlacementError as exc:
                problem = exc
        self.problems += 1
        log.warning("cannot count our binding of %s on node %s again: %s", key, held.node, problem)

    def _release(self, key: str) -> None:
        if key in self.state:
            self.state.release(key)
