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
from typing import Any

import numpy as np

from extender.core import MILLI_PER_GPU, ClusterState, PlacementError, PodRequest, Scorer, Statement, choose

SLOT_PREFIX = "gang:"
# Members planned for one group at most: a group-size beyond this is refused, not planned.
MAX_MEMBERS = 4096


@dataclass(frozen=True)
class Member:
    """One place to plan: the request of the pod it is for (or of the object that will create it)."""

    request: PodRequest
    rank: int | None = None  # its rank in the group where the group numbers its pods (LeaderWorkerSet)
    pod: str | None = None  # the pod it is for; None for one not created yet
    allowed: np.ndarray | None = None  # per row of the state: may it use that node at all; None: any node
    placement: Any = None  # what `allowed` was computed from, kept to check the slot later

    def rows(self, rows: np.ndarray) -> np.ndarray:
        return rows if self.allowed is None else rows[self.allowed[rows]]


@dataclass
class Slot:
    group: str
    index: int
    rank: int | None
    request: PodRequest
    node: str
    gpu_indices: tuple[int, ...] = ()
    pod: str | None = None  # the member that holds it
    bound: bool = False
    placement: Any = None

    @property
    def key(self) -> str:
        """The key its capacity is held under in the cluster state while no pod holds it."""
        return f"{SLOT_PREFIX}{self.group}#{self.index}"


@dataclass
class Reservation:
    group: str
    slots: list[Slot]
    domain: str  # where it was placed, for messages
    created: float = field(default_factory=time.monotonic)
    # Some places are for members a controller creates later (a LeaderWorkerSet's workers, created once the
    # leader exists or is ready): those places are held for them while a bound member lives.
    awaits_creation: bool = False

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


