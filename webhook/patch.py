"""A JSON patch built op by op while the object is edited, instead of diffing whole documents afterwards.

The builder edits the object in place and records the RFC 6902 operation for each edit, so injectors read the
state earlier injectors left. Edits that change nothing record nothing: admitting our own output again yields
an empty patch.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from webhook.errors import InvalidValue

Path = tuple[str | int, ...]

_IMMUTABLE = (str, int, float, bool, type(None))


@lru_cache(maxsize=4096)  # the same few paths come back in every request
def pointer(path: Path) -> str:
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


def snapshot(value: Any) -> Any:
    """A copy that later edits of `value` cannot reach: what copy.deepcopy gives for JSON values, without
    copying strings and numbers, and several times faster."""
    kind = type(value)
    if kind is dict:
        return {key: item if type(item) in _IMMUTABLE else snapshot(item) for key, item in value.items()}
    if kind is list:
        return [item if type(item) in _IMMUTABLE else snapshot(item) for item in value]
    if kind in _IMMUTABLE:
        return value
    return copy.deepcopy(value)


class PatchBuilder:
    def __init__(self, document: dict[str, Any]):
        self.doc = document
        self.ops: list[dict[str, Any]] = []

    def _record(self, op: str, path: str, value: Any) -> None:
        # The document keeps being edited after this op; the op must keep the value as it was now.
        self.ops.append({"op": op, "path": path, "value": snapshot(value)})

    def get(self, path: Path, default: Any = None) -> Any:
        node: Any = self.doc
        for part in path:
            if isinstance(node, dict):
                if part not in node:
                    return default
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                node = node[part]
            else:
                return default
        return node

    def set(self, path: Path, value: Any) -> None:
        """Set a value, creating missing parent objects; nothing is recorded when it is already so."""
        parent_path, key = path[:-1], path[-1]
        parent = self.get(parent_path)
        if parent is None:
            self._check_reachable(parent_path)
            self.set(parent_path, {key: value})
            return
        if not isinstance(parent, dict) and not (isinstance(parent, list) and isinstance(key, int)):
            raise _not_an_object(parent_path, parent)
        if isinstance(parent, list):
            if parent[key] != value:  # type: ignore[index]
                parent[key] = value  # type: ignore[index]
                self._record("replace", pointer(path), value)
            return
        if key in parent and parent[key] == value:
            return
        op = "replace" if key in parent else "add"
        parent[key] = value
        self._record(op, pointer(path), value)

    def _check_reachable(self, path: Path) -> None:
        """A missing value may be created only under objects: a string where an object belongs is the user's
        error, named by its field (the API server's schema check runs after mutating webhooks)."""
        node: Any = self.doc
        for depth, part in enumerate(path):
            if node is None:
                return  # null is absent in Kubernetes: it is replaced by the object created under it
            if isinstance(node, dict):
                if part not in node:
                    return
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                node = node[part]
            else:
                raise _not_an_object(path[:depth], node)
        if node is not None and not isinstance(node, (dict, list)):
            raise _not_an_object(path, node)

    def set_default(self, path: Path, value: Any) -> Any:
        """Set a value only where there is none (the user's value wins); return what is there afterwards."""
        current = self.get(path)
        if current is None:
            self.set(path, value)
            return value
        return current

    def append(self, path: Path, item: Any) -> int:
        """Append to a list, creating it when missing; return the new item's index."""
        items = self.get(path)
        if items is not None and not isinstance(items, list):
            raise InvalidValue(f"{dotted(path)}: must be a list, not {type(items).__name__}", dotted(path))
        if items is None:
            self.set(path, [item])
            return 0
        items.append(item)
        self._record("add", pointer(path) + "/-", item)
        return len(items) - 1

    def ensure_item(self, path: Path, item: Any, same: Callable[[Any], bool]) -> int:
        """Append the item unless the list has one for which `same` holds; return that item's index."""
        for index, existing in enumerate(self.get(path) or []):
            if same(existing):
                return index
        return self.append(path, item)


def dotted(path: Path) -> str:
    return ".".join(str(p) for p in path)


def _not_an_object(path: Path, value: Any) -> InvalidValue:
    return InvalidValue(f"{dotted(path)}: must be an object, not {type(value).__name__} {value!r:.40}", dotted(path))
