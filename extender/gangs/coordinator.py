"""The gang state machine the scheduler drives, in the manner of coscheduling's PodGroupManager: plan a group
when its members are known, answer each member with its reserved node, hand a slot to the member being bound,
and keep reservations true to the cluster across node changes, relists and restarts. No I/O: the scheduler
fetches what describes members not created yet (`templates`) and writes what `to_record` returns.

Each member is planned with its own request and on the nodes it may use (extender.constraints): the pod being
filtered on the nodes kube-scheduler passed, the others on what their own spec allows, members not created yet
from their describing object (a LeaderWorkerSet's leader and worker templates). Groups that number their pods (a
LeaderWorkerSet) may bind their leader before the workers exist, since the controller creates the workers
after it; in other groups no member binds before all exist (their places are held meanwhile, and released
when the reservation expires), so such a group is never bound in part. A PodGroup's gang is planned only once
its minimum count of members exists, as its scheduler's gang plugin waits for them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from extender.constraints import Placement, allowed_rows
from extender.core import ClusterState, PodRequest
from extender.filtering import Filtered
from extender.gangs.book import MAX_MEMBERS, GangBook, Member, PlanFailure, Slot
from extender.podspec import PodFacts, Template
from extender.view import ClusterView
from infergate.constants import COSCHEDULING_POD_GROUP, NATIVE_POD_GROUP

log = logging.getLogger(__name__)

LWS = "LeaderWorkerSet"


class GangCoordinator:
    def __init__(self, view: ClusterView, book: GangBook):
        self.view = view
        self.book = book
        # What describes members not created yet, by describer ("namespace/name" of a LeaderWorkerSet); None
        # when it could not be read (its members are then planned like the member being filtered).
        self.templates: dict[str, Template | None] = {}
        view.node_hooks.append(self.node_changed)
        view.pod_groups.listed_hooks.append(self._hold_for_partly_bound)
        view.pod_groups.changed_hooks.append(self.pod_group_changed)

    def pending(self, key: str) -> bool:
        """Is the pod still waiting for a node (known, unbound, not finished)?"""
        facts = self.view.facts.get(key)
        return facts is not None and facts.node is None and not facts.terminal

    def _live(self, group: str) -> list[str]:
        return [k for k in self.view.members(group) if not self.view.facts[k].terminal]

    # ------------------------------------------------------------------------------------------------ filter
    def filter_member(self, facts: PodFacts, request: PodRequest, names: list[str]) -> Filtered:
        """Plan the whole group when it has no reservation, then answer with the member's reserved node only."""
        assert facts.group is not None
        group = facts.group.key
        self._drop_if_ended(group)
        if group not in self.book.reservations:
            too_big = self._too_big(facts)
            if too_big is not None:
                return Filtered(unresolvable=dict.fromkeys(names, too_big), result="gang-unresolvable")
            quorum = self._waiting_for_quorum(facts)
            if quorum is not None:
                return Filtered(unresolvable=dict.fromkeys(names, quorum), result="gang-incomplete")
            outcome = self._plan(facts, request, names)
            if isinstance(outcome, PlanFailure):
                return self._failed(outcome, names)
        slot = self.book.claim(group, facts.key, request, facts.group.rank, alive=self.pending)
        if slot is None and self._stale_guess(group):
            # Members not created yet were planned as copies of another (nothing described them) and this one
            # differs: plan the members not bound yet again, each with its real shape.
            self.book.release(group)
            outcome = self._plan(facts, request, names)
            if isinstance(outcome, PlanFailure):
                return self._failed(outcome, names)
            slot = self.book.claim(group, facts.key, request, facts.group.rank, alive=self.pending)
        if slot is None:
            reason = f"gang {group}: every reserved place is taken by another member, or none covers this pod's request"
            return Filtered(failed=dict.fromkeys(names, reason), result="gang-full")
        waiting = self._waiting_for_members(facts)
        if waiting is not None:  # its place is held, but no member binds before the whole group exists
            return Filtered(failed=dict.fromkeys(names, waiting), result="gang-incomplete")
        failed = {name: f"gang {group}: this member is reserved on node {slot.node}" for name in names if name != slot.node}
        fits = [slot.node] if slot.node in names else []
        return Filtered(fits=fits, failed=failed, result="ok" if fits else "no-fit")

    def _drop_if_ended(self, group: str) -> None:
        """A reservation whose bound members have all ended (finished, deleted) belongs to a run of the group
        that is over: its places left unbound must not go to the pods of a new run (a restarted job's first
        pod would be bound alone), which are planned afresh."""
        reservation = self.book.reservations.get(group)
        bound = [s.pod for s in reservation.slots if s.bound] if reservation else []
        if bound and not any(self.view.facts.get(pod) is not None and not self.view.facts[pod].terminal
                             for pod in bound if pod is not None):
            log.info("gang %s: its bound members have ended; what it still held is released", group)
            self.book.release(group)

    @staticmethod
    def _failed(outcome: PlanFailure, names: list[str]) -> Filtered:
        reasons = dict.fromkeys(names, outcome.reason)
        if outcome.resolvable:
            return Filtered(failed=reasons, result="gang-waits")
        return Filtered(unresolvable=reasons, result="gang-unresolvable")

    @staticmethod
    def _too_big(facts: PodFacts) -> str | None:
        group = facts.group
        if group is not None and group.size is not None and group.size > MAX_MEMBERS:
            return f"gang {group.key}: group size {group.size} is more than the {MAX_MEMBERS} members the extender places"
        return None

    def _waiting_for_quorum(self, facts: PodFacts) -> str | None:
        """Why a PodGroup's gang is not planned yet: fewer than its minCount (minMember) pods exist. Its
        scheduler's own gang plugin holds the pods until they do, and the PodGroup's controller is what creates
        the rest, so nothing is held for members that may never come."""
        group = facts.group
        assert group is not None
        if group.source not in (NATIVE_POD_GROUP, COSCHEDULING_POD_GROUP) or group.size is None:
            return None
        live = len(set(self._live(group.key)) | {facts.key})
        if live >= group.size:
            return None
        return (f"gang {group.key}: {live} of its {group.size} members exist; the extender reserves nodes for a "
                f"PodGroup only once its minimum count of members exists, and places it only whole")

    def _waiting_for_members(self, facts: PodFacts) -> str | None:
        """Why a member of a group that does not number its pods may not bind yet: some members do not exist.
        Their places are held meanwhile (members not created yet are planned like this one), so the group is
        never bound in part: it binds once whole, or its reservation expires and nothing was bound."""
        group = facts.group
        assert group is not None
        if group.source == LWS or group.size is None:
            return None  # a LeaderWorkerSet's leader binds first: its controller creates the workers after it
        live = len(set(self._live(group.key)) | {facts.key})  # this pod exists, whether the watch showed it yet or not
        if live >= group.size:
            return None
        reservation = self.book.reservations.get(group.key)
        nodes = sorted({s.node for s in reservation.slots}) if reservation else []
        return (f"gang {group.key}: {live} of its {group.size} members exist; its nodes ({', '.join(nodes)}) are "
                f"reserved until all exist or {self.book.ttl_seconds:.0f}s pass, and it binds only whole")

    def _stale_guess(self, group: str) -> bool:
        reservation = self.book.reservations.get(group)
        return reservation is not None and any(s.pod is None and not s.bound for s in reservation.slots)

    def _plan(self, facts: PodFacts, request: PodRequest, names: list[str] | None):
        members, near = self.members_to_place(facts, request, names)
        return self.book.plan(facts.group.key, members, near, facts.group.topology)  # type: ignore[union-attr]

    def members_to_place(self, facts: PodFacts, request: PodRequest, names: Sequence[str] | None = None) -> tuple[list[Member], list[str]]:
        """The members still to place (this pod first), each with its own request and the nodes it may use
        (this pod: among `names`, those kube-scheduler passed, when given), and the nodes of the group's bound
        members."""
        assert facts.group is not None
        group = facts.group
        state = self.view.state
        own = allowed_rows(state, facts.placement)
        if names is not None:
            given = self.view.rows_of(list(names))
            passed = np.zeros(state.capacity_rows, dtype=bool)
            passed[given[given >= 0]] = True  # kube-scheduler's own filters already ran for this pod
            own = passed if own is None else passed & own
        members = [Member(request, group.rank, facts.key, own, facts.placement)]
        near: list[str] = []
        ranks = {group.rank}
        for key in self._live(group.key):
            other = self.view.facts[key]
            if key == facts.key:
                continue
            if other.node is not None:
                near.append(other.node)
            else:
                members.append(Member(self.view.requests[key], other.group.rank if other.group else None, key,
                                      allowed_rows(state, other.placement), other.placement))
            ranks.add(other.group.rank if other.group else None)
        size = group.size or len(members) + len(near)
        room = max(0, size - len(near))
        if 0 < room < len(members):
            # More members than the gang needs (a PodGroup's minCount is a quorum): any of them make it, and the
            # smallest are the likeliest to fit; this pod is one of them.
            members = members[:1] + sorted(members[1:], key=lambda m: m.request.total_gpu_milli)[: room - 1]
        members = members[:room]
        missing = max(0, size - len(members) - len(near))
        if missing:
            template = self.templates.get(facts.describer) if facts.describer else None
            free_ranks = [r for r in range(size) if r not in ranks] if group.source == LWS else []
            allowed: dict[Placement, np.ndarray | None] = {}
            for i in range(missing):
                rank = free_ranks[i] if i < len(free_ranks) else None
                shape, placement = (template.of_rank(rank).request, template.of_rank(rank).placement) if template \
                    else (request, facts.placement)
                if placement not in allowed:
                    allowed[placement] = allowed_rows(state, placement)
                members.append(Member(shape, rank, None, allowed[placement], placement))
        return members, near

    def reserved_node(self, facts: PodFacts) -> str | None:
        """The node held for this member, if it holds a slot."""
        reservation = self.book.reservations.get(facts.group.key) if facts.group else None
        slot = reservation.slot_of(facts.key) if reservation else None
        return slot.node if slot else None

    def unrecorded_place(self, facts: PodFacts) -> str | None:
        """The node held for a waiting member of a partly bound group, where the pod does not say it yet (a
        member created after the group's first binding, when the others were recorded): written on the pod,
        a restarted extender keeps the place instead of planning it again."""
        if facts.group is None or facts.node is not None:
            return None
        node = self.reserved_node(facts)
        if node is None or node == facts.reserved_node or not self._partly_bound(facts.group.key):
            return None
        return node

    # -------------------------------------------------------------------------------------------------- bind
    def slot_for_binding(self, facts: PodFacts, request: PodRequest, node: str) -> Slot | str:
        """The member's slot, for its binding on `node`; else why it may not bind there."""
        assert facts.group is not None
        slot = self.book.claim(facts.group.key, facts.key, request, facts.group.rank, alive=self.pending)
        if slot is None or slot.node != node:
            where = f"its reserved node is {slot.node}" if slot else "its group has no reservation (it is planned again at its next filter)"
            return f"cannot bind gang member {facts.key} to node {node}: {where}"
        return slot

    def first_binding(self, slot: Slot) -> bool:
        return not any(s.bound for s in self.book.reservations[slot.group].slots)

    def to_record(self, group: str) -> list[tuple[str, str]]:
        """(pod, node) of each pending member of the group, claiming slots for members that have none yet: what
        is written on the pods at the first binding, so a restarted extender can rebuild the reservation."""
        for key in self.view.members(group):
            if self.pending(key):
                self.book.claim(group, key, self.view.requests[key], self.view.facts[key].group.rank, alive=self.pending)  # type: ignore[union-attr]
        reservation = self.book.reservations.get(group)
        return [(slot.pod, slot.node) for slot in (reservation.slots if reservation else [])
                if slot.pod and not slot.bound and self.pending(slot.pod)]

    # ----------------------------------------------------------------------------------- keeping them true
    def node_changed(self, name: str) -> None:
        """A node changed or went away: a reservation holding a place there that its member can no longer use
        (gone, cordoned, tainted, relabelled, shrunk) is released, and planned again at the next filter."""
        state = self.view.state
        # A node holding more than it has (it shrank under its pods): places held there yield to the pods.
        overcommitted = state.has_node(name) and bool(
            (state.gpu_free[state.row(name), : state.gpu_count[state.row(name)]] < 0).any())
        for group, reservation in list(self.book.reservations.items()):
            for slot in reservation.slots:
                if slot.bound or slot.node != name:
                    continue
                held = state.allocation(slot.key)
                usable = state.has_node(name) and not overcommitted and held is not None and held.gpu_indices == slot.gpu_indices and (
                    not isinstance(slot.placement, Placement)
                    or slot.placement.why_not(name, state.labels(name), state.taints_at(state.row(name))) is None)
                if not usable:
                    log.info("gang %s: its place on node %s is no longer usable; it is planned again", group, name)
                    self.book.release(group)
                    break

    def pod_group_changed(self, group: str) -> None:
        """A PodGroup was created, edited (minCount, topology) or deleted. Places planned from what it said
        before are let go while no member is bound (a member beyond a smaller quorum would be refused for the
        place held for itself), and once it is gone (its members are refused until it is back, so the places
        would only keep others out); a partly bound gang whose PodGroup exists has them planned again from what
        it says now."""
        live = self._live(group)
        gone = not live or isinstance(self.view.resolve(self.view.facts[live[0]]), str)
        if group in self.book.reservations and (gone or not self._partly_bound(group)):
            self.book.release(group)
        self._hold_for_partly_bound()

    def after_relist(self, state: ClusterState) -> None:
        """Carry gang reservations into the rebuilt state, and restore those recorded on pending pods."""
        self.book.rebind(state)
        recorded: dict[str, list[tuple[str, PodRequest, str]]] = {}
        for key, facts in self.view.facts.items():
            if facts.group and facts.reserved_node and facts.node is None and not facts.terminal:
                recorded.setdefault(facts.group.key, []).append((key, self.view.requests[key], facts.reserved_node))
        for group, members in recorded.items():
            if group not in self.book.reservations and self.book.restore(group, members) is None:
                log.warning("the recorded reservation of gang %s no longer fits; it is planned again", group)
        self._hold_for_partly_bound()
        for node in {s.node for r in self.book.reservations.values() for s in r.slots}:
            self.node_changed(node)

    def _hold_for_partly_bound(self) -> None:
        """After a relist or restart: a group partly bound, with members waiting and nothing recorded for them
        (they were created after its first binding), is planned now, before anyone else can take the room its
        waiting members need."""
        for key in self.view.groups():
            live = self._live(key)
            if not live:
                continue
            bound = [k for k in live if self.view.facts[k].node is not None]
            waiting = [k for k in live if self.view.facts[k].node is None]
            # the group's size and topology as its PodGroup says (a basic PodGroup, or one whose quorum is bound,
            # is no gang: its waiting pods are placed one by one and would never claim a reservation)
            first = self.view.resolve(self.view.facts[waiting[0] if waiting else live[0]])
            if isinstance(first, str) or first.group is None or not first.in_gang:
                if key in self.book.reservations and not isinstance(first, str):
                    self.book.release(key)
                continue
            if key in self.book.reservations:
                continue
            group = first.group
            missing = group.source == LWS and group.size is not None and len(live) < group.size
            if not bound or not (waiting or missing):
                continue
            members, near = self.members_to_place(first, self.view.requests[first.key])
            if not waiting:  # the bound member stood in for the shape of those not created yet
                members, near = members[1:], near + [first.node]  # type: ignore[list-item]
            outcome = self.book.plan(group.key, members, near, group.topology)
            if isinstance(outcome, PlanFailure):
                log.warning("gang %s is partly bound and its waiting members do not fit: %s", group.key, outcome.reason)

    def undescribed(self) -> list[str]:
        """Describers the coordinator lacks for groups partly bound with members not created yet (after a
        restart, their places were planned like the bound member until the describer is read)."""
        wanted = set()
        for group in self.view.groups():
            live = self._live(group)
            facts = self.view.facts[live[0]] if live else None
            if facts is None or not facts.describer or facts.describer in self.templates or facts.group is None:
                continue
            if facts.group.size and len(live) < facts.group.size and self._partly_bound(group):
                wanted.add(facts.describer)
        return sorted(wanted)

    def described(self, describer: str) -> None:
        """The describer was read: places guessed for members not created yet are planned again from it."""
        template = self.templates.get(describer)
        if template is None:
            return
        for group in list(self.book.reservations):
            live = self._live(group)
            if not live or self.view.facts[live[0]].describer != describer:
                continue
            if any(s.pod is None and not s.bound and s.request != template.of_rank(s.rank).request
                   for s in self.book.reservations[group].slots):
                self.book.release(group)
        self._hold_for_partly_bound()

    def expire(self, now: float | None = None) -> list[str]:
        return self.book.expire(now, pending=self.pending, partly_bound=self._partly_bound)

    def _partly_bound(self, group: str) -> bool:
        """Is a member of the group bound (seen bound, or bound by us and not gone)?"""
        if any(self.view.facts[k].node is not None for k in self._live(group)):
            return True
        reservation = self.book.reservations.get(group)
        return reservation is not None and any(
            s.bound and s.pod in self.view.facts and not self.view.facts[s.pod].terminal for s in reservation.slots)
