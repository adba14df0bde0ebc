"""PodGroups against the real kube-scheduler (GenericWorkload on, its GangScheduling plugin beside the infergate
extender): native scheduling.k8s.io/v1beta1 gangs of whole and fractional GPU pods placed whole in one topology
domain, two gangs competing for room for one, a scheduler-plugins PodGroup whose members arrive one by one, a
quorum made of the members that fit, and inference preempting a training PodGroup as a whole.

Each test brings its own nodes, of a GPU product no other test uses (suffix -pg), so the session's other pods never
compete for them."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devcluster.cluster import LocalCluster
from devcluster.stack import InfergateStack, load_documents
from tests.e2e.invariants import check_invariants

pytestmark = pytest.mark.e2e

RACK = "infergate.io/rack"
SCHEDULER_PLUGINS_CRD = Path(__file__).parent / "crds" / "scheduling.x-k8s.io_podgroups.yaml"


def native_group(name: str, namespace: str, min_count: int, workload: str, topology: list[str] = ()) -> dict[str, Any]:
    """kube-scheduler refuses a PodGroup whose pods' priority differs from its own: it names the PriorityClass
    the webhook gives its pods' workload class."""
    spec: dict[str, Any] = {"schedulingPolicy": {"gang": {"minCount": min_count}},
                            "priorityClassName": f"infergate-{workload}"}
    if topology:
        spec["schedulingConstraints"] = {"topology": [{"key": key} for key in topology]}
    return {"apiVersion": "scheduling.k8s.io/v1beta1", "kind": "PodGroup",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def member(name: str, namespace: str, product: str, workload: str, *, gpus: int = 0, milli: int = 0,
           pod_group: str | None = None, label_group: str | None = None) -> dict[str, Any]:
    """A GPU pod (whole GPUs, or `milli` thousandths of one) of `product`, joined to a native PodGroup by its
    spec or to a scheduler-plugins one by its label."""
    resources = {"nvidia.com/gpu": str(gpus)} if gpus else {"infergate.io/gpu-milli": str(milli)}
    spec: dict[str, Any] = {
        "containers": [{"name": "main", "image": "busybox", "resources": {"limits": resources, "requests": resources}}],
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    }
    if pod_group:
        spec["schedulingGroup"] = {"podGroupName": pod_group}
    metadata: dict[str, Any] = {"name": name, "namespace": namespace,
                                "annotations": {"infergate.io/gpu-product": product, "infergate.io/workload": workload}}
    if label_group:
        metadata["labels"] = {"scheduling.x-k8s.io/pod-group": label_group}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def placed(cluster: LocalCluster, namespace: str, names: list[str]) -> dict[str, str | None]:
    items = {p["metadata"]["name"]: p for p in cluster.get_json("pods", "-n", namespace)["items"]}
    return {n: (items[n]["spec"].get("nodeName") if n in items else None) for n in names}


def delete(cluster: LocalCluster, namespace: str, kind: str, names: list[str]) -> None:
    cluster.kubectl("delete", kind, *names, "-n", namespace, "--wait=true", "--ignore-not-found", check=True)


def finish(cluster: LocalCluster, namespace: str, pods: list[str], groups: list[str], api: str = "scheduling.k8s.io") -> None:
    """Delete the test's pods, then its PodGroups (a native one goes once its pods are gone)."""
    delete(cluster, namespace, "pod", pods)
    delete(cluster, namespace, f"podgroups.{api}", groups)


def no_partial_group(cluster: LocalCluster, namespace: str, sizes: dict[str, int]) -> list[str]:
    pods = cluster.get_json("pods", "-n", namespace)["items"]
    nodes = cluster.get_json("nodes")["items"]
    return [p for p in check_invariants(pods, nodes, set(), sizes) if "group" in p]


@pytest.fixture(scope="module")
def podgroups(stack: InfergateStack) -> Iterator[InfergateStack]:
    """The stack with the scheduler-plugins PodGroup CRD installed; the extender is restarted once so it lists
    the new API now instead of at its next look (it looks for an API it lacks once a minute)."""
    cluster = stack.cluster
    served = cluster.kubectl("api-resources", "--api-group=scheduling.k8s.io", "-o", "name").stdout
    assert "podgroups.scheduling.k8s.io" in served, f"the local cluster must serve the native PodGroup API: {served}"
    cluster.apply(load_documents(SCHEDULER_PLUGINS_CRD))
    cluster.wait_for("the PodGroup CRD to be served", lambda: cluster.kubectl(
        "get", "podgroups.scheduling.x-k8s.io", "-A").returncode == 0, timeout=30)
    stack.stop_server("extender")
    stack.start_server("extender")
    yield stack


def test_native_pod_group_of_whole_and_fractional_pods_lands_whole_in_one_rack(podgroups: InfergateStack) -> None:
    cluster = podgroups.cluster
    product = "NVIDIA-GH200-pg"
    cluster.add_gpu_nodes(2, product=product, labels={RACK: "rack-gh-small"}, name_prefix="gh-small")
    big = cluster.add_gpu_nodes(3, product=product, labels={RACK: "rack-gh-big"}, name_prefix="gh-big")
    # Two 8-GPU pods and two half GPUs: 17 GPUs, more than the small rack's 16, so only the big rack holds it.
    names = ["mixed-w0", "mixed-w1", "mixed-s0", "mixed-s1"]
    pods = [member(n, "ml-serving", product, "inference", gpus=8, pod_group="mixed") for n in names[:2]]
    pods += [member(n, "ml-serving", product, "inference", milli=500, pod_group="mixed") for n in names[2:]]
    cluster.apply([native_group("mixed", "ml-serving", 4, "inference", [RACK])])
    cluster.apply(pods)
    cluster.wait_for("the PodGroup to be bound", lambda: all(placed(cluster, "ml-serving", names).values()), timeout=120)
    where = placed(cluster, "ml-serving", names)
    assert set(where.values()) <= set(big), f"every member in the one rack that holds the group: {where}"
    for name in names[2:]:
        pod = cluster.get_json("pod", name, "-n", "ml-serving")
        assert pod["metadata"]["annotations"]["infergate.io/gpu-index"].isdigit()
    assert no_partial_group(cluster, "ml-serving", {"ml-serving/mixed": 4}) == []
    finish(cluster, "ml-serving", names, ["mixed"])


def test_two_competing_native_gangs_one_then_the_other(podgroups: InfergateStack) -> None:
    cluster = podgroups.cluster
    product = "NVIDIA-B300-pg"
    cluster.add_gpu_nodes(2, product=product, labels={RACK: "rack-b300"}, name_prefix="b300")
    gangs = {g: [f"{g}-{i}" for i in range(2)] for g in ("blue", "green")}
    cluster.apply([native_group(g, "ml-training", 2, "training") for g in gangs])
    # interleaved, so each gang has a member in the queue before the other is complete
    cluster.apply([member(name, "ml-training", product, "training", gpus=8, pod_group=g)
                   for pair in zip(*gangs.values()) for name, g in zip(pair, gangs)])
    all_names = [n for names in gangs.values() for n in names]

    def bound() -> dict[str, int]:
        where = placed(cluster, "ml-training", all_names)
        return {g: sum(1 for n in names if where[n]) for g, names in gangs.items()}

    cluster.wait_for("one gang to be bound", lambda: 2 in bound().values(), timeout=120)
    time.sleep(3)
    counts = bound()
    first = next(g for g, n in counts.items() if n == 2)
    second = next(g for g in gangs if g != first)
    assert counts[second] == 0, f"no partial group: {counts}"
    assert no_partial_group(cluster, "ml-training", {f"ml-training/{g}": 2 for g in gangs}) == []
    delete(cluster, "ml-training", "pod", gangs[first])  # the first gang finishes
    cluster.wait_for("the second gang to be bound", lambda: bound()[second] == 2, timeout=120)
    finish(cluster, "ml-training", gangs[second], list(gangs))


def test_scheduler_plugins_pod_group_members_arriving_one_by_one(podgroups: InfergateStack) -> None:
    cluster = podgroups.cluster
    product = "NVIDIA-H200-pg"
    cluster.add_gpu_nodes(3, product=product, labels={RACK: "rack-h200"}, name_prefix="h200")
    cluster.apply([{"apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup",
                    "metadata": {"name": "trickle", "namespace": "ml-training"}, "spec": {"minMember": 3}}])
    names = [f"trickle-{i}" for i in range(3)]
    for i, name in enumerate(names):
        cluster.apply([member(name, "ml-training", product, "training", gpus=8, label_group="trickle")])
        if i < 2:
            time.sleep(4)
            assert not any(placed(cluster, "ml-training", names[: i + 1]).values()), "nothing placed before the group is whole"
    message = cluster.kubectl("describe", "pod", "trickle-0", "-n", "ml-training").stdout
    assert "of its 3 members exist" in message, message
    cluster.wait_for("the whole group to be bound", lambda: all(placed(cluster, "ml-training", names).values()), timeout=120)
    assert len(set(placed(cluster, "ml-training", names).values())) == 3
    finish(cluster, "ml-training", names, ["trickle"], api="scheduling.x-k8s.io")


def test_a_quorum_is_made_of_the_members_that_fit(podgroups: InfergateStack) -> None:
    """More members than minMember: any two make the gang. Two 8-GPU members cannot share the one 8-GPU node
    (nor can an 8-GPU and a 2-GPU one); the two 2-GPU members can, and are placed."""
    cluster = podgroups.cluster
    product = "NVIDIA-L40S-pg"
    cluster.add_gpu_nodes(1, product=product, labels={RACK: "rack-l40s"}, name_prefix="l40s")
    cluster.apply([{"apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup",
                    "metadata": {"name": "quorum", "namespace": "ml-training"}, "spec": {"minMember": 2}}])
    big, small = ["quorum-big-0", "quorum-big-1"], ["quorum-small-0", "quorum-small-1"]
    cluster.apply([member(n, "ml-training", product, "training", gpus=8, label_group="quorum") for n in big])
    cluster.apply([member(n, "ml-training", product, "training", gpus=2, label_group="quorum") for n in small])
    cluster.wait_for("the two members that fit to be bound", lambda: all(placed(cluster, "ml-training", small).values()), timeout=120)
    assert not any(placed(cluster, "ml-training", big).values())
    finish(cluster, "ml-training", big + small, ["quorum"], api="scheduling.x-k8s.io")


def test_inference_preempts_a_training_pod_group_as_a_whole(podgroups: InfergateStack) -> None:
    cluster = podgroups.cluster
    product = "NVIDIA-RTX-PRO-6000-pg"
    cluster.add_gpu_nodes(2, product=product, labels={RACK: "rack-rtx"}, name_prefix="rtx")
    names = ["pretrain-0", "pretrain-1"]
    cluster.apply([native_group("pretrain", "ml-training", 2, "training")])
    cluster.apply([member(n, "ml-training", product, "training", gpus=8, pod_group="pretrain") for n in names])
    cluster.wait_for("the training PodGroup to be bound", lambda: all(placed(cluster, "ml-training", names).values()), timeout=120)
    cluster.apply([member("serve-now", "ml-serving", product, "inference", gpus=8)])
    cluster.wait_for("the inference pod to be bound", lambda: placed(cluster, "ml-serving", ["serve-now"])["serve-now"], timeout=120)
    cluster.wait_for("the whole training PodGroup to be gone",
                     lambda: not any(placed(cluster, "ml-training", names).values()), timeout=60)
    delete(cluster, "ml-serving", "pod", ["serve-now"])
    finish(cluster, "ml-training", names, ["pretrain"])


def test_the_native_gang_plugin_runs_beside_the_extender(podgroups: InfergateStack) -> None:
    """kube-scheduler itself holds a native gang's pods until minCount exist (GangScheduling's PreEnqueue): a
    lone member never reaches a scheduling cycle, so neither the extender nor any filter is asked about it
    (had it been, the extender's "1 of its 2 members exist" would be in a FailedScheduling event)."""
    cluster = podgroups.cluster
    cluster.add_gpu_nodes(1, product="NVIDIA-GH200-pg", labels={RACK: "rack-held"}, name_prefix="held")
    cluster.apply([native_group("held", "ml-training", 2, "training")])
    cluster.apply([member("held-0", "ml-training", "NVIDIA-GH200-pg", "training", gpus=1, pod_group="held")])
    time.sleep(8)
    assert placed(cluster, "ml-training", ["held-0"])["held-0"] is None
    events = [e for e in cluster.get_json("events", "-n", "ml-training")["items"]
              if e["involvedObject"].get("name") == "held-0" and e.get("reason") == "FailedScheduling"]
    assert events == [], json.dumps(events)
    cluster.apply([member("held-1", "ml-training", "NVIDIA-GH200-pg", "training", gpus=1, pod_group="held")])
    cluster.wait_for("the pair to be bound", lambda: all(placed(cluster, "ml-training", ["held-0", "held-1"]).values()), timeout=60)
    finish(cluster, "ml-training", ["held-0", "held-1"], ["held"])
