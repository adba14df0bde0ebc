"""Declarative gang scenarios: nodes and pods in, placements out (in the manner of KAI-Scheduler's tests)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.extender.schedsim import MiniScheduler
from tests.kube_objects import node, pod

H100 = "NVIDIA-H100-80GB-HBM3"


def member(group: str, rank: int, size: int, gpus: int = 8, **kwargs: Any) -> dict[str, Any]:
    """A LeaderWorkerSet pod: group-index 0 of LWS `group`, worker `rank`."""
    p = pod(f"{group}-{rank}", gpus=gpus, annotations={"leaderworkerset.sigs.k8s.io/size": str(size), **kwargs.pop("annotations", {})}, **kwargs)
    p["metadata"]["labels"] = {
        "leaderworkerset.sigs.k8s.io/name": group, "leaderworkerset.sigs.k8s.io/group-index": "0",
        "leaderworkerset.sigs.k8s.io/worker-index": str(rank), "infergate.io/workload": kwargs.get("workload", "inference"),
    }
    return p


def racks(*free_per_rack: int) -> list[dict[str, Any]]:
    return [node(f"r{r}-n{i}", gpus=8, **{"infergate.io/rack": f"rack-{r}"}) for r, count in enumerate(free_per_rack) for i in range(count)]


async def run(policy, nodes, pods, order) -> tuple[MiniScheduler, dict[str, str | None]]:
    sched = MiniScheduler(policy, nodes, pods)
    placed = {}
    for key in order:
        placed[key] = await sched.schedule(key)
    return sched, placed


async def test_complete_group_lands_in_one_rack(policy):
    nodes = racks(1, 2)
    sched, placed = await run(policy, nodes, [member("ds", 0, 2), member("ds", 1, 2)], ["ml/ds-0", "ml/ds-1"])
    assert all(placed.values())
    assert {sched.view.state.labels(n)["infergate.io/rack"] for n in placed.values()} == {"rack-1"}, "the rack that fits the group"
    assert placed["ml/ds-0"] != placed["ml/ds-1"]
    assert sched.server.scheduler.gangs.reservations == {}, "a complete group leaves no reservation behind"


async def test_deadlock_pair_one_completes_the_other_waits(policy):
    nodes = racks(2)
    pods = [member("a", 0, 2), member("b", 0, 2), member("a", 1, 2), member("b", 1, 2)]
    sched, placed = await run(policy, nodes, pods, ["ml/a-0", "ml/b-0", "ml/a-1", "ml/b-1"])
    assert placed["ml/a-0"] and placed["ml/a-1"]
    assert placed["ml/b-0"] is None and placed["ml/b-1"] is None, "no partial group"
    reason = sched.reasons["ml/b-0"]["r0-n0"]
    assert reason.startswith("gang ml/b-0 needs 2 pods with 8 free GPUs each") and "no node has that free" in reason


async def test_reserved_capacity_is_invisible_held_for_the_leader_and_released_with_it(policy):
    nodes = racks(2)
    # The leader exists; its worker is created later (LeaderWorkerSet's LeaderReady startup).
    sched, placed = await run(policy, nodes, [member("g", 0, 2), pod("single", gpus=8)], ["ml/g-0", "ml/single"])
    assert placed["ml/g-0"] and placed["ml/single"] is None, "the worker's node is reserved"
    assert "needs 8 free GPUs" in next(iter(sched.reasons["ml/single"].values()))
    scheduler = sched.server.scheduler
    assert scheduler.coordinator.expire(now=10**9) == [], "held while its leader is bound: the worker is on its way"
    sched.delete("ml/g-0")
    assert scheduler.coordinator.expire(now=2 * 10**9) == ["ml/g-0"]
    assert await sched.schedule("ml/single"), "released capacity is free again"


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("preferred", "placed across racks"), ("required", "waits")],
)
async def test_topology_mode(policy, mode, expected):
    scheduling = policy.cluster.spec.scheduling.model_copy(update={"topology_mode": mode})
    spec = policy.cluster.spec.model_copy(update={"scheduling": scheduling})
    strict = type(policy)(policy.models, policy.runtimes, policy.cluster.model_copy(update={"spec": spec}), policy.source)
    sched, placed = await run(strict, racks(1, 1), [member("x", 0, 2), member("x", 1, 2)], ["ml/x-0", "ml/x-1"])
    if expected == "waits":
        assert placed == {"ml/x-0": None, "ml/x-1": None}
        assert "in one gpu.clique" in next(iter(sched.reasons["ml/x-0"].values()))
    else:
        assert all(placed.values())


async def test_group_that_can_never_fit_is_unresolvable(policy):
    sched = MiniScheduler(policy, racks(1), [member("huge", 0, 3)])
    result = await sched.call("filter", {"Pod": sched.pods["ml/huge-0"], "NodeNames": sched.nodes})
    assert result["FailedNodes"] == {} and "more than the 8 of every node in the cluster" in result["FailedAndUnresolvableNodes"]["r0-n0"]


async def test_restart_rebuilds_the_reservation_from_the_pods(policy):
    nodes = racks(1, 2)
    pods = [member("ds", 0, 2), member("ds", 1, 2)]
    sched, placed = await run(policy, nodes, pods, ["ml/ds-0"])
    reserved = sched.pods["ml/ds-1"]["metadata"]["annotations"]["infergate.io/reserved-node"]
    # A new extender process: the view is rebuilt from the API server's pods (bound leader, annotated worker).
    restarted = MiniScheduler(policy, nodes, copy.deepcopy(list(sched.pods.values())) + [pod("intruder", gpus=8)])
    assert restarted.server.scheduler.gangs.reservations["ml/ds-0"].slots[0].node == reserved
    assert await restarted.schedule("ml/intruder") not in (reserved, placed["ml/ds-0"])
    assert await restarted.schedule("ml/ds-1") == reserved


async def test_training_is_steered_away_from_whole_nodes(policy):
    nodes = racks(2)
    running = pod("half-full", gpus=4, node_name="r0-n1")
    training = pod("train", gpus=2, annotations={"infergate.io/workload": "training"})
    training["metadata"]["labels"] = {"infergate.io/workload": "training"}
    sched, placed = await run(policy, nodes, [running, training], ["ml/train"])
    assert placed["ml/train"] == "r0-n1", "the whole node stays free for an inference group"


PREEMPTION = [
    # (preemptor class, candidates from kube-scheduler, expected node, expected extra evictions)
    pytest.param("inference", {"n-train": ["uid-t0"]}, "n-train", ["ml/t-1"], id="training victim takes its whole gang"),
    pytest.param("training", {"n-infer": ["uid-i0"]}, None, [], id="training never evicts inference"),
    pytest.param("inference", {"n-small": ["uid-small"], "n-train": ["uid-t0"]}, "n-small", [], id="fewest GPUs evicted wins"),
]


@pytest.mark.parametrize(("klass", "candidates", "node_expected", "evicted"), PREEMPTION)
async def test_preemption_choices(policy, klass, candidates, node_expected, evicted):
    nodes = [node(n, gpus=8) for n in ("n-train", "n-other", "n-infer", "n-small")]
    gang = [member("t", r, 2, workload="training", node_name=("n-train", "n-other")[r], uid=f"uid-t{r}") for r in (0, 1)]
    pods = gang + [pod("i0", gpus=8, node_name="n-infer", uid="uid-i0", annotations={"infergate.io/model": "m"}),
                   pod("small", gpus=2, node_name="n-small", uid="uid-small"), pod("fill", gpus=6, node_name="n-small", uid="uid-fill", annotations={"infergate.io/model": "m"})]
    preemptor = pod("new", gpus=2, annotations={"infergate.io/workload": klass})
    preemptor["metadata"]["labels"] = {"infergate.io/workload": klass}
    sched = MiniScheduler(policy, nodes, pods + [preemptor])
    meta = {n: {"Pods": [{"UID": u} for u in uids], "NumPDBViolations": 0} for n, uids in candidates.items()}
    answer = await sched.call("preempt", {"Pod": preemptor, "NodeNameToMetaVictims": meta})
    chosen = list(answer["NodeNameToMetaVictims"])
    assert chosen == ([node_expected] if node_expected else [])
    for task in sched.server.scaffold.background:
        await task
    assert sched.binder.evicted == evicted
