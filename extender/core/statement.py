"""Tentative allocations for a whole gang, undone or kept as one (in the manner of KAI-Scheduler's Statement).

Allocations made through a statement are real in the cluster state (so later members of the gang see them),
but they are recorded, so `rollback` can give them back in reverse order, to a checkpoint or entirely.
`commit` keeps them and ends the statement.
"""

from __future__ import annotations

from collections.abc import Iterable

from extender.core.cluster import ClusterState
from extender.core.resources import Allocation, PlacementError, PodRequest

__all__ = ["Statement", "StatementClosed"]


class StatementClosed(PlacementError):
    """The statement was already committed or rolled back."""


class Statement:
    def __init__(self, state: ClusterState) -> None:
        self.state = state
        # Each entry: ("allocate", alloc) undone by release, or ("release", alloc) undone by re-allocating.
        self._log: list[tuple[str, Allocation]] = []
        self._open = True

    def __enter__(self) -> Statement:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        """Leaving the block by an exception rolls back; leaving it normally keeps what is still open."""
        if self._open:
            if exc_type is not None:
                self.rollback()
            else:
                self.commit()

    @property
    def is_open(self) -> bool:
        return self._open

    @property
    def allocations(self) -> list[Allocation]:
        """Allocations this statement made and still holds."""
        held: dict[str, Allocation] = {}
        for op, alloc in self._log:
            if op == "allocate":
                held[alloc.pod_key] = alloc
            else:
                held.pop(alloc.pod_key, None)
        return list(held.values())

    def _check_open(self) -> None:
        if not self._open:
            raise StatementClosed("statement already committed or rolled back")

    def allocate(self, pod_key: str, request: PodRequest, node: str,
                 gpu_indices: Iterable[int] | None = None) -> Allocation:
        self._check_open()
        before = self.state.allocation(pod_key)
        alloc = self.state.allocate(pod_key, request, node, gpu_indices)
        if before is None:  # an idempotent repeat took nothing new, so there is nothing to undo
            self._log.append(("allocate", alloc))
        return alloc

    def release(self, alloc_or_key: Allocation | str) -> Allocation:
        self._check_open()
        alloc = self.state.release(alloc_or_key)
        self._log.append(("release", alloc))
        return alloc

    def checkpoint(self) -> int:
        """A mark to roll back to."""
        self._check_open()
        return len(self._log)

    def rollback(self, checkpoint: int | None = None) -> None:
        """Undo everything after `checkpoint` in reverse order and keep the statement open; without a
        checkpoint, undo everything and close it."""
        self._check_open()
        close = checkpoint is None
        checkpoint = 0 if checkpoint is None else checkpoint
        if not 0 <= checkpoint <= len(self._log):
            raise ValueError(f"checkpoint {checkpoint} is not a mark of this statement")
        while len(self._log) > checkpoint:
            op, alloc = self._log.pop()
            if op == "allocate":
                self.state.release(alloc)
            else:
                self.state.allocate(alloc.pod_key, alloc.request, alloc.node, alloc.gpu_indices, force=True)
        if close:
            self._open = False

    def commit(self) -> list[Allocation]:
        """Keep every change; returns the allocations the statement made and still holds."""
        self._check_open()
        held = self.allocations
        self._log.clear()
        self._open = False
        return held
