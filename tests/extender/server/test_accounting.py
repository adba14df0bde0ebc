"""What the view counts stays what the nodes really hold (issue 12, 4): nodes that shrink, GPU indices out of
range, nodes deleted and re-created under a binding in flight, sidecar init containers counted as
kube-scheduler counts them."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from extender.binder import SnapshotBinder
from extender.podspec import PodSpecError, gpu_index, pod_facts, pod_key, pod_request, slim_pod
from extender.scheduler import Scheduler
from extender.view import ClusterView
from tests.kube_objects import node, pod


def used(view: ClusterView, name: str) -> list[int]:
    row = view.state.row(name)
    return [1000 - int(f) for f in view.state.gpu_free[row, : view.state.gpu_count[row]]]


def test_a_share_with_a_gpu_index_out_of_range_is_still_counted():
    share = pod("s", share=500, node_name="n1", annotations={"infergate.io/gpu-index": "12"})
    view = ClusterView()
    view.replace_all([node("n1", gpus=8)], [share])
    assert sum(used(view, "n1")) == 500 and all(i < 8 for i in view.state.allocation("ml/s").gpu_indices)


def test_allocatable_that_shrinks_applies_and_keeps_every_pod_counted():
    shares = [pod(f"s{i}", share=500, node_name="n1", annotations={"infergate.io/gpu-index": str(i)}) for i in (6, 7)]
    view = ClusterView()
    view.replace_all([node("n1", gpus=8)], shares + [pod("w", gpus=4, node_name="n1")])
    view.apply_node(node("n1", gpus=6))
    assert view.state.gpu_count[view.state.row("n1")] == 6 and view.problems == 0
    assert sum(used(view, "n1")) == 5000
    assert all(i < 6 for a in view.state.pods_on("n1") for i in a.gpu_indices)


class Unconfirmed(SnapshotBinder):
    """An API server whose watch has not shown the binding yet."""

    authoritative = False


async def test_a_node_deleted_and_recreated_keeps_a_binding_in_flight(policy):
    view = ClusterView()
    pods = {"ml/a": pod("a", gpus=8), "ml/b": pod("b", gpus=8)}
    view.replace_all([node("n1", gpus=8)], list(pods.values()))
    scheduler = Scheduler(policy, view, Unconfirmed(pods))
    assert (await scheduler.bind("ml", "a", "uid-a", "n1")).error == ""
    view.delete_node("n1")
    view.apply_node(node("n1", gpus=8))
    assert sum(used(view, "n1")) == 8000, "our binding is counted again on the re-created node"
    assert (await scheduler.filter(pods["ml/b"], ["n1"])).fits == []


def with_init(containers: list[dict[str, Any]], init: list[dict[str, Any]], overhead: dict[str, str] | None = None) -> dict[str, Any]:
    p = pod("p")
    p["spec"]["containers"] = containers
    p["spec"]["initContainers"] = init
    if overhead:
        p["spec"]["overhead"] = overhead
    return p


def c(cpu: str, sidecar: bool = False) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "x", "resources": {"requests": {"cpu": cpu}}}
    if sidecar:
        container["restartPolicy"] = "Always"
    return container


@pytest.mark.parametrize(("containers", "init", "cpu"), [
    ([c("1")], [c("2", sidecar=True), c("4")], 6000),   # the init container runs beside the sidecar started before it
    ([c("1")], [c("4"), c("2", sidecar=True)], 4000),   # ... not beside one started after it
    ([c("5")], [c("2", sidecar=True), c("4")], 7000),   # containers and sidecars together are the larger
    ([c("1")], [c("1", sidecar=True), c("1", sidecar=True), c("1")], 3000),
])
def test_sidecars_are_counted_as_kube_scheduler_counts_them(containers, init, cpu):
    assert pod_request(with_init(containers, init)).cpu_milli == cpu
    assert pod_request(with_init(containers, init, {"cpu": "250m"})).cpu_milli == cpu + 250


@pytest.mark.parametrize(("pod_level", "cpu", "memory"), [
    ({"requests": {"cpu": "3", "memory": "1Gi"}}, 3000, 1 << 30),
    ({"limits": {"cpu": "2"}}, 2000, 0),        # requests default to limits
    ({"requests": {"memory": "2Gi"}}, 1000, 2 << 30),  # CPU still the containers'
])
def test_pod_level_resources_replace_the_containers_cpu_and_memory(pod_level, cpu, memory):
    p = pod("p", gpus=2)
    p["spec"]["resources"] = pod_level
    request = pod_request(p)
    assert (request.cpu_milli, request.memory_bytes, request.gpus) == (cpu, memory, 2)
    assert pod_request(slim_pod(p)) == request


_CONTAINER = st.fixed_dictionaries({"name": st.just("c")}, optional={
    "resources": st.fixed_dictionaries({}, optional={
        "requests": st.dictionaries(st.sampled_from(["cpu", "memory", "nvidia.com/gpu"]), st.sampled_from(["1", "2", "500m", "1Gi"]), max_size=3),
        "limits": st.dictionaries(st.sampled_from(["cpu", "nvidia.com/gpu", "infergate.io/gpu-milli"]), st.sampled_from(["1", "2", "300"]), max_size=3)}),
    "restartPolicy": st.just("Always"), "image": st.just("x"), "env": st.just([{"name": "A", "value": "b"}])})
_POD = st.fixed_dictionaries({
    "apiVersion": st.just("v1"), "kind": st.just("Pod"),
    "metadata": st.fixed_dictionaries({"name": st.just("p"), "namespace": st.just("ml"), "uid": st.just("u")}, optional={
        "labels": st.dictionaries(st.sampled_from(["infergate.io/workload", "leaderworkerset.sigs.k8s.io/name", "app"]),
                                  st.sampled_from(["inference", "training", "x"]), max_size=2),
        "annotations": st.dictionaries(st.sampled_from(["infergate.io/gpu-index", "infergate.io/reserved-node", "infergate.io/group",
                                                        "infergate.io/group-size", "note"]), st.sampled_from(["1", "n1", "g", "2"]), max_size=3),
        "ownerReferences": st.just([{"kind": "Job", "name": "j"}])}),
    "spec": st.fixed_dictionaries({"containers": st.lists(_CONTAINER, min_size=1, max_size=2)}, optional={
        "initContainers": st.lists(_CONTAINER, max_size=2), "nodeName": st.just("n1"),
        "nodeSelector": st.just({"pool": "a"}), "tolerations": st.just([{"key": "k", "operator": "Exists"}]),
        "overhead": st.just({"cpu": "250m"}), "resources": st.just({"requests": {"cpu": "4"}}),
        "schedulingGroup": st.just({"podGroupName": "g"}), "volumes": st.just([{"name": "v", "emptyDir": {}}])}),
}, optional={"status": st.sampled_from([{}, {"phase": "Running"}, {"phase": "Succeeded", "conditions": []}])})


@settings(max_examples=300, deadline=None)
@given(_POD)
def test_a_slim_pod_reads_as_the_full_one(p):
    """The extender keeps only the slim pod of a list (slim_pod): whatever it reads must read the same."""
    def read(obj):
        try:
            return pod_key(obj), pod_facts(obj), pod_request(obj), gpu_index(obj)
        except PodSpecError as exc:
            return str(exc)

    assert read(slim_pod(copy.deepcopy(p))) == read(p)
