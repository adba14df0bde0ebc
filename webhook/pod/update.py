"""Pods on UPDATE: nothing is injected again; only the args a client sends back are kept as admitted."""

from __future__ import annotations

from typing import Any

from infergate import constants
from webhook.patch import PatchBuilder
from webhook.pod.args import merge_args


def keep_merged_args(pod: dict[str, Any], old: dict[str, Any]) -> list[dict[str, Any]]:
    """On UPDATE: a client re-applying the manifest it created the pod from sends its own args again, which
    would undo the runtime's merged flags, and the API server forbids changing a pod's args. Merging the sent
    args into the stored ones again gives the stored ones back when nothing really changed."""
    if constants.INJECTED_ANNOTATION not in ((old.get("metadata") or {}).get("annotations") or {}):
        return []
    stored = {c.get("name"): c.get("args") for c in (old.get("spec") or {}).get("containers") or []}
    patch = PatchBuilder(pod)
    for index, container in enumerate((pod.get("spec") or {}).get("containers") or []):
        before = stored.get(container.get("name"))
        if before and container.get("args") != before:
            patch.set(("spec", "containers", index, "args"), merge_args(before, container.get("args") or []))
    return patch.ops
