"""The extender's view: what the API server reports wins, and bindings in flight keep their GPUs."""

from __future__ import annotations

from extender.view import ClusterView
from tests.kube_objects import node, pod


def free(view: ClusterView, name: str) -> list[int]:
    return view.state.free_summary(name)["gpu_free_milli"]


def test_pods_count_where_the_api_server_says():
    view = ClusterView()
    view.replace_all([node("n1", gpus=4)], [pod("a", gpus=2, node_name="n1"), pod("b", gpus=1), pod("done", gpus=1, node_name="n1")])
    view.apply_pod({**pod("done", gpus=1, node_name="n1"), "status": {"phase": "Succeeded"}})
    assert sum(free(view, "n1")) == 2000
    assert view.synced


def test_fractional_pods_keep_their_index():
    view = ClusterView()
    view.replace_all([node("n1", gpus=2)], [pod("s", share=400, node_name="n1", annotations={"infergate.io/gpu-index": "1"}), pod("w", gpus=1, node_name="n1")])
    assert free(view, "n1") == [0, 600]


def test_assumed_binding_survives_stale_events_and_relists():
    view = ClusterView()
    view.replace_all([node("n1", gpus=4)], [pod("p", gpus=4)])
    view.assume("ml/p", "uid-p", view.requests["ml/p"], "n1", None)
    view.apply_pod(pod("p", gpus=4))  # an event from before the binding
    assert sum(free(view, "n1")) == 0
    view.replace_all([node("n1", gpus=4)], [pod("p", gpus=4)])  # a relist that does not show it bound yet
    assert sum(free(view, "n1")) == 0
    view.apply_pod(pod("p", gpus=4, node_name="n1"))
    assert "ml/p" not in view.assumed and sum(free(view, "n1")) == 0


async def test_an_assumed_binding_is_released_only_when_the_api_server_says_it_is_not_bound(policy):
    from extender.binder import SnapshotBinder
    from extender.scheduler import Scheduler

    class Watchless(SnapshotBinder):
        authoritative = False

    view = ClusterView()
    pods = {"ml/p": pod("p", gpus=4), "ml/q": pod("q", gpus=4)}
    view.replace_all([node("n1", gpus=8)], list(pods.values()))
    scheduler = Scheduler(policy, view, Watchless(pods))
    view.assume("ml/p", "uid-p", view.requests["ml/p"], "n1", None)  # its binding failed unseen
    assert (await scheduler.bind("ml", "q", "uid-q", "n1")).error == ""  # bound; the watch is late
    assert view.overdue(now=10**9) == [("ml/p", "n1"), ("ml/q", "n1")]
    await scheduler.expire(now=10**9)
    assert "ml/p" not in view.state and view.state.allocation("ml/q") is not None
    assert sum(free(view, "n1")) == 4000 and view.assumed == {}


def test_pod_before_its_node_and_deletions():
    view = ClusterView()
    view.apply_pod(pod("p", gpus=2, node_name="late"))
    view.apply_node(node("late", gpus=4))
    assert sum(free(view, "late")) == 2000
    view.delete_pod("ml/p")
    assert sum(free(view, "late")) == 4000
    view.delete_node("late")
    assert not view.state.has_node("late")


def test_recreated_pod_with_the_same_name():
    view = ClusterView()
    view.replace_all([node("n1", gpus=4), node("n2", gpus=4)], [pod("p", gpus=2, node_name="n1")])
    view.apply_pod(pod("p", gpus=3, node_name="n2", uid="new"))
    assert sum(free(view, "n1")) == 4000 and sum(free(view, "n2")) == 1000


def test_unreadable_objects_are_counted_not_fatal():
    view = ClusterView()
    broken = pod("x", gpus=1)
    broken["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] = "many"
    view.replace_all([node("n1")], [broken])
    assert view.problems == 1 and "ml/x" not in view.requests


def test_overcommitted_node_is_counted_full_not_ignored():
    """The API server may report more than fits (pods placed by another scheduler): count them anyway, so the
    node shows no room rather than room it does not have."""
    view = ClusterView()
    view.replace_all([node("n1", gpus=4)], [pod("a", gpus=3, node_name="n1"), pod("b", gpus=3, node_name="n1")])
    assert "ml/b" in view.state and view.problems == 0
    assert max(free(view, "n1")) <= 0


def test_the_scorer_learns_the_workload_in_view(policy):
    from extender.binder import SnapshotBinder
    from extender.scheduler import Scheduler

    view = ClusterView()
    view.replace_all([node("n1")], [pod(f"p{i}", gpus=1 + i % 2) for i in range(60)])
    scheduler = Scheduler(policy, view, SnapshotBinder({}))
    before = scheduler.scorer
    assert scheduler.learn_workload()
    assert scheduler.scorer is not before and scheduler.gangs.scorer is scheduler.scorer
    assert not Scheduler(policy, ClusterView(), SnapshotBinder({})).learn_workload(), "too few pods: keep the default mix"


def test_node_update_with_a_cpu_only_pod_on_it():
    view = ClusterView()
    view.replace_all([node("n1", gpus=4)], [pod("daemon", node_name="n1"), pod("g", gpus=2, node_name="n1")])
    view.apply_node(node("n1", gpus=4, cpu="64"))
    assert view.problems == 0 and sum(free(view, "n1")) == 2000


def test_placements_of_pods_gone_are_not_kept_forever():
    view = ClusterView()
    view.replace_all([node("n1", gpus=4)], [])
    for i in range(5000):  # each pod pinned to a node of its own (a DaemonSet's pods are), then gone
        pinned = pod(f"p{i}", gpus=1)
        pinned["spec"]["nodeSelector"] = {"kubernetes.io/hostname": f"node-{i}"}
        view.apply_pod(pinned)
        view.delete_pod(f"ml/p{i}")
    waiting = pod("w", gpus=1)
    waiting["spec"]["nodeSelector"] = {"kubernetes.io/hostname": "node-w"}
    view.apply_pod(waiting)
    assert len(view._placements) <= 2048
    assert view.facts["ml/w"].placement in view._placements
