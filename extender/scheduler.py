"""The extender's decisions, free of HTTP: kube-scheduler's four verbs on parsed arguments, returning plain
results, plus the upkeep that runs beside them (expiry, policy knobs, learning the workload).

Every decision reads and writes one ClusterView; no verb awaits between a fit check and the allocation that
follows it, so two binds can never take the same GPU. extender/server.py is the thin HTTP layer over this.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from extender.binder import Binder, BindError
from extender.core import MAX_EXTENDER_SCORE, MILLI_PER_GPU, PlacementError, PodRequest, Scorer, choose, make_scorer
from extender.filtering import FailureReasons, Filtered, filter_candidates, score_candidates
from extender.gangs import GangBook, GangCoordinator
from extender.podspec import PodFacts, PodSpecError, worker_template
from extender.preemption import choose_victims
from extender.view import ClusterView
from infergate import constants
from policies.loader import Policy

log = logging.getLogger(__name__)

# Names the view does not know that one filter answer gives reasons for, at most.
MAX_UNKNOWN = 1000


@dataclass
class Prioritized:
    names: list[str]
    scores: np.ndarray  # 0-10 per name, in order
    result: str = "ok"


@dataclass
class Bound:
    error: str = ""
    result: str = "ok"


@dataclass
class Preempted:
    victims: dict[str, list[str]] = field(default_factory=dict)  # node -> UIDs kube-scheduler evicts
    also_evict: list[str] = field(default_factory=list)  # pods of the victims' gangs on other nodes
    result: str = "ok"


class Scheduler:
    """All decisions of one extender process: the view of the cluster, the scorer, the gangs and the binder."""

    def __init__(self, policy: Policy, view: ClusterView, binder: Binder, scorer: Scorer | None = None):
        self.view = view
        self.binder = binder
        self.policy = policy
        scheduling = policy.cluster.spec.scheduling
        self.scorer = scorer or make_scorer(scheduling.scorer)
        self.gangs = GangBook(view.state, self.scorer, scheduling.topology_keys, scheduling.topology_mode, scheduling.reservation_seconds)
        self.coordinator = GangCoordinator(view, self.gangs)
        self.training_steering = scheduling.training_steering
        self.reasons = FailureReasons()
        self._described: dict[str, float] = {}  # when each describer was last fetched
        gpu_resource = policy.cluster.spec.defaults.gpu_resource
        if view.gpu_resource != gpu_resource:
            if view.facts or len(view.state):
                log.warning("the view was read with GPU resource %s, the policy says %s; it applies from the next relist",
                            view.gpu_resource, gpu_resource)
            view.gpu_resource = gpu_resource
        view.rebuild_hooks.append(self.coordinator.after_relist)
        if view.synced:  # a snapshot loaded before the scheduler existed
            self.coordinator.after_relist(view.state)

    # ----------------------------------------------------------------------------------------------- reading
    def read(self, pod: dict[str, Any]) -> tuple[PodFacts, PodRequest] | str:
        """The pod's facts (its group as its PodGroup says, if it names one) and request, or why it cannot be
        read or placed."""
        try:
            facts, request = self.view.read_pod(pod)
        except PodSpecError as exc:
            return str(exc)
        resolved = self.view.resolve(facts)
        return resolved if isinstance(resolved, str) else (resolved, request)

    # ---------------------------------------------------------------------------------------------- filter
    async def filter(self, pod: dict[str, Any], names: list[str]) -> Filtered:
        """Which of `names` can take the pod. Only the lookup of what describes a gang's missing members
        awaits, before any decision; the decision itself does not."""
        names = self._candidates(names)
        read = self.read(pod)
        if isinstance(read, str):
            return Filtered(unresolvable=dict.fromkeys(names, read), result="unresolvable")
        facts, request = read
        if facts.in_gang and facts.describer and facts.group.key not in self.gangs.reservations:  # type: ignore[union-attr]
            await self._describe(facts.describer)
        decided = self.decide_filter(facts, request, names)
        if facts.in_gang and (late := self.coordinator.unrecorded_place(facts)) is not None:
            await self._record(facts.key, late)
        return decided

    def decide_filter(self, facts: PodFacts, request: PodRequest, names: list[str]) -> Filtered:
        if facts.in_gang:
            return self.coordinator.filter_member(facts, request, names)
        if not request.wants_gpu:
            return Filtered(fits=list(names))
        result = filter_candidates(self.view, self.reasons, request, names)
        failed = result.failed
        if self.gangs.reservations:
            held = self.gangs.reserved_by_node()
            for name in failed.keys() & held.keys():
                groups = ", ".join(f"{g} ({milli / MILLI_PER_GPU:g} GPUs)" for g, milli in held[name].items())
                failed[name] += f"; held for gang {groups} until its members are bound"
        return Filtered(result.fits, failed, result="ok" if result.fits else "no-fit")

    def _candidates(self, names: list[str]) -> list[str]:
        """The names worth answering for: each once, and at most MAX_UNKNOWN of those the view does not know
        (kube-scheduler only sends nodes it knows; a caller sending millions of other names gets an answer
        the size of the cluster, not of its request)."""
        if len(names) <= len(self.view.state) + MAX_UNKNOWN:  # kube-scheduler's calls: nothing to bound
            return names
        unique = list(dict.fromkeys(names))
        rows = self.view.rows_of(unique)
        unknown = np.flatnonzero(rows < 0)
        if len(unknown) <= MAX_UNKNOWN:
            return unique
        keep = np.ones(len(unique), dtype=bool)
        keep[unknown[MAX_UNKNOWN:]] = False
        return list(itertools.compress(unique, keep.tolist()))

    async def _describe(self, describer: str, ttl: float = 30.0) -> None:
        """Fetch the LeaderWorkerSet that describes a group's members not created yet (kept `ttl` seconds)."""
        known = self._described.get(describer)
        if known is not None and time.monotonic() - known < ttl:
            return
        self._described[describer] = time.monotonic()
        namespace, name = describer.split("/", 1)
        try:
            lws = await self.binder.get_leaderworkerset(namespace, name)
            template = worker_template(lws, self.view.gpu_resource) if lws is not None else None
        except (BindError, PodSpecError) as exc:
            log.warning("cannot read the LeaderWorkerSet %s: %s; its missing workers are planned like the pod at hand", describer, exc)
            template = None
        self.coordinator.templates[describer] = template

    # ------------------------------------------------------------------------------------------ prioritize
    def prioritize(self, pod: dict[str, Any], names: list[str], gpu_pods: bool = True) -> Prioritized:
        """Scores 0-10 per name. gpu_pods=False: a pod with GPUs scores 0 everywhere (it is ranked by the call
        for GPU pods; this one serves the score-only entry that sees every pod)."""
        read = self.read(pod)
        if isinstance(read, str) or (not gpu_pods and read[1].wants_gpu):
            return Prioritized(names, np.zeros(len(names), dtype=np.int64))
        # Pods without GPUs are scored too: where they go decides whether a node's GPUs stay usable.
        facts, request = read
        if facts.in_gang:
            reserved = self.coordinator.reserved_node(facts)
            return Prioritized(names, np.array([MAX_EXTENDER_SCORE if n == reserved else 0 for n in names], dtype=np.int64))
        rows = self.view.rows_of(names)
        scores = score_candidates(self.view.state, self.scorer, request, rows)
        if facts.workload_class == constants.TRAINING and self.training_steering:
            scores = self._steer_training(rows, scores)
        return Prioritized(names, scores)

    def _steer_training(self, rows: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """Training pods leave wholly free nodes to inference groups, which need whole nodes: a free node's
        score is cut by the policy's trainingSteering share. `rows`: -1 for a node not known."""
        state = self.view.state
        known = np.maximum(rows, 0)
        count = state.gpu_count[known].astype(np.int64)
        whole = (rows >= 0) & (count > 0) & (state.gpu_free[known].sum(axis=1, dtype=np.int64) == count * MILLI_PER_GPU)
        # round half to even, as round() did per node
        return np.where(whole, np.round(scores * (1 - self.training_steering)), scores).astype(scores.dtype)

    # ------------------------------------------------------------------------------------------------ bind
    async def bind(self, namespace: str, name: str, uid: str, node: str) -> Bound:
        key = f"{namespace}/{name}"
        facts = self.view.facts.get(key)
        if facts is not None and facts.node == node:
            return Bound(result="already-bound")  # a retry of a bind that succeeded
        request = self.view.requests.get(key)
        if request is None:  # the watch has not shown this pod yet
            pod = await self.binder.get_pod(namespace, name)
            if pod is None:
                return Bound(f"pod {key} not found", "error")
            self.view.apply_pod(pod)
            request = self.view.requests.get(key)
            if request is None:
                return Bound(f"pod {key} cannot be read", "error")
        facts = self.view.resolve(self.view.facts[key])
        if isinstance(facts, str):
            return Bound(f"cannot bind pod {key}: {facts}", "conflict")
        slot = None
        first_binding = False
        if facts.in_gang:
            slot = self.coordinator.slot_for_binding(facts, request, node)
            if isinstance(slot, str):
                return Bound(slot, "conflict")
            first_binding = self.coordinator.first_binding(slot)
            self.gangs.hand_over(slot)
        try:
            indices = slot.gpu_indices[: request.gpu_slots] if slot else self._gpu_choice(request, node, key)
            alloc = self.view.assume(key, uid, request, node, indices)
        except PlacementError as exc:
            if slot:
                self.gangs.take_back(slot)
            return Bound(f"cannot bind pod {key} to node {node}: {exc}", "conflict")
        try:
            if slot and first_binding:
                await self._record_reservation(slot.group)
            if request.is_fractional:
                await self.binder.annotate(namespace, name, {constants.GPU_INDEX_ANNOTATION: str(alloc.gpu_indices[0])})
            await self.binder.bind(namespace, name, uid, node)
        except BindError as exc:
            pod = await self.binder.get_pod(namespace, name)
            if pod is not None and (pod.get("spec") or {}).get("nodeName") == node:
                return Bound(result="already-bound")
            self.view.forget(key)
            if slot:
                self.gangs.take_back(slot)
            return Bound(f"binding pod {key} to node {node} failed: {exc}", "error")
        if slot:
            self.gangs.settle(slot.group)
        self.scorer.observe(request)  # a scorer that learns the workload counts each bound pod once
        if getattr(self.binder, "authoritative", False):  # no watch will show it bound: the binder is the truth
            self.view.confirm(key, node)
        return Bound()

    async def _record_reservation(self, group: str) -> None:
        """Write each pending member's reserved node on the pod, so a restarted extender can rebuild the
        reservation from the API server instead of stranding a partial group."""
        for key, node in self.coordinator.to_record(group):
            await self._record(key, node)

    async def _record(self, key: str, node: str) -> None:
        namespace, name = key.split("/", 1)
        try:
            await self.binder.annotate(namespace, name, {constants.RESERVED_NODE_ANNOTATION: node})
        except BindError as exc:
            log.warning("could not record the reservation of %s: %s", key, exc)
            return
        self.view.recorded(key, node)

    def _gpu_choice(self, request: PodRequest, node: str, key: str) -> tuple[int, ...] | None:
        """The GPU a share goes to: the one it already holds (a retried bind), else the scorer's pick."""
        held = self.view.state.allocation(key)
        if held is not None:
            return held.gpu_indices
        if not request.is_fractional or not self.view.state.has_node(node):
            return None
        rows = np.array([self.view.state.row(node)])
        choice = choose(self.view.state, request, self.scorer, rows=rows)
        return choice.gpu_indices if choice is not None else None

    # --------------------------------------------------------------------------------------------- preempt
    def preempt(self, pod: dict[str, Any], candidates: dict[str, list[str]]) -> Preempted:
        """Of kube-scheduler's candidate nodes (node -> victim UIDs), the one to use and whom to evict."""
        read = self.read(pod)
        if isinstance(read, str):
            return Preempted(result="unresolvable")
        facts, request = read
        decision = choose_victims(self.view, facts, request, candidates)
        if decision is None:
            return Preempted(result="no-candidate")
        node, victims, others = decision
        return Preempted({node: [self.view.facts[v].uid for v in victims]}, list(others))

    async def evict(self, key: str) -> None:
        namespace, name = key.split("/", 1)
        try:
            await self.binder.evict(namespace, name)
        except BindError as exc:
            log.warning("could not evict %s with its gang: %s", key, exc)

    async def describe_missing_members(self) -> None:
        """Read what describes the members not created yet of groups partly bound (after a restart, say), so
        their places are held with their real shape."""
        for describer in self.coordinator.undescribed():
            await self._describe(describer)
            self.coordinator.described(describer)

    # ---------------------------------------------------------------------------------------------- upkeep
    async def expire(self, now: float | None = None) -> list[str]:
        """Release what nobody will use: gang reservations past their time (returned), and bindings of ours the
        watch never showed, once the API server confirms the pod is not bound there (the watch may be late)."""
        expired = self.coordinator.expire(now)
        for group in expired:
            log.info("gang %s did not complete within %.0fs; its reservation is released", group, self.gangs.ttl_seconds)
        for key, node in self.view.overdue(now):
            namespace, name = key.split("/", 1)
            try:
                pod = await self.binder.get_pod(namespace, name)
            except BindError as exc:
                log.warning("cannot check our binding of %s: %s; it stays counted", key, exc)
                continue
            if key not in self.view.assumed:
                continue  # the watch caught up meanwhile
            if pod is not None and (pod.get("spec") or {}).get("nodeName") == node:
                self.view.apply_pod(pod)  # bound indeed: count it as the watch will show it
            else:
                log.warning("pod %s was bound by the extender but is not bound on %s; releasing", key, node)
                self.view.forget(key)
        return list(expired)

    def learn_workload(self, minimum: int = 50) -> bool:
        """Fragmentation-aware scorers score against the pod shapes they expect: teach them the GPU pods in
        view (with too few, they keep their generic serving mix)."""
        sample = [r for r in self.view.requests.values() if r.wants_gpu]
        if len(sample) < minimum:
            return False
        self._adopt(make_scorer(self.policy.cluster.spec.scheduling.scorer, sample))
        return True

    async def relearn_workload(self, minimum: int = 50) -> None:
        """learn_workload off the event loop: at 50,000 pods learning takes some 60 ms, which would stall every
        call in flight."""
        sample = [r for r in self.view.requests.values() if r.wants_gpu]
        if len(sample) < minimum:
            return
        name = self.policy.cluster.spec.scheduling.scorer
        scorer = await asyncio.to_thread(make_scorer, name, sample)
        if name == self.policy.cluster.spec.scheduling.scorer:  # not if a policy reload changed the scorer meanwhile
            self._adopt(scorer)

    def _adopt(self, scorer: Scorer) -> None:
        """Use a freshly learned scorer, unless the one in use already expects the same pod shapes: it scores
        the same, and its per-node caches are warm."""
        profile = getattr(scorer, "profile", None)
        if profile is not None and getattr(scorer, "name", None) == getattr(self.scorer, "name", None) \
                and profile == getattr(self.scorer, "profile", None):
            return
        self.scorer = scorer
        self.gangs.scorer = scorer

    def apply_scheduling(self, policy: Policy) -> None:
        """A reloaded policy's scheduling knobs; reservations already held keep their nodes."""
        scheduling = policy.cluster.spec.scheduling
        scorer = self.scorer
        if scheduling.scorer != getattr(self.scorer, "name", scheduling.scorer):
            scorer = make_scorer(scheduling.scorer)  # raises before anything changed
        self.policy = policy
        self.scorer = self.gangs.scorer = scorer
        self.gangs.topology_keys = list(scheduling.topology_keys)
        self.gangs.mode = scheduling.topology_mode
        self.gangs.ttl_seconds = scheduling.reservation_seconds
        self.training_steering = scheduling.training_steering

