"""Faults while groups and single pods are being placed: the extender's watch cut again and again, and the
extender killed and restarted. Afterwards no GPU is double-booked, no group is partial, nothing is lost."""

from __future__ import annotations

import time
from typing import Any

import pytest

from devcluster.proxy import CuttableProxy
from devcluster.stack import InfergateStack
from tests.e2e.invariants import check_invariants
from tests.e2e.test_gangs import gpu_pod

pytestmark = pytest.mark.e2e
PRODUCT = "NVIDIA-GH200"


def share_pod(name: str) -> dict[str, Any]:
    pod = gpu_pod(name, "ml-chaos", 0, PRODUCT, "inference")
    pod["spec"]["containers"][0]["resources"] = {"limits": {"infergate.io/gpu-milli": "500"}, "requests": {"infergate.io/gpu-milli": "500"}}
    return pod


def wave(index: int) -> list[dict[str, Any]]:
    pods = [gpu_pod(f"g{index}-{r}", "ml-chaos", 8, PRODUCT, "inference", group=f"g{index}", size=2) for r in range(2)]
    pods += [gpu_pod(f"s{index}-{i}", "ml-chaos", 1, PRODUCT, "inference") for i in range(2)]
    pods += [share_pod(f"f{index}-{i}") for i in range(2)]
    return pods


def settled(stack: InfergateStack, quiet: float = 6.0, timeout: float = 90) -> None:
    """Wait until no binding has changed for `quiet` seconds."""
    cluster = stack.cluster
    last, since, deadline = None, time.monotonic(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = sorted((p["metadata"]["name"], p["spec"].get("nodeName") or "") for p in cluster.get_json("pods", "-n", "ml-chaos")["items"])
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        time.sleep(1)


def test_watch_cuts_and_restarts_keep_the_invariants(stack: InfergateStack) -> None:
    cluster = stack.cluster
    cluster.kubectl("create", "namespace", "ml-chaos", check=True)
    cluster.kubectl("label", "namespace", "ml-chaos", "infergate.io/injection=enabled", check=True)
    cluster.add_gpu_nodes(4, product=PRODUCT, labels={"infergate.io/rack": "rack-chaos"}, name_prefix="gh200")
    proxy = CuttableProxy(cluster.apiserver_port)
    created: set[str] = set()
    try:
        stack.restart_extender(kubeconfig=stack.kubeconfig_via(proxy.port))
        for index in range(4):
            pods = wave(index)
            cluster.apply(pods)
            created |= {f"ml-chaos/{p['metadata']['name']}" for p in pods}
            for _ in range(3):
                time.sleep(0.7)
                proxy.cut()
            if index == 1:
                stack.restart_extender(kubeconfig=stack.kubeconfig_via(proxy.port))
        # Free some room so that waiting groups get their turn after all the faults.
        cluster.kubectl("delete", "pod", "-n", "ml-chaos", "g0-0", "g0-1", "--wait=true", check=True)
        created -= {"ml-chaos/g0-0", "ml-chaos/g0-1"}
        settled(stack)
        pods = cluster.get_json("pods", "-n", "ml-chaos")["items"]
        problems = check_invariants(pods, cluster.get_json("nodes")["items"], created)
        assert problems == [], "\n".join(problems)
        bound = [p for p in pods if p["spec"].get("nodeName")]
        assert len(bound) >= 10, "placement went on through the faults"
        assert proxy.cuts >= 12
    finally:
        stack.restart_extender(crash=False)
        proxy.close()
        cluster.kubectl("delete", "namespace", "ml-chaos", "--wait=false")
