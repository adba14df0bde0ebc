"""What the view counts stays what the nodes really hold (issue 12, 4): nodes that shrink, GPU indices out of
range, nodes deleted and re-created under a binding in flight, sidecar init containers counted as
kube-scheduler counts them."""

from __future__ import annotations

from typing import Any

import pytest

from extender.binder import SnapshotBinder
from extender.podspec import pod_request
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
