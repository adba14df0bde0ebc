"""Values derived only from policy objects, computed once instead of on every request.

A loaded policy never changes (its models are frozen, and a reload builds new objects), so a value computed
from some policy objects stays right for as long as those objects live. Entries are keyed by the identities
of those objects and hold the objects themselves, so no other object can take over an identity while its
entry exists. The table is bounded: when full, it starts again empty.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")


class IdentityMemo:
    def __init__(self, size: int = 1024):
        self._entries: dict[tuple[tuple[int, ...], Hashable], tuple[tuple[object, ...], Any]] = {}
        self._size = size

    def get(self, objects: tuple[object, ...], key: Hashable, compute: Callable[[], T]) -> T:
        """The value for these objects (by identity) and this key, computed once."""
        entry_key = (tuple(map(id, objects)), key)
        entry = self._entries.get(entry_key)
        if entry is not None and all(held is obj for held, obj in zip(entry[0], objects)):
            return entry[1]
        value = compute()
        if len(self._entries) >= self._size:
            self._entries.clear()
        self._entries[entry_key] = (objects, value)
        return value

    def clear(self) -> None:
        self._entries.clear()