def _describe_members(members: Sequence[Member]) -> str:
    counts: dict[str, int] = {}
    for member in members:
        text = describe_member(member.request)
        counts[text] = counts.get(text, 0) + 1
    if len(counts) == 1:
        return f"{len(members)} pods with {next(iter(counts))} each"
    return f"{len(members)} pods (" + ", ".join(f"{n} with {text}" for text, n in counts.items()) + ")"


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
        # The last failed plan of each group, with the state's stamp and the members it was for: planning the
        # same members on an unchanged cluster fails the same way, so it is not done again on every filter.
        self._failed: dict[str, tuple[int, tuple[Any, ...], PlanFailure]] = {}

    def rebind(self, state: ClusterState) -> None:
        """The view rebuilt its state (a relist): carry every unbound slot over into the new one."""
        self.state = state
        self._failed.clear()
        for group, reservation in list(self.reservations.items()):
            for slot in reservation.slots:
                if slot.bound:
                    continue
                try:
                    slot.gpu_indices = self._hold_again(state, slot)
                except PlacementError:
                    self.release(group)
                    break

    @staticmethod
    def _hold_again(state: ClusterState, slot: Slot) -> tuple[int, ...]:
        """Hold a slot in a rebuilt state: on its GPUs if they are free, else, for whole GPUs, on any free ones
        (which GPUs a pod gets is the device plugin's choice; a relist counts bound pods on the lowest free)."""
        try:
            return state.allocate(slot.key, slot.request, slot.node, slot.gpu_indices).gpu_indices
        except PlacementError:
            if slot.request.is_fractional:
                raise
            return state.allocate(slot.key, slot.request, slot.node).gpu_indices

    # -------------------------------------------------------------------------------------------- planning
    def _stamp(self) -> int:
        return int(self.state.version[: self.state.size].max()) if self.state.size else 0

    @staticmethod
    def _signature(members: Sequence[Member], near: Sequence[str]) -> tuple[Any, ...]:
        return (tuple((m.request, m.rank, m.pod, None if m.allowed is None else m.allowed.tobytes()) for m in members),
                tuple(sorted(near)))

    def plan(self, group: str, members: Sequence[Member], near: Sequence[str] = (),
             topology: Sequence[str] = ()) -> Reservation | PlanFailure:
        """Reserve a node for every member, or nothing. `near`: nodes of members already running, whose
        domains are tried first. `topology`: the group's own topology keys (a PodGroup's), which replace the
        policy's and are required: all members in one domain of one of them."""
        if group in self.reservations:
            return self.reservations[group]
        if len(members) > MAX_MEMBERS:
            return PlanFailure(f"gang {group} has {len(members)} members to place; the extender plans at most {MAX_MEMBERS}", False)
        stamp, signature = self._stamp(), (self._signature(members, near), tuple(topology))
        failed = self._failed.get(group)
        if failed is not None and failed[0] == stamp and failed[1] == signature:
            return failed[2]
        keys, mode = (list(topology), "required") if topology else (self.topology_keys, self.mode)
        outcome = self._plan(group, members, near, keys, mode)
        if isinstance(outcome, PlanFailure):
            self._failed[group] = (stamp, signature, outcome)
        else:
            self._failed.pop(group, None)
        return outcome

    def _plan(self, group: str, members: Sequence[Member], near: Sequence[str], keys: Sequence[str],
              mode: str) -> Reservation | PlanFailure:
        quick = self._beyond_capacity(group, members)
        if quick is not None:
            return quick
        order = sorted(range(len(members)), key=lambda i: -members[i].request.total_gpu_milli)
        best_partial = (0, "")
        for label, rows in self._domains(near, keys, mode):
            statement = Statement(self.state)
            placed: dict[int, Slot] = {}
            for i in order:
                member = members[i]
                choice = choose(self.state, member.request, self.scorer, rows=member.rows(rows))
                if choice is None:
                    break
                slot = Slot(group=group, index=i, rank=member.rank, request=member.request, node=choice.node,
                            pod=member.pod, placement=member.placement)
                alloc = statement.allocate(slot.key, member.request, choice.node, choice.gpu_indices)
                slot.gpu_indices = alloc.gpu_indices
                placed[i] = slot
            if len(placed) == len(members):
                statement.commit()
                reservation = Reservation(group, [placed[i] for i in range(len(members))], label,
                                          awaits_creation=any(m.pod is None for m in members))
                self.reservations[group] = reservation
                return reservation
            if len(placed) > best_partial[0]:
                best_partial = (len(placed), label)
            statement.rollback()
        return self._failure(group, members, best_partial, keys, mode)

    def _beyond_capacity(self, group: str, members: Sequence[Member]) -> PlanFailure | None:
        """Fail at once, without walking the nodes, when the members need more GPUs than the cluster has, or
        has free."""
        needed = sum(m.request.total_gpu_milli for m in members)
        if not needed:
            return None
        rows = self.state.rows()
        capacity = int(self.state.gpu_count[rows].sum()) * MILLI_PER_GPU
        what = _describe_members(members)
        if needed > capacity:
            return PlanFailure(f"gang {group} needs {what}: {needed // MILLI_PER_GPU} GPUs, more than the "
                               f"{capacity // MILLI_PER_GPU} of every node in the cluster", False)
        free = int(np.clip(self.state.gpu_free[rows], 0, MILLI_PER_GPU).sum())
        if needed > free:
            return PlanFailure(f"gang {group} needs {what}; no node has that free (the whole cluster has "
                               f"{free / MILLI_PER_GPU:g} GPUs free)", True)
        return None

    def _domains(self, near: Sequence[str], keys: Sequence[str], mode: str) -> list[tuple[str, np.ndarray]]:
        """Candidate domains, smallest kind first; within a kind, those holding `near` nodes first, then the
        tightest (fewest free GPUs). Last, in preferred mode, the whole cluster."""
        all_rows = self.state.rows()
        near_set = set(near)
        domains: list[tuple[str, np.ndarray]] = []
        for key in keys:
            by_value: dict[str, list[int]] = defaultdict(list)
            for row in all_rows.tolist():
                value = self.state.labels_at(row).get(key)
                if value is not None:
                    by_value[value].append(row)

            def rank(item: tuple[str, list[int]]) -> tuple[int, int, str]:
                value, rows = item
                has_near = any(self.state.name_of(r) in near_set for r in rows)
                free = int(np.clip(self.state.gpu_free[rows], 0, MILLI_PER_GPU).sum())
                return (0 if has_near else 1, free, value)

            for value, rows in sorted(by_value.items(), key=rank):
                domains.append((f"{key}={value}", np.array(rows, dtype=np.int64)))
        if mode == "preferred" or not keys:
            domains.append(("the whole cluster", all_rows))
        return domains

    def _failure(self, group: str, members: Sequence[Member], best: tuple[int, str], keys: Sequence[str],
                 mode: str) -> PlanFailure:
        rows = self.state.rows()
        what = _describe_members(members)
        required = "its PodGroup's topology" if keys is not self.topology_keys else "topologyMode: required"
        if mode == "required" and keys and not any(
                any(key in self.state.labels_at(r) for key in keys) for r in rows.tolist()):
            labels = ", ".join(keys)
            return PlanFailure(f"gang {group} needs {what} in one topology domain ({required}), and no "
                               f"node carries any of the labels {labels}", False)
        where = f" in one {keys[0].split('/')[-1]}" if mode == "required" and keys else ""
        placed, label = best
        best_text = f"at most {placed} fit, in {label}" if label else "no node has that free"
        # Could any set of evictions help? Only if the nodes each member may use, emptied, could hold it.
        fits_empty = []
        for member in members:
            usable = member.rows(rows)
            empty_fit = self.state.gpu_count[usable] * MILLI_PER_GPU >= member.request.total_gpu_milli
            empty_fit &= self.state.cpu_capacity[usable] >= member.request.cpu_milli
            if member.request.gpu_products:
                empty_fit &= np.isin(self.state.product[usable], self.state.product_ids(member.request.gpu_products))
            fits_empty.append(int(empty_fit.sum()))
        nodes_for_all = min(fits_empty) if fits_empty else 0
        resolvable = nodes_for_all > 0 and max(fits_empty) >= min(len(members), len(rows))
        reason = f"gang {group} needs {what}{where}; {best_text}"
        if not resolvable:
            reason += f"; only {nodes_for_all} nodes could ever hold one"
        return PlanFailure(reason, resolvable)

    def restore(self, group: str, members: Sequence[tuple[str, PodRequest, str]]) -> Reservation | None:
        """Rebuild a reservation after a restart from its pending members (pod, request, reserved node), as
        recorded on the pods at the group's first binding; None when it no longer fits."""
        if group in self.reservations:
            return self.reservations[group]
        statement = Statement(self.state)
        slots: list[Slot] = []
        try:
            for index, (pod, request, node) in enumerate(members):
                slot = Slot(group=group, index=index, rank=None, request=request, node=node, pod=pod)
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
        """The slot this member takes: the one it holds; else a free one planned for its rank and shape, then
        for its shape, then for its rank, then any that covers its request. A slot held by a pod that no
        longer exists is free again."""
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
        preferences = (
            lambda s: s.rank == rank and rank is not None and s.request == request,
            lambda s: s.request == request,
            lambda s: s.rank == rank and rank is not None,
            lambda s: True,
        )
        chosen = next(s for prefer in preferences for s in free if prefer(s))
        chosen.pod = pod
        return chosen

    def hand_over(self, slot: Slot) -> None:
        """The member is being bound to its slot's node: the slot's capacity becomes the pod's (the caller
        allocates the pod right after, on the slot's GPU indices)."""
        if self.state.allocation(slot.key) is not None:
            self.state.release(slot.key)
        slot.bound = True

    def take_back(self, slot: Slot) -> None:
        """The member's binding failed: the slot holds its capacity again; if its node is gone, the group's
        reservation is released (it is planned again). A reservation released while the binding was in flight
        (expired, its node changed) is not held again: nothing would own that capacity."""
        slot.bound = False
        reservation = self.reservations.get(slot.group)
        if reservation is None or all(s is not slot for s in reservation.slots):
            return
        if not self.state.has_node(slot.node):
            self.release(slot.group)
            return
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

    def expire(self, now: float | None = None, pending: Callable[[str], bool] = lambda _pod: False,
               partly_bound: Callable[[str], bool] = lambda _group: False) -> list[str]:
        """Release the reservations of groups that did not complete in time. A group partly bound keeps its
        reservation (renewed) while a member of it is bound and every other place is held by a member waiting
        for kube-scheduler's next try, or awaits a member its controller creates later: releasing it would
        leave the group partly bound for good."""
        now = time.monotonic() if now is None else now
        expired = []
        for group, reservation in list(self.reservations.items()):
            if reservation.complete or now - reservation.created <= self.ttl_seconds:
                continue
            waiting = [s for s in reservation.slots if not s.bound]
            if partly_bound(group) and all(
                    (s.pod is not None and pending(s.pod)) or (s.pod is None and reservation.awaits_creation) for s in waiting):
                reservation.created = now
                continue
            self.release(group)
            expired.append(group)
        return expired

    def reserved_milli(self) -> int:
        return sum(s.request.total_gpu_milli for r in self.reservations.values() for s in r.slots if not s.bound)

    def reserved_by_node(self) -> dict[str, dict[str, int]]:
        """node -> {group: GPU milli} held there for members not bound yet."""
        held: dict[str, dict[str, int]] = {}
        for group, reservation in self.reservations.items():
            for slot in reservation.slots:
                if not slot.bound:
                    on_node = held.setdefault(slot.node, {})
                    on_node[group] = on_node.get(group, 0) + slot.request.total_gpu_milli
        return held
