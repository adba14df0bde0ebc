"""Gangs in clusters as they really are (issue 12): cordoned, tainted and selected nodes, heterogeneous
LeaderWorkerSets, members not created yet, nodes that go away, groups that can never be whole, preemption
across classes. Each test drives the extender the way kube-scheduler does (tests/extender/schedsim.py)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from extender.binder import SnapshotBinder
from extender.scheduler import Scheduler
from extender.view import ClusterView
from tests.extender.schedsim import MiniScheduler
from tests.kube_objects import node, pod


def cordoned(n: dict[str, Any]) -> dict[str, Any]:
    n["spec"] = {"unschedulable": True}
    return n


def tainted(n: dict[str, Any], key: str = "dedicated", effect: str = "NoSchedule") -> dict[str, Any]:
    n["spec"] = {"taints": [{"key": key, "value": "x", "effect": effect}]}
    return n


def group_pod(name: str, group: str, size: int, gpus: int, **kwargs: Any) -> dict[str, Any]:
    annotations = {"infergate.io/group": group, "infergate.io/group-size": str(size), **kwargs.pop("annotations", {})}
    return pod(name, gpus=gpus, annotations=annotations, **kwargs)


def lws_pod(lws: str, rank: int, size: int, gpus: int, group_index: int = 0, **kwargs: Any) -> dict[str, Any]:
    """A pod as the LeaderWorkerSet controller and its webhook label it (sigs.k8s.io/lws pod_webhook.go)."""
    name = f"{lws}-{group_index}" if rank == 0 else f"{lws}-{group_index}-{rank}"
    p = pod(name, gpus=gpus, annotations={"leaderworkerset.sigs.k8s.io/size": str(size)}, **kwargs)
    p["metadata"]["labels"] = {
        "leaderworkerset.sigs.k8s.io/name": lws, "leaderworkerset.sigs.k8s.io/group-index": str(group_index),
        "leaderworkerset.sigs.k8s.io/worker-index": str(rank), "infergate.io/workload": "inference",
    }
    return p


def lws_object(name: str, size: int, worker_gpus: int, leader_gpus: int | None = None, namespace: str = "ml") -> dict[str, Any]:
    def template(gpus: int) -> dict[str, Any]:
        limits = {"nvidia.com/gpu": str(gpus)}
        return {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "x", "resources": {"limits": limits, "requests": limits}}]}}

    spec: dict[str, Any] = {"size": size, "workerTemplate": template(worker_gpus)}
    if leader_gpus is not None:
        spec["leaderTemplate"] = template(leader_gpus)
    return {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet", "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": 1, "leaderWorkerTemplate": spec}}


def reserved_nodes(sched: MiniScheduler, group: str) -> list[str]:
    return [s.node for s in sched.server.scheduler.gangs.reservations[group].slots]


# ---------------------------------------------------------------------------------------- where it may go
async def test_a_gang_is_never_reserved_nodes_kube_scheduler_would_not_use(policy):
    """issue 12 (2): with cordoned and tainted empty nodes in view, a 2 x 4-GPU gang is reserved only the two
    schedulable nodes, and is placed whole."""
    nodes = [cordoned(node("cordoned-a", gpus=8)), cordoned(node("cordoned-b", gpus=8)),
             tainted(node("tainted-a", gpus=8)), tainted(node("tainted-b", gpus=8), effect="NoExecute"),
             node("ok-a", gpus=4), node("ok-b", gpus=4)]
    members = [group_pod(f"g-{i}", "g", 2, 4) for i in range(2)]
    sched = MiniScheduler(policy, nodes, members)
    passing = ["ok-a", "ok-b"]  # what kube-scheduler's own filters leave
    assert await sched.schedule("ml/g-0", passing) in passing
    assert sorted(reserved_nodes(sched, "ml/g")) == passing
    assert await sched.schedule("ml/g-1", passing) in passing
    assert {sched.pods[f"ml/g-{i}"]["spec"]["nodeName"] for i in range(2)} == set(passing)


async def test_each_member_keeps_to_its_own_selector_affinity_and_tolerations(policy):
    nodes = [node("plain", gpus=8), tainted(node("special", gpus=8), key="team"), node("labelled", gpus=8, pool="a")]
    tolerant = group_pod("m-0", "m", 3, 8, tolerations=[{"key": "team", "operator": "Exists", "effect": "NoSchedule"}],
                         affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                             {"matchExpressions": [{"key": "pool", "operator": "DoesNotExist"}]}]}}})
    selecting = group_pod("m-1", "m", 3, 8, nodeSelector={"pool": "a"})
    anywhere = group_pod("m-2", "m", 3, 8)
    sched = MiniScheduler(policy, nodes, [anywhere, tolerant, selecting])
    assert await sched.schedule("ml/m-2", ["plain", "labelled"]) == "plain"
    slots = {s.pod: s.node for s in sched.server.scheduler.gangs.reservations["ml/m"].slots}
    assert slots == {"ml/m-2": "plain", "ml/m-0": "special", "ml/m-1": "labelled"}


async def test_a_reservation_on_a_node_cordoned_later_is_planned_again(policy):
    nodes = [node(f"n{i}", gpus=8) for i in range(3)]
    members = [group_pod(f"g-{i}", "g", 2, 8) for i in range(2)]
    sched = MiniScheduler(policy, nodes, members)
    first = await sched.schedule("ml/g-0")
    other = next(s.node for s in sched.server.scheduler.gangs.reservations["ml/g"].slots if s.pod == "ml/g-1")
    sched.view.apply_node(cordoned(node(other, gpus=8)))
    assert "ml/g" not in sched.server.scheduler.gangs.reservations, "released: its member could never bind there"
    left = [n for n in sched.nodes if n not in (first, other)]
    assert await sched.schedule("ml/g-1", left) == left[0]


async def test_bind_of_a_member_whose_reserved_node_was_deleted_is_refused_not_a_5xx(policy):
    nodes = [node(f"n{i}", gpus=8) for i in range(3)]
    members = [group_pod(f"g-{i}", "g", 2, 8) for i in range(2)]
    sched = MiniScheduler(policy, nodes, members)
    await sched.call("filter", {"Pod": members[0], "NodeNames": sched.nodes})
    target = next(s.node for s in sched.server.scheduler.gangs.reservations["ml/g"].slots if s.pod == "ml/g-0")
    sched.view.delete_node(target)
    answer = await sched.call("bind", {"PodName": "g-0", "PodNamespace": "ml", "PodUID": "uid-g-0", "Node": target})
    assert "no reservation" in answer["Error"]
    sched.nodes.remove(target)
    assert await sched.schedule("ml/g-0") and await sched.schedule("ml/g-1")


# ---------------------------------------------------------------------------------------- shapes and ranks
async def test_each_member_is_planned_with_its_own_shape(policy):
    nodes = [node("small", gpus=2), node("big-a", gpus=8), node("big-b", gpus=8)]
    members = [group_pod("h-0", "h", 3, 1, annotations={"infergate.io/role": "leader"}), group_pod("h-1", "h", 3, 8), group_pod("h-2", "h", 3, 8)]
    sched = MiniScheduler(policy, nodes, members)
    placed = [await sched.schedule(f"ml/h-{i}") for i in range(3)]
    assert placed[0] == "small" and sorted(placed[1:]) == ["big-a", "big-b"]


async def test_heterogeneous_leaderworkerset_with_workers_in_view_binds_every_rank(policy):
    """issue 12 (3): a 1-GPU leader never claims an 8-GPU worker's place, and no member is left unbound."""
    nodes = [node("small", gpus=2), node("big-a", gpus=8), node("big-b", gpus=8)]
    pods = [lws_pod("ds", 1, 3, 8), lws_pod("ds", 2, 3, 8), lws_pod("ds", 0, 3, 1)]
    sched = MiniScheduler(policy, nodes, pods, [lws_object("ds", 3, 8, 1)])
    assert await sched.schedule("ml/ds-0") == "small"
    assert sorted([await sched.schedule("ml/ds-0-1"), await sched.schedule("ml/ds-0-2")]) == ["big-a", "big-b"]
    assert sched.server.scheduler.gangs.reservations == {}


