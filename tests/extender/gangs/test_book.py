"""GangBook on its own: what a failed binding gives back."""

from __future__ import annotations

from extender.core import ClusterState, NodeSpec, PodRequest, make_scorer
from extender.gangs.book import GangBook, Member, Reservation

GiB = 1 << 30


def _book() -> tuple[ClusterState, GangBook, Reservation]:
    state = ClusterState([NodeSpec(f"n{i}", cpu_milli=64_000, memory_bytes=256 * GiB, gpus=8) for i in range(2)])
    book = GangBook(state, make_scorer("infergate"), ())
    request = PodRequest(cpu_milli=1000, gpus=8)
    reservation = book.plan("ml/job", [Member(request, pod="ml/a"), Member(request, pod="ml/b")])
    assert isinstance(reservation, Reservation)
    return state, book, reservation


def test_a_failed_binding_holds_its_slot_again() -> None:
    state, book, reservation = _book()
    slot = reservation.slots[0]
    book.hand_over(slot)
    assert state.allocation(slot.key) is None
    book.take_back(slot)
    assert state.allocation(slot.key) is not None and not slot.bound


def test_a_binding_that_fails_after_its_reservation_was_released_holds_nothing() -> None:
    """Found in review: the reservation expired (or its node changed) while the binding was in flight; taking
    the slot back re-held capacity no reservation owned, for good."""
    state, book, reservation = _book()
    slot = reservation.slots[0]
    book.hand_over(slot)
    book.release("ml/job")
    book.take_back(slot)
    assert state.allocation(slot.key) is None
    assert state.gpu_used_milli() == 0
