"""All-or-nothing placement of groups of pods (gangs), planned in memory and reserved as one.

When the first member of a group reaches the filter, every member is planned at once inside a Statement
(checkpoint, rollback, commit, as in KAI-Scheduler): if all of them fit, their capacity is reserved in the
cluster state under slot keys, so no other pod can take it, and each member's filter returns its slot's
node; if any does not fit, nothing is held. Two groups that cannot both fit therefore never each hold part
of the cluster: the first one reserves, the second waits.

Topology: the policy's keys are tried in order (smallest domain first, e.g. an NVLink clique, then a rack,
then a zone); among the domains of one key the tightest fit wins, leaving larger free domains whole. In
`preferred` mode a group that fits in no single domain is placed across the cluster; in `required` mode it
waits.

No I/O here: the coordinator (coordinator.py) turns plans into answers, and the scheduler into bindings.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from extender.core import MILLI_PER_GPU, ClusterState, PlacementError, PodRequest, Scorer, Statement, choose

SLOT_PREFIX = "gang:"


@dataclass
class Slot:
    group: str
    rank: int
    request: PodRequest
    node: str
    gpu_indices: tuple[int, ...] = ()
    pod: str | None = None  # the member that claimed it
    bound: bool = False

    @property
    def key(self) -> str:
        """The key its capacity is held under in the cluster state while no pod holds it."""
        return f"{SLOT_PREFIX}{self.group}#{self.rank}"


@dataclass
class Reservation:
    group: str
    slots: list[Slot]
    domain: str  # where it was placed, for messages
    created: float = field(default_factory=time.monotonic)

    @property
    def complete(self) -> bool:
        return all(slot.bound for slot in self.slots)

    def slot_of(self, pod: str) -> Slot | None:
        return next((s for s in self.slots if s.pod == pod), None)


@dataclass(frozen=True)
class PlanFailure:
    reason: str
    resolvable: bool  # could evicting lower-priority pods help?


def _covers(slot: PodRequest, member: PodRequest) -> bool:
    return (
        slot.cpu_milli >= member.cpu_milli and slot.memory_bytes >= member.memory_bytes
        and slot.gpus >= member.gpus and (slot.gpus > 0 or slot.gpu_milli >= member.gpu_milli)
        and (not member.gpu_products or slot.gpu_products <= member.gpu_products or not slot.gpu_products)
    )


def describe_member(request: PodRequest) -> str:
    """What one member needs, as a person reads it: "8 free NVIDIA-H100-80GB-HBM3 GPUs"."""
    products = " or ".join(sorted(request.gpu_products))
    kind = f"{products} " if products else ""
    if request.gpus:
        return f"{request.gpus} free {kind}GPU{'s' if request.gpus != 1 else ''}"
    if request.gpu_milli:
        return f"{request.gpu_milli}m of one {kind}GPU"
    return f"{request.cpu_milli}m CPU"


class GangBook:
    """The reservations of every group being placed, held in one ClusterState."""

    def __init__(self, state: ClusterState, scorer: Scorer, topology_keys: Sequence[str], mode: str = "preferred",
                 ttl_seconds: float = 120.0):
        self.state = state
        self.scorer = scorer
        self.topology_keys = list(topology_keys)
        self.mode = mode
        self.ttl_seconds = ttl_seconds
        self.reservations: dict[str, Reservation] = {}

    def rebind(self, state: ClusterState) -> None:
        """The view rebuilt its state (a relist): carry every unbound slot over into the new one."""
        self.state = state
        for group, reservation in list(self.reservations.items()):
            for slot in reservation.slots:
                if slot.bound:
                    continue
                try:
                    state.allocate(slot.key, slot.request, slot.node, slot.gpu_indices)
                except PlacementError:
                    self.release(group)
                    break

    # -------------------------------------------------------------------------------------------- planning
    def plan(self, group: str, members: Sequence[PodRequest], near: Sequence[str] = ()) -> Reservation | PlanFailure:
        """Reserve a node for every member, or nothing. `near`: nodes of members already running, whose
        domains are tried first."""
        if group in self.reservations:
            return self.reservations[group]
        order = sorted(range(len(members)), key=lambda i: -members[i].total_gpu_milli)
        best_partial = (0, "")
        for label, rows in self._domains(near):
            statement = Statement(self.state)
            placed: dict[int, Slot] = {}
            for i in order:
                choice = choose(self.state, members[i], self.scorer, rows=rows)
                if choice is None:
                    break
                slot = Slot(group=group, rank=i, request=members[i], node=choice.node)
                alloc = statement.allocate(slot.key, members[i], choice.node, choice.gpu_indices)
                slot.gpu_indices = alloc.gpu_indices
                placed[i] = slot
            if len(placed) == len(members):
                statement.commit()
                reservation = Reservation(group, [placed[i] for i in range(len(members))], label)
                self.reservations[group] = reservation
                return reservation
            if len(placed) > best_partial[0]:
                best_partial = (len(placed), label)
            statement.rollback()
        return self._failure(group, members, best_partial)

    def _domains(self, near: Sequence[str]) -> list[tuple[str, np.ndarray]]:
        """Candidate domains, smallest kind first; within a kind, those holding `near` nodes first, then the
        tightest (fewest free GPUs). Last, in preferred mode, the whole cluster."""
        all_rows = self.state.rows()
        near_set = set(near)
        domains: list[tuple[str, np.ndarray]] = []
        for key in self.topology_keys:
            by_value: dict[str, list[int]] = defaultdict(list)
            for row in all_rows:
                value = self.state.labels(self.state.name_of(int(row))).get(key)
                if value is not None:
                    by_value[value].append(int(row))

            def rank(item: tuple[str, list[int]]) -> tuple[int, int, str]:
                value, rows = item
                has_near = any(self.state.name_of(r) in near_set for r in rows)
                free = int(np.clip(self.state.gpu_free[rows], 0, MILLI_PER_GPU).sum())
                return (0 if has_near else 1, free, value)

            for value, rows in sorted(by_value.items(), key=rank):
                domains.append((f"{key}={value}", np.array(rows, dtype=np.int64)))
        if self.mode == "preferred" or not self.topology_keys:
            domains.append(("the whole cluster", all_rows))
        return domains

    def _failure(self, group: str, members: Sequence[PodRequest], best: tuple[int, str]) -> PlanFailure:
        largest = max(members, key=lambda r: r.total_gpu_milli)
        where = f"in one {self.topology_keys[0].split('/')[-1]}" if self.mode == "required" and self.topology_keys else ""
        placed, label = best
        best_text = f"at most {placed} fit, in {label}" if label else "no node has that free"
        # Could any set of evictions help? Only if the cluster's nodes, emptied, could hold every member.
        capacity_rows = self.state.rows()
        fits_empty = 0
        for request in members:
            empty_fit = (self.state.gpu_count[capacity_rows] * MILLI_PER_GPU >= request.total_gpu_milli)
            if request.gpu_products:
                wanted = self.state.product_ids(request.gpu_products)
                empty_fit &= np.isin(self.state.product[capacity_rows], wanted)
            fits_empty = max(fits_empty, int(empty_fit.sum()))
        resolvable = fits_empty >= len(members)
        reason = f"gang {group} needs {len(members)} pods with {describe_member(largest)} each {where}".rstrip() + f"; {best_text}"
        if not resolvable:
            reason += f"; only {fits_empty} nodes could ever hold one"
        return PlanFailure(reason.replace("  ", " "), resolvable)

    def restore(self, group: str, members: Sequence[tuple[str, PodRequest, str]]) -> Reservation | None:
        """Rebuild a reservation after a restart from its pending members (pod, request, reserved node), as
        recorded on the pods at the group's first binding; None when it no longer fits."""
        if group in self.reservations:
            return self.reservations[group]
        statement = Statement(self.state)
        slots: list[Slot] = []
        try:
            for rank, (pod, request, node) in enumerate(members):
                slot = Slot(group=group, rank=rank, request=request, node=node, pod=pod)
                slot.gpu_indices = statement.allocate(slot.key, request, node).gpu_indices
                slots.append(slot)
        except PlacementError:
            statement.rollback()
            return None
        statement.commit()
        self.reservations[group] = Reservation(group, slots, "restored after a restart")
        return self.reservations[group]

    # ------------------------------------------------------------------------------------------- members
    def claim(self, group: str, pod: str, request: PodRequest, rank: int | None,
              alive: Callable[[str], bool] = lambda _pod: True) -> Slot | None:
        """The slot this member takes: the one it holds, else the one of its rank, else any free one that
        covers its request. A slot claimed by a pod that no longer exists is free again."""
        reservation = self.reservations.get(group)
        if reservation is None:
            return None
        held = reservation.slot_of(pod)
        if held is not None:
            return held
        free = [s for s in reservation.slots
                if not s.bound and (s.pod is None or not alive(s.pod)) and _covers(s.request, request)]
        if not free:
            return None
        chosen = next((s for s in free if s.rank == rank), free[0])
        chosen.pod = pod
        return chosen

    def hand_over(self, slot: Slot) -> None:
        """The member is being bound to its slot's node: the slot's capacity becomes the pod's (the caller
        allocates the pod right after, with the same GPU indices)."""
        if self.state.allocation(slot.key) is not None:
            self.state.release(slot.key)
        slot.bound = True

    def take_back(self, slot: Slot) -> None:
        """The member's binding failed: the slot holds its capacity again."""
        slot.bound = False
        self.state.allocate(slot.key, slot.request, slot.node, slot.gpu_indices, force=True)

    def settle(self, group: str) -> None:
        """Forget a reservation once every member is bound (their pods hold the capacity now)."""
        reservation = self.reservations.get(group)
        if reservation is not None and reservation.complete:
            del self.reservations[group]

    def release(self, group: str) -> None:
        reservation = self.reservations.pop(group, None)
        for slot in reservation.slots if reservation else []:
            if not slot.bound and self.state.allocation(slot.key) is not None:
                self.state.release(slot.key)

    def expire(self, now: float | None = None) -> list[str]:
        """Release the reservations of groups that did not complete in time."""
        now = time.monotonic() if now is None else now
        expired = [g for g, r in self.reservations.items() if not r.complete and now - r.created > self.ttl_seconds]
        for group in expired:
            self.release(group)
        return expired

    def reserved_milli(self) -> int:
        return sum(s.request.total_gpu_milli for r in self.reservations.values() for s in r.slots if not s.bound)
