"""The gang state machine the scheduler drives, in the manner of coscheduling's PodGroupManager: plan a group
when its first member is filtered, answer each member with its reserved node, hand a slot to the member being
bound, and carry reservations across relists and restarts. No I/O: the scheduler writes what it returns."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from extender.core import ClusterState, PodRequest
from extender.gangs.book import GangBook, PlanFailure, Slot
from extender.podspec import PodFacts
from extender.view import ClusterView

log = logging.getLogger(__name__)


@dataclass
class MemberAnswer:
    """A gang member's filter answer: the nodes it may take, and why the others are out."""

    fits: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    unresolvable: dict[str, str] = field(default_factory=dict)
    result: str = "ok"


class GangCoordinator:
    def __init__(self, view: ClusterView, book: GangBook):
        self.view = view
        self.book = book

    def pending(self, key: str) -> bool:
        """Is the pod still waiting for a node (known, unbound, not finished)?"""
        facts = self.view.facts.get(key)
        return facts is not None and facts.node is None and not facts.terminal

    # ------------------------------------------------------------------------------------------------ filter
    def filter_member(self, facts: PodFacts, request: PodRequest, names: list[str]) -> MemberAnswer:
        """Plan the whole group when it has no reservation, then answer with the member's reserved node only."""
        assert facts.group is not None
        group = facts.group.key
        if group not in self.book.reservations:
            members, near = self.members_to_place(facts, request)
            outcome = self.book.plan(group, members, near)
            if isinstance(outcome, PlanFailure):
                reasons = dict.fromkeys(names, outcome.reason)
                if outcome.resolvable:
                    return MemberAnswer(failed=reasons, result="gang-waits")
                return MemberAnswer(unresolvable=reasons, result="gang-unresolvable")
        slot = self.book.claim(group, facts.key, request, facts.group.rank, alive=self.pending)
        if slot is None:
            reason = f"gang {group}: every reserved place is taken by another member, or none covers this pod's request"
            return MemberAnswer(failed=dict.fromkeys(names, reason), result="gang-full")
        failed = {name: f"gang {group}: this member is reserved on node {slot.node}" for name in names if name != slot.node}
        fits = [slot.node] if slot.node in names else []
        return MemberAnswer(fits=fits, failed=failed, result="ok" if fits else "no-fit")

    def members_to_place(self, facts: PodFacts, request: PodRequest) -> tuple[list[PodRequest], list[str]]:
        """Requests of the members still to place (this pod first), and the nodes of the running ones.

        Members that do not exist yet (a LeaderWorkerSet creates workers only once its leader is ready) are
        planned with this pod's request, so the whole group's capacity is held from the first placement."""
        assert facts.group is not None
        group = facts.group
        pending = [request]
        near: list[str] = []
        for key in self.view.members(group.key):
            other = self.view.facts[key]
            if key == facts.key or other.terminal:
                continue
            if other.node is not None:
                near.append(other.node)
            else:
                pending.append(self.view.requests[key])
        size = group.size or len(pending) + len(near)
        missing = max(0, size - len(pending) - len(near))
        return pending[: max(0, size - len(near))] + [request] * missing, near

    def reserved_node(self, facts: PodFacts) -> str | None:
        """The node held for this member, if it holds a slot."""
        reservation = self.book.reservations.get(facts.group.key) if facts.group else None
        slot = reservation.slot_of(facts.key) if reservation else None
        return slot.node if slot else None

    # -------------------------------------------------------------------------------------------------- bind
    def slot_for_binding(self, facts: PodFacts, request: PodRequest, node: str) -> Slot | str:
        """The member's slot, handed over to its binding on `node`; else why it may not bind there."""
        assert facts.group is not None
        slot = self.book.claim(facts.group.key, facts.key, request, facts.group.rank, alive=self.pending)
        if slot is None or slot.node != node:
            where = f"its reserved node is {slot.node}" if slot else "its group has no reservation"
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

    # ---------------------------------------------------------------------------------------------- relists
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
