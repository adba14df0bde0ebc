"""Finding the runtime's container in a pod under edit."""

from __future__ import annotations

from webhook.patch import PatchBuilder, Path

CONTAINERS: Path = ("spec", "containers")


def container_path(patch: PatchBuilder, name: str) -> Path:
    """The path of the container with this name; the runtime container injector has made sure it exists."""
    for index, container in enumerate(patch.get(CONTAINERS) or []):
        if container.get("name") == name:
            return CONTAINERS + (index,)
    raise LookupError(f"container {name} is not in the pod")


def by_name(name: str):
    return lambda item: isinstance(item, dict) and item.get("name") == name


def free_name(items: list, preferred: str) -> str:
    """`preferred`, or `infergate-<preferred>`(-N) when one of the user's items already has that name."""
    taken = {item.get("name") for item in items if isinstance(item, dict)}
    if preferred not in taken:
        return preferred
    candidate, n = f"infergate-{preferred}", 2
    while candidate in taken:
        candidate, n = f"infergate-{preferred}-{n}", n + 1
    return candidate