async def test_workers_not_created_yet_are_planned_from_the_worker_template(policy):
    """issue 12 (3): the leader binds first (LeaderReady), its workers' places are held with the worker
    template's shape, and the workers bind at once when created."""
    nodes = [node("small", gpus=2), node("big-a", gpus=8), node("big-b", gpus=8)]
    sched = MiniScheduler(policy, nodes, [lws_pod("ds", 0, 3, 1)], [lws_object("ds", 3, 8, 1)])
    assert await sched.schedule("ml/ds-0") == "small"
    held = sched.server.scheduler.gangs.reservations["ml/ds-0"]
    assert sorted(s.request.gpus for s in held.slots if not s.bound) == [8, 8]
    single = sched.add(pod("single", gpus=8))
    assert await sched.schedule(single) is None, "the workers' nodes are held"
    assert "held for gang ml/ds-0" in sched.reasons[single]["big-a"]
    for rank in (1, 2):
        sched.add(lws_pod("ds", rank, 3, 8))
    assert sorted([await sched.schedule("ml/ds-0-1"), await sched.schedule("ml/ds-0-2")]) == ["big-a", "big-b"]


async def test_a_worker_created_after_its_leader_bound_has_its_place_written_at_its_first_filter(policy):
    """Closing most of the documented restart gap: a member created after the group's first binding gets its
    reserved node written on it when kube-scheduler first asks about it, so an extender restarted before it
    binds keeps its place rather than planning it again."""
    nodes = [node("small", gpus=2), node("big-a", gpus=8), node("big-b", gpus=8)]
    sched = MiniScheduler(policy, nodes, [lws_pod("ds", 0, 3, 1)], [lws_object("ds", 3, 8, 1)])
    assert await sched.schedule("ml/ds-0") == "small"
    worker = sched.add(lws_pod("ds", 1, 3, 8))
    answer = await sched.call("filter", {"Pod": sched.pods[worker], "NodeNames": sched.nodes})
    written = sched.pods[worker]["metadata"]["annotations"].get("infergate.io/reserved-node")
    assert answer["NodeNames"] == [written] and written in ("big-a", "big-b")
    restarted = MiniScheduler(policy, nodes, [], [lws_object("ds", 3, 8, 1)])
    restarted.pods.update(sched.pods)
    restarted.view.replace_all(nodes, list(sched.pods.values()))
    slots = restarted.server.scheduler.gangs.reservations["ml/ds-0"].slots
    assert [s.node for s in slots if s.pod == worker] == [written]


