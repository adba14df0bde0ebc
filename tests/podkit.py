"""Building pods and running injectors in tests."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
from policies.loader import Policy
from webhook.patch import PatchBuilder
from webhook.pod.plan import plan_pod


def pod(annotations: dict[str, str] | None = None, *, labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "p"}
    if annotations:
        metadata["annotations"] = annotations
    if labels:
        metadata["labels"] = labels
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": {"containers": [], **spec}}


def run_injectors(policy: Policy, original: dict[str, Any], *injectors, namespace: str = "ml") -> dict[str, Any]:
    """Plan the pod and run the injectors; checks that the recorded patch reproduces the edited pod."""
    edited = copy.deepcopy(original)
    plan = plan_pod(edited, namespace, policy)
    patch = PatchBuilder(edited)
    for inject in injectors:
        inject(plan, patch)
    assert jsonpatch.apply_patch(original, patch.ops) == edited
    return edited
