"""A stand-in for kube-scheduler in tests: filter, prioritize and bind through the extender, one pod at a time."""

from __future__ import annotations

import json
from typing import Any

from extender.binder import SnapshotBinder
from extender.server import ExtenderServer
from extender.view import ClusterView
from policies.loader import Policy


class MiniScheduler:
    def __init__(self, policy: Policy, nodes: list[dict[str, Any]], pods: list[dict[str, Any]],
                 leaderworkersets: list[dict[str, Any]] = ()):
        self.view = ClusterView()
        self.view.replace_all(nodes, pods)
        self.pods = {f"{p['metadata']['namespace']}/{p['metadata']['name']}": p for p in pods}
        self.binder = SnapshotBinder(self.pods, {f"{o['metadata']['namespace']}/{o['metadata']['name']}": o for o in leaderworkersets})
        self.server = ExtenderServer(policy, self.view, self.binder)
        self.nodes = [n["metadata"]["name"] for n in nodes]
        self.reasons: dict[str, dict[str, str]] = {}

    async def call(self, verb: str, body: dict[str, Any]) -> Any:
        answer, _result = await self.server.answer(verb, json.dumps(body).encode())
        return json.loads(answer) if isinstance(answer, bytes) else answer

    async def schedule(self, key: str, names: list[str] | None = None) -> str | None:
        """One scheduling cycle for the pod (over `names`, default every node); its node, or None with the
        reasons kept in self.reasons."""
        pod = self.pods[key]
        result = await self.call("filter", {"Pod": pod, "NodeNames": self.nodes if names is None else names})
        if not result["NodeNames"]:
            self.reasons[key] = {**result["FailedNodes"], **result["FailedAndUnresolvableNodes"]}
            return None
        scores = await self.call("prioritize", {"Pod": pod, "NodeNames": result["NodeNames"]})
        best = max(scores, key=lambda s: (s["Score"], -self.nodes.index(s["Host"])))["Host"]
        bound = await self.call("bind", {"PodName": pod["metadata"]["name"], "PodNamespace": pod["metadata"]["namespace"], "PodUID": pod["metadata"]["uid"], "Node": best})
        if bound["Error"]:
            self.reasons[key] = {best: bound["Error"]}
            return None
        self.view.apply_pod(pod)  # what the watch would show next
        return best

    def add(self, pod: dict[str, Any]) -> str:
        key = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
        self.pods[key] = pod
        self.view.apply_pod(pod)
        return key

    def delete(self, key: str) -> None:
        self.pods.pop(key, None)
        self.view.delete_pod(key)
