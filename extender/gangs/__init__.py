"""Gangs: groups of pods placed all-or-nothing.

- `book`: GangBook, the reservations themselves (plan, claim, hand over, expire), on a ClusterState only.
- `coordinator`: GangCoordinator, what the scheduler asks about a member (its filter answer, its slot at
  binding, what to record on pods, what survives a relist), reading the view's pods.
"""

from extender.gangs.book import MAX_MEMBERS, SLOT_PREFIX, GangBook, Member, PlanFailure, Reservation, Slot, describe_member
from extender.gangs.coordinator import GangCoordinator

__all__ = ["MAX_MEMBERS", "Member", "SLOT_PREFIX", "GangBook", "GangCoordinator", "PlanFailure", "Reservation", "Slot", "describe_member"]
