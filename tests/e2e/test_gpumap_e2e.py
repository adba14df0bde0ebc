"""The GPU map of a running extender that watches a real API server: what it shows is what the API server says
(every GPU node, every bound GPU pod on the GPUs of its node, the pending ones), once the watch has caught up."""

from __future__ import annotations

import json
import ssl
import urllib.request
from typing import Any

import pytest

from devcluster.cluster import ClusterError, LocalCluster
from devcluster.stack import InfergateStack

pytestmark = pytest.mark.e2e


def _gpu_milli(pod: dict[str, Any]) -> int:
    total = 0
    for container in pod["spec"]["containers"]:
        limits = container.get("resources", {}).get("limits", {})
        total += 1000 * int(limits.get("nvidia.com/gpu", 0)) + int(limits.get("infergate.io/gpu-milli", 0))
    return total


def _truth(cluster: LocalCluster) -> dict[str, Any]:
    nodes = [n for n in cluster.get_json("nodes")["items"] if int(n["status"]["allocatable"].get("nvidia.com/gpu", 0))]
    pods = [p for p in cluster.get_json("pods", "-A")["items"]
            if _gpu_milli(p) and p["status"].get("phase") not in ("Succeeded", "Failed")
            and not p["metadata"].get("deletionTimestamp")]
    bound = {f"{p['metadata']['namespace']}/{p['metadata']['name']}": p["spec"]["nodeName"]
             for p in pods if p["spec"].get("nodeName")}
    return {"nodes": len(nodes), "gpus": sum(int(n["status"]["allocatable"]["nvidia.com/gpu"]) for n in nodes),
            "allocated": sum(_gpu_milli(p) for p in pods if p["spec"].get("nodeName")),
            "pending": len(pods) - len(bound), "bound": bound}


def test_the_map_matches_the_api_server(cluster: LocalCluster, stack: InfergateStack) -> None:
    context = ssl.create_default_context(cafile=str(stack.tls_dir / "ca.crt"))
    base = f"https://127.0.0.1:{stack.servers['extender'].port}/api/v1/cluster"

    def get(query: str = "") -> dict[str, Any]:
        with urllib.request.urlopen(base + query, context=context, timeout=10) as response:
            return json.loads(response.read())

    def shown() -> dict[str, Any]:
        data = get()
        totals = data["totals"]
        on_gpus: dict[str, str] = {}
        for group in data["groups"]:
            detail = get(f"?group={group['id']}&limit=500")
            for node in detail["page"]:
                for gpu in node["gpus"]:
                    on_gpus.update({h["pod"]: node["name"] for h in gpu["holders"] if "pod" in h})
        return {"nodes": totals["gpuNodes"], "gpus": totals["gpus"],
                "allocated": totals["allocatedMilli"], "pending": data["pendingCount"],
                "bound": on_gpus}

    seen: list[dict[str, Any]] = []

    def agree() -> bool:
        # The summary is cached for 2 s and the watch lags a little: compare until both settle on one truth.
        seen[:] = [_truth(cluster), shown()]
        return seen[0] == seen[1]

    try:
        cluster.wait_for("the GPU map to show what the API server holds", agree, timeout=60, interval=1)
    except ClusterError:
        raise AssertionError(f"API server: {seen[0]}\nGPU map:    {seen[1]}") from None
    assert seen[0]["bound"], "no GPU pod was placed: nothing was compared"
