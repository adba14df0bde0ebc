"""Gangs and priorities against a real kube-scheduler: all-or-nothing groups, reasons in events, inference
preempting a whole training gang, and an extender restart in the middle of a group."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from devcluster.cluster import LocalCluster
from devcluster.stack import InfergateStack
from tests.e2e.test_infergate import pods

pytestmark = pytest.mark.e2e


def gpu_pod(name: str, namespace: str, gpus: int, product: str, workload: str, group: str | None = None, size: int = 0,
            gated: bool = False) -> dict[str, Any]:
    annotations = {"infergate.io/gpu-product": product, "infergate.io/workload": workload}
    if group:
        annotations |= {"infergate.io/group": group, "infergate.io/group-size": str(size)}
    spec: dict[str, Any] = {
        "containers": [{"name": "main", "image": "busybox", "resources": {"limits": {"nvidia.com/gpu": str(gpus)}, "requests": {"nvidia.com/gpu": str(gpus)}}}],
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    }
    if gated:
        spec["schedulingGates"] = [{"name": "infergate.io/test-hold"}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace, "annotations": annotations}, "spec": spec}


def node_of(cluster: LocalCluster, namespace: str, name: str) -> str | None:
    result = cluster.kubectl("get", "pod", name, "-n", namespace, "-o", "json")
    return json.loads(result.stdout)["spec"].get("nodeName") if result.returncode == 0 else None


def test_sample_group_is_placed_whole_in_one_rack(stack: InfergateStack) -> None:
    cluster = stack.cluster
    names = ["deepseek-r1-0", "deepseek-r1-0-1"]
    cluster.wait_for("the DeepSeek-R1 group to be bound", lambda: all(pods(cluster, "ml-serving")[n]["spec"].get("nodeName") for n in names), timeout=90)
    placed = pods(cluster, "ml-serving")
    nodes = {n["metadata"]["name"]: n for n in cluster.get_json("nodes")["items"]}
    chosen = [placed[n]["spec"]["nodeName"] for n in names]
    assert len(set(chosen)) == 2
    assert len({nodes[n]["metadata"]["labels"]["infergate.io/rack"] for n in chosen}) == 1


def test_group_that_does_not_fit_stays_pending_with_a_reason(stack: InfergateStack) -> None:
    cluster = stack.cluster
    cluster.add_gpu_nodes(2, product="NVIDIA-B200", labels={"infergate.io/rack": "rack-b200"}, name_prefix="b200")
    members = [gpu_pod(f"big-{i}", "ml-serving", 8, "NVIDIA-B200", "inference", group="big", size=3) for i in range(3)]
    cluster.apply(members)
    deadline = time.monotonic() + 20
    message = ""
    while time.monotonic() < deadline and "gang ml-serving/big needs 3 pods" not in message:
        time.sleep(1)
        message = cluster.kubectl("describe", "pod", "big-0", "-n", "ml-serving").stdout
    assert "gang ml-serving/big needs 3 pods with 8 free NVIDIA-B200 GPUs each" in message, message
    assert all(node_of(cluster, "ml-serving", f"big-{i}") is None for i in range(3)), "no member is placed"
    cluster.kubectl("delete", "pod", "big-0", "big-1", "big-2", "-n", "ml-serving", "--wait=true", check=True)


def test_restart_in_the_middle_of_a_group_double_books_nothing(stack: InfergateStack) -> None:
    cluster = stack.cluster
    leader = gpu_pod("pair-0", "ml-serving", 8, "NVIDIA-B200", "inference", group="pair", size=2)
    worker = gpu_pod("pair-1", "ml-serving", 8, "NVIDIA-B200", "inference", group="pair", size=2, gated=True)
    cluster.apply([worker])
    cluster.apply([leader])
    cluster.wait_for("the leader to be bound", lambda: node_of(cluster, "ml-serving", "pair-0") is not None, timeout=60)
    cluster.wait_for("the worker's reservation to be recorded", lambda: "infergate.io/reserved-node" in cluster.get_json("pod", "pair-1", "-n", "ml-serving")["metadata"].get("annotations", {}), timeout=30)
    reserved = cluster.get_json("pod", "pair-1", "-n", "ml-serving")["metadata"]["annotations"]["infergate.io/reserved-node"]

    stack.stop_server("extender", crash=True)
    stack.start_server("extender")
    cluster.apply([gpu_pod("intruder", "ml-serving", 8, "NVIDIA-B200", "inference")])
    time.sleep(5)
    assert node_of(cluster, "ml-serving", "intruder") is None, "the worker's reserved node is not given away"
    cluster.kubectl("patch", "pod", "pair-1", "-n", "ml-serving", "--type=json", "-p", '[{"op":"remove","path":"/spec/schedulingGates"}]', check=True)
    cluster.wait_for("the worker to be bound", lambda: node_of(cluster, "ml-serving", "pair-1") is not None, timeout=60)
    assert node_of(cluster, "ml-serving", "pair-1") == reserved
    assert node_of(cluster, "ml-serving", "intruder") is None
    cluster.kubectl("delete", "pod", "pair-0", "pair-1", "intruder", "-n", "ml-serving", "--wait=true", check=True)


def test_inference_preempts_a_whole_training_gang(stack: InfergateStack) -> None:
    cluster = stack.cluster
    cluster.add_gpu_nodes(2, product="NVIDIA-L40S", labels={"infergate.io/rack": "rack-l40s"}, name_prefix="l40s")
    training = [gpu_pod(f"trainer-{i}", "ml-training", 8, "NVIDIA-L40S", "training", group="trainer", size=2) for i in range(2)]
    cluster.apply(training)
    cluster.wait_for("the training gang to be bound", lambda: all(node_of(cluster, "ml-training", f"trainer-{i}") for i in range(2)), timeout=60)
    stored = cluster.get_json("pod", "trainer-0", "-n", "ml-training")
    assert stored["spec"]["priorityClassName"] == "infergate-training"

    cluster.apply([gpu_pod("urgent", "ml-serving", 8, "NVIDIA-L40S", "inference")])
    cluster.wait_for("the inference pod to be bound", lambda: node_of(cluster, "ml-serving", "urgent") is not None, timeout=90)
    cluster.wait_for("the whole training gang to be gone",
                     lambda: all(node_of(cluster, "ml-training", f"trainer-{i}") is None for i in range(2)), timeout=60)
    assert cluster.get_json("pod", "urgent", "-n", "ml-serving")["spec"]["priorityClassName"] == "infergate-inference"
