"""The extender's gang guarantees against the real kube-scheduler (issue 12): a gang with cordoned and tainted
nodes in view, and a LeaderWorkerSet whose leader and workers differ, each placed whole within a minute.

The LeaderWorkerSet's pods are made here, labelled as its controller and webhook label them (sigs.k8s.io/lws
v0.8.0 pod_webhook.go); the LeaderWorkerSet object exists (with replicas 0, so a running LWS controller
creates nothing of its own) because the extender reads its templates to hold the workers' places while only
the leader exists."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from devcluster.cluster import LocalCluster
from devcluster.stack import InfergateStack
from tests.e2e.test_gangs import gpu_pod, node_of

pytestmark = pytest.mark.e2e


def lws_member(lws: str, rank: int, size: int, gpus: int, product: str) -> dict[str, Any]:
    name = f"{lws}-0" if rank == 0 else f"{lws}-0-{rank}"
    member = gpu_pod(name, "ml-serving", gpus, product, "inference")
    member["metadata"]["labels"] = {
        "leaderworkerset.sigs.k8s.io/name": lws, "leaderworkerset.sigs.k8s.io/group-index": "0",
        "leaderworkerset.sigs.k8s.io/worker-index": str(rank),
    }
    member["metadata"]["annotations"]["leaderworkerset.sigs.k8s.io/size"] = str(size)
    if rank:
        member["metadata"]["annotations"]["leaderworkerset.sigs.k8s.io/leader-name"] = f"{lws}-0"
    return member


LWS_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "leaderworkersets.leaderworkerset.x-k8s.io"},
    "spec": {"group": "leaderworkerset.x-k8s.io", "scope": "Namespaced",
             "names": {"kind": "LeaderWorkerSet", "plural": "leaderworkersets", "singular": "leaderworkerset", "shortNames": ["lws"]},
             "versions": [{"name": "v1", "served": True, "storage": True,
                           "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]},
}


def leaderworkerset(name: str, size: int, leader_gpus: int, worker_gpus: int, product: str) -> dict[str, Any]:
    def template(gpus: int) -> dict[str, Any]:
        pod = gpu_pod("template", "ml-serving", gpus, product, "inference")
        return {"metadata": {"annotations": pod["metadata"]["annotations"]}, "spec": pod["spec"]}

    return {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet", "metadata": {"name": name, "namespace": "ml-serving"},
            "spec": {"replicas": 0, "leaderWorkerTemplate": {"size": size, "leaderTemplate": template(leader_gpus), "workerTemplate": template(worker_gpus)}}}


def ensure_lws_api(cluster: LocalCluster) -> None:
    """The LeaderWorkerSet API: the real CRD when its controller is installed, else a schemaless stand-in."""
    if cluster.kubectl("get", "crd", "leaderworkersets.leaderworkerset.x-k8s.io").returncode != 0:
        cluster.kubectl("create", "-f", "-", input=json.dumps(LWS_CRD), check=True)
        cluster.wait_for("the LeaderWorkerSet API", lambda: cluster.kubectl("get", "leaderworkersets", "-A").returncode == 0, timeout=30)


def bound_within(cluster: LocalCluster, names: list[str], seconds: float) -> dict[str, str]:
    cluster.wait_for(f"{', '.join(names)} to be bound", lambda: all(node_of(cluster, "ml-serving", n) for n in names), timeout=seconds)
    return {n: node_of(cluster, "ml-serving", n) for n in names}  # type: ignore[misc]


def test_a_gang_is_placed_whole_beside_cordoned_and_tainted_nodes(stack: InfergateStack) -> None:
    cluster = stack.cluster
    product = "NVIDIA-GH200-e2e"
    ok = cluster.add_gpu_nodes(2, gpus_per_node=4, product=product, labels={"infergate.io/rack": "rack-gh"}, name_prefix="gh-ok")
    cordoned = cluster.add_gpu_nodes(2, gpus_per_node=4, product=product, labels={"infergate.io/rack": "rack-gh"}, name_prefix="gh-cordoned")
    tainted = cluster.add_gpu_nodes(1, gpus_per_node=4, product=product, labels={"infergate.io/rack": "rack-gh"}, name_prefix="gh-tainted")
    for name in cordoned:
        cluster.kubectl("cordon", name, check=True)
    cluster.kubectl("taint", "nodes", tainted[0], "dedicated=batch:NoSchedule", check=True)
    time.sleep(1)  # the extender's watch sees the cordons and the taint
    members = [gpu_pod(f"fenced-{i}", "ml-serving", 4, product, "inference", group="fenced", size=2) for i in range(2)]
    cluster.apply(members)
    placed = bound_within(cluster, ["fenced-0", "fenced-1"], 60)
    assert sorted(placed.values()) == sorted(ok)
    cluster.kubectl("delete", "pod", "fenced-0", "fenced-1", "-n", "ml-serving", "--wait=true", check=True)


def test_a_leaderworkerset_whose_leader_and_workers_differ_is_placed_whole(stack: InfergateStack) -> None:
    cluster = stack.cluster
    product = "NVIDIA-GB200-e2e"
    small = cluster.add_gpu_nodes(1, gpus_per_node=2, product=product, labels={"infergate.io/rack": "rack-gb"}, name_prefix="gb-small")
    big = cluster.add_gpu_nodes(2, gpus_per_node=8, product=product, labels={"infergate.io/rack": "rack-gb"}, name_prefix="gb-big")
    ensure_lws_api(cluster)
    cluster.apply([leaderworkerset("hetero", 3, 1, 8, product)])
    leader = lws_member("hetero", 0, 3, 1, product)
    cluster.apply([leader])
    cluster.wait_for("the leader to be bound", lambda: node_of(cluster, "ml-serving", "hetero-0") is not None, timeout=60)
    # The controller creates the workers once the leader exists (LeaderCreated); here, a moment later.
    cluster.apply([lws_member("hetero", rank, 3, 8, product) for rank in (1, 2)])
    placed = bound_within(cluster, ["hetero-0", "hetero-0-1", "hetero-0-2"], 60)
    assert sorted([placed["hetero-0-1"], placed["hetero-0-2"]]) == sorted(big)
    assert placed["hetero-0"] in small, "the leader leaves both 8-GPU nodes whole for its workers"
    events = json.dumps(cluster.get_json("events", "-n", "ml-serving")["items"])
    assert "every reserved place is taken" not in events
    cluster.kubectl("delete", "pod", "hetero-0", "hetero-0-1", "hetero-0-2", "-n", "ml-serving", "--wait=true", check=True)
    cluster.kubectl("delete", "leaderworkerset", "hetero", "-n", "ml-serving", check=True)