async def test_workers_unlike_their_leader_are_planned_again_when_nothing_described_them(policy):
    """Without the LeaderWorkerSet to read, missing workers are planned like the leader; a worker of another
    shape then has the group planned again at once, not after the reservation expires."""
    nodes = [node("small", gpus=2), node("big-a", gpus=8), node("big-b", gpus=8)]
    sched = MiniScheduler(policy, nodes, [lws_pod("ds", 0, 3, 1)])
    assert await sched.schedule("ml/ds-0") is not None
    for rank in (1, 2):
        sched.add(lws_pod("ds", rank, 3, 8))
    assert await sched.schedule("ml/ds-0-1") is not None and await sched.schedule("ml/ds-0-2") is not None


# ------------------------------------------------------------------------------------- groups never whole
async def test_a_lone_pod_of_a_group_of_four_never_binds_and_everyone_is_told_about_its_reservation(policy):
    nodes = [node(f"n{i}", gpus=8) for i in range(5)]
    lone = group_pod("lone", "team", 4, 8, annotations={"infergate.io/workload": "training"})
    sched = MiniScheduler(policy, nodes, [lone])
    answer = await sched.call("filter", {"Pod": lone, "NodeNames": sched.nodes})
    reason = answer["FailedNodes"]["n0"]
    assert answer["NodeNames"] == [] and "1 of its 4 members exist" in reason and "are reserved until all exist" in reason
    held = reserved_nodes(sched, "ml/team")
    other = sched.add(pod("other", gpus=8))
    assert await sched.schedule(other) not in held
    assert await sched.schedule(sched.add(pod("third", gpus=8))) is None
    assert "held for gang ml/team" in sched.reasons["ml/third"][held[0]]
    assert await sched.server.scheduler.expire(now=time.monotonic() + 10**6) == ["ml/team"], "nothing was bound"
    for i in range(1, 4):
        sched.add(group_pod(f"lone-{i}", "team", 4, 8, annotations={"infergate.io/workload": "training"}))
    placed = [await sched.schedule(k) for k in ("ml/lone", "ml/lone-1", "ml/lone-2", "ml/lone-3")]
    assert sorted(placed) == ["n0", "n1", "n2", "n3"], "once all four exist, the group binds whole"


@pytest.mark.parametrize("size", ["99999", "5000"])
async def test_a_huge_group_size_is_answered_at_once_every_time(policy, size):
    nodes = [node(f"n{i}", gpus=8) for i in range(50)]
    huge = lws_pod("huge", 0, int(size), 1)
    sched = MiniScheduler(policy, nodes, [huge], [lws_object("huge", int(size), 8)])
    book = sched.server.scheduler.gangs
    plans = []
    planner = book._plan
    book._plan = lambda *args, **kwargs: plans.append(args) or planner(*args, **kwargs)
    for _ in range(3):
        answer = await sched.call("filter", {"Pod": huge, "NodeNames": sched.nodes})
        assert answer["NodeNames"] == [] and answer["FailedAndUnresolvableNodes"]
    assert plans == [], "a group larger than the extender places is refused before any planning, every time"


async def test_infeasible_gang_is_not_planned_again_while_nothing_changed(policy, monkeypatch):
    nodes = [node(f"n{i}", gpus=8) for i in range(4)]
    members = [group_pod(f"w-{i}", "w", 3, 8) for i in range(3)]
    sched = MiniScheduler(policy, nodes, members + [pod("b0", gpus=6, node_name="n0"), pod("b1", gpus=6, node_name="n1")])
    book = sched.server.scheduler.gangs
    calls = []
    original = book._plan
    monkeypatch.setattr(book, "_plan", lambda *a: calls.append(1) or original(*a))
    for _ in range(3):
        await sched.call("filter", {"Pod": members[0], "NodeNames": sched.nodes})
    assert len(calls) == 1
    sched.view.apply_node(node("n9", gpus=8))
    await sched.call("filter", {"Pod": members[0], "NodeNames": sched.nodes + ["n9"]})
    assert "ml/w" in book.reservations


async def test_required_topology_without_topology_labels_is_unresolvable(policy):
    scheduling = policy.cluster.spec.scheduling.model_copy(update={"topology_mode": "required"})
    spec = policy.cluster.spec.model_copy(update={"scheduling": scheduling})
    strict = type(policy)(policy.models, policy.runtimes, policy.cluster.model_copy(update={"spec": spec}), policy.source)
    members = [group_pod(f"t-{i}", "t", 2, 8) for i in range(2)]
    sched = MiniScheduler(strict, [node("a", gpus=8), node("b", gpus=8)], members)
    answer = await sched.call("filter", {"Pod": members[0], "NodeNames": sched.nodes})
    assert answer["FailedNodes"] == {}
    assert "no node carries any of the labels" in answer["FailedAndUnresolvableNodes"]["a"]


# ------------------------------------------------------------------------------------------- expiry
async def test_a_partly_bound_group_whose_members_wait_keeps_its_reservation(policy):
    nodes = [node(f"n{i}", gpus=8) for i in range(3)]
    members = [group_pod(f"g-{i}", "g", 2, 8) for i in range(2)]
    sched = MiniScheduler(policy, nodes, members)
    assert await sched.schedule("ml/g-0")
    assert await sched.server.scheduler.expire(now=time.monotonic() + 10**6) == []
    assert "ml/g" in sched.server.scheduler.gangs.reservations, "renewed: its last member exists and holds its place"
    assert await sched.schedule("ml/g-1")


async def test_snapshot_bindings_are_never_released_as_lost():
    from policies import SHIPPED_POLICY_DIR, load_policy

    view = ClusterView()
    pods = {"ml/p": pod("p", gpus=8)}
    view.replace_all([node("n1", gpus=8)], list(pods.values()))
    scheduler = Scheduler(load_policy(SHIPPED_POLICY_DIR), view, SnapshotBinder(pods))
    assert (await scheduler.bind("ml", "p", "uid-p", "n1")).error == ""
    await scheduler.expire(now=time.monotonic() + 10**6)
    assert view.state.allocation("ml/p") is not None and view.facts["ml/p"].node == "n1"


# ------------------------------------------------------------------------------------------- preemption
async def test_training_never_evicts_inference_in_a_mixed_gang(policy):
    """issue 12 (5): the training victim kube-scheduler proposes shares a gang with an inference pod on the
    same node: taking the victim's gang would evict inference, so the node is not a candidate."""
    nodes = [node("n1", gpus=8), node("n2", gpus=8)]
    mixed = [group_pod("mix-0", "mix", 2, 4, node_name="n1", uid="u-train", annotations={"infergate.io/workload": "training"}),
             group_pod("mix-1", "mix", 2, 4, node_name="n1", uid="u-infer", annotations={"infergate.io/workload": "inference"})]
    preemptor = pod("trainer", gpus=8, annotations={"infergate.io/workload": "training"})
    sched = MiniScheduler(policy, nodes, mixed + [preemptor])
    answer = await sched.call("preempt", {"Pod": preemptor, "NodeNameToMetaVictims": {"n1": {"Pods": [{"UID": "u-train"}]}}})
    assert answer["NodeNameToMetaVictims"] == {}
    inference = pod("server", gpus=8, annotations={"infergate.io/workload": "inference"})
    sched.add(inference)
    answer = await sched.call("preempt", {"Pod": inference, "NodeNameToMetaVictims": {"n1": {"Pods": [{"UID": "u-train"}]}}})
    assert list(answer["NodeNameToMetaVictims"]) == ["n1"]
