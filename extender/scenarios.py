"""`infergate simulate --scenario FILE`: inference groups, training groups and single pods arriving and
leaving over time, placed by the extender's own code, next to a `default` baseline that places members one by
one as kube-scheduler does without gangs (spreading, as its default scoring does).

The scheduling loop stands in for kube-scheduler: at every event, pending pods are tried highest priority
first, then in arrival order; a pod that fits nowhere may preempt lower-priority pods (kube-scheduler's
DefaultPreemption picks the victims per node; the extender, in our run, has the last word). Evicted training
pods are queued again, as their job controller would recreate them.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from extender.binder import SnapshotBinder
from extender.core import ClusterState, PodRequest, make_scorer, place
from extender.podspec import node_spec, pod_request
from extender.server import ExtenderServer
from extender.view import ClusterView
from infergate import constants
from policies.loader import Policy

PRIORITY = {constants.INFERENCE: 1_000_000, constants.TRAINING: 10_000}


# --------------------------------------------------------------------------------------------- the file
class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NodeGroup(_Spec):
    count: int = Field(ge=1)
    gpus: int = Field(8, ge=0)
    product: str = "NVIDIA-H100-80GB-HBM3"
    cpu: int = Field(128, ge=1, description="cores")
    racks: int = Field(1, ge=1, description="nodes are spread round-robin over this many racks")


class Workload(_Spec):
    name: str
    workload: str = Field(pattern="^(inference|training)$")
    count: int = Field(ge=1, description="how many pods, or groups when size > 1")
    size: int = Field(1, ge=1, description="pods per group")
    gpus: int = Field(0, ge=0)
    gpu_milli: int = Field(0, ge=0, lt=1000, alias="gpuMilli")
    cpu: int = Field(4, ge=0, description="cores per pod")
    start: float = Field(0, ge=0, description="seconds: the first arrival")
    every: float = Field(60, gt=0, description="seconds between arrivals (exponential with this mean when jitter)")
    duration: float = Field(600, gt=0, description="seconds a pod (or group) runs once all of it runs")
    jitter: bool = True


class Scenario(_Spec):
    name: str
    seed: int = 1
    horizon: float = Field(3600, gt=0)
    nodes: list[NodeGroup]
    workloads: list[Workload]


def load_scenario(path: str | Path) -> Scenario:
    try:
        return Scenario.model_validate(yaml.safe_load(Path(path).read_text()))
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ValueError(f"{path}: {'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None


# ---------------------------------------------------------------------------------------------- objects
def make_nodes(scenario: Scenario) -> list[dict[str, Any]]:
    nodes = []
    for g, group in enumerate(scenario.nodes):
        for i in range(group.count):
            labels = {constants.GPU_PRODUCT_LABEL: group.product, "infergate.io/rack": f"g{g}-rack-{i % group.racks}"}
            nodes.append({"apiVersion": "v1", "kind": "Node", "metadata": {"name": f"g{g}-n{i}", "labels": labels},
                          "status": {"allocatable": {"cpu": str(group.cpu), "memory": "2Ti", constants.GPU_RESOURCE: str(group.gpus)}}})
    return nodes


def make_pod(name: str, workload: Workload, group: str | None, rank: int) -> dict[str, Any]:
    limits: dict[str, str] = {}
    if workload.gpus:
        limits[constants.GPU_RESOURCE] = str(workload.gpus)
    if workload.gpu_milli:
        limits[constants.GPU_SHARE_RESOURCE] = str(workload.gpu_milli)
    annotations = {}
    if group:
        annotations = {constants.GROUP_ANNOTATION: group, constants.GROUP_SIZE_ANNOTATION: str(workload.size),
                       constants.ROLE_ANNOTATION: "leader" if rank == 0 else "worker"}
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "sim", "uid": f"uid-{name}", "labels": {constants.WORKLOAD_LABEL: workload.workload}, "annotations": annotations},
        "spec": {"containers": [{"name": "main", "resources": {"requests": {"cpu": str(workload.cpu), **limits}, "limits": limits}}]},
        "status": {"phase": "Pending"},
    }


@dataclass
class SimPod:
    key: str
    obj: dict[str, Any]
    workload: str
    group: str | None
    arrived: float
    duration: float
    gpu_milli: int
    rank: int = 0
    bound_at: float | None = None
    node: str | None = None
    runs_until: float | None = None
    attempts: int = 0


# ----------------------------------------------------------------------------------------------- placers
class ExtenderPlacer:
    """Ours: the ExtenderServer's own handlers, called in process as kube-scheduler would over HTTP."""

    name = "infergate"

    def __init__(self, policy: Policy, nodes: list[dict[str, Any]]):
        self.view = ClusterView()
        self.view.replace_all(nodes, [])
        self.pods: dict[str, dict[str, Any]] = {}
        self.binder = SnapshotBinder(self.pods)
        self.server = ExtenderServer(policy, self.view, self.binder)
        self.names = [n["metadata"]["name"] for n in nodes]

    async def _call(self, verb: str, body: dict[str, Any]) -> Any:
        answer, _ = await self.server.answer(verb, json.dumps(body).encode())
        return json.loads(answer) if isinstance(answer, bytes) else answer

    def reserved(self, group: str) -> bool:
        return group in self.server.scheduler.gangs.reservations

    def add(self, pod: SimPod) -> None:
        self.pods[pod.key] = pod.obj
        self.view.apply_pod(pod.obj)

    def remove(self, pod: SimPod) -> None:
        self.pods.pop(pod.key, None)
        self.view.delete_pod(pod.key)

    async def schedule(self, pod: SimPod) -> str | None:
        result = await self._call("filter", {"Pod": pod.obj, "NodeNames": self.names})
        if not result["NodeNames"]:
            return None
        scores = await self._call("prioritize", {"Pod": pod.obj, "NodeNames": result["NodeNames"]})
        best = max(scores, key=lambda s: s["Score"])["Host"]
        name = pod.obj["metadata"]["name"]
        bound = await self._call("bind", {"PodName": name, "PodNamespace": "sim", "PodUID": pod.obj["metadata"]["uid"], "Node": best})
        if bound["Error"]:
            return None
        pod.obj["spec"]["nodeName"] = best
        pod.obj["status"]["phase"] = "Running"
        self.view.apply_pod(pod.obj)
        return best

    async def preempt(self, pod: SimPod, candidates: dict[str, list[str]]) -> tuple[str, list[str]] | None:
        uids = {key: obj["metadata"]["uid"] for key, obj in self.pods.items()}
        by_uid = {uid: key for key, uid in uids.items()}
        meta = {node: {"Pods": [{"UID": uids[k]} for k in keys], "NumPDBViolations": 0} for node, keys in candidates.items()}
        answer = await self._call("preempt", {"Pod": pod.obj, "NodeNameToMetaVictims": meta})
        if not answer["NodeNameToMetaVictims"]:
            return None
        node, victims = next(iter(answer["NodeNameToMetaVictims"].items()))
        evicted = [by_uid[v["UID"]] for v in victims["Pods"]]
        await asyncio.gather(*self.server.scaffold.background)
        evicted += [k for k in self.binder.evicted if k not in evicted]
        self.binder.evicted.clear()
        return node, evicted


class DefaultPlacer:
    """The baseline: every pod on its own, spread like kube-scheduler's LeastAllocated, victims chosen by
    priority alone."""

    name = "default"

    def __init__(self, policy: Policy, nodes: list[dict[str, Any]]):
        self.state = ClusterState(node_spec(n) for n in nodes)
        self.scorer = make_scorer("spread")
        self.requests: dict[str, PodRequest] = {}
        self.rng = np.random.default_rng(0)

    def reserved(self, group: str) -> bool:
        return False

    def add(self, pod: SimPod) -> None:
        self.requests[pod.key] = pod_request(pod.obj)

    def remove(self, pod: SimPod) -> None:
        if pod.key in self.state:
            self.state.release(pod.key)

    async def schedule(self, pod: SimPod) -> str | None:
        alloc = place(self.state, pod.key, self.requests[pod.key], self.scorer, self.rng)
        return alloc.node if alloc else None

    async def preempt(self, pod: SimPod, candidates: dict[str, list[str]]) -> tuple[str, list[str]] | None:
        if not candidates:
            return None
        node = min(candidates, key=lambda n: (len(candidates[n]), n))
        return node, candidates[node]


# ------------------------------------------------------------------------------------------------- run
@dataclass
class Outcome:
    placer: str
    partial_groups: int = 0
    groups_placed: int = 0
    group_wait: list[float] = field(default_factory=list)
    inference_wait: list[float] = field(default_factory=list)
    gpus_evicted: float = 0.0
    inference_gpus_evicted: float = 0.0
    gpu_seconds_used: float = 0.0
    gpu_seconds_working: float = 0.0  # held by pods that run: singles, and members of groups running whole
    gpu_seconds_total: float = 0.0
    unplaced_inference: int = 0

    def summary(self) -> dict[str, Any]:
        def pct(values: list[float], q: float) -> float:
            return round(float(np.percentile(values, q)), 1) if values else 0.0

        return {
            "placer": self.placer,
            "partial_groups": self.partial_groups,
            "groups_placed": self.groups_placed,
            "group_placement_s_p50": pct(self.group_wait, 50),
            "group_placement_s_p99": pct(self.group_wait, 99),
            "inference_wait_s_p50": pct(self.inference_wait, 50),
            "inference_wait_s_p99": pct(self.inference_wait, 99),
            "inference_pods_never_placed": self.unplaced_inference,
            "gpus_evicted": round(self.gpus_evicted, 1),
            "inference_gpus_evicted": round(self.inference_gpus_evicted, 1),
            "gpu_allocation_pct": round(100 * self.gpu_seconds_used / self.gpu_seconds_total, 2) if self.gpu_seconds_total else 0.0,
            "gpu_working_pct": round(100 * self.gpu_seconds_working / self.gpu_seconds_total, 2) if self.gpu_seconds_total else 0.0,
        }


async def simulate(scenario: Scenario, policy: Policy, placer_name: str) -> dict[str, Any]:
    nodes = make_nodes(scenario)
    placer = ExtenderPlacer(policy, nodes) if placer_name == "infergate" else DefaultPlacer(policy, nodes)
    capacity = sum(int(n["status"]["allocatable"][constants.GPU_RESOURCE]) for n in nodes)
    rng = random.Random(scenario.seed)
    events: list[tuple[float, int, str, Any]] = []  # (time, sequence, kind, payload)
    sequence = 0

    def push(time: float, kind: str, payload: Any) -> None:
        nonlocal sequence
        sequence += 1
        heapq.heappush(events, (time, sequence, kind, payload))

    for workload in scenario.workloads:
        at = workload.start
        for i in range(workload.count):
            push(at, "arrive", (workload, i))
            at += rng.expovariate(1 / workload.every) if workload.jitter else workload.every

    outcome = Outcome(placer.name)
    pending: list[SimPod] = []
    running: dict[str, SimPod] = {}
    groups: dict[str, list[SimPod]] = {}
    ever_partial: set[str] = set()
    started_groups: set[str] = set()
    waited: set[str] = set()
    group_arrival: dict[str, float] = {}
    node_gpus = {n["metadata"]["name"]: 1000 * int(n["status"]["allocatable"][constants.GPU_RESOURCE]) for n in nodes}
    now = 0.0
    used = 0

    def arrive(workload: Workload, index: int, at: float) -> None:
        group = f"{workload.name}-{index}" if workload.size > 1 else None
        members = []
        for rank in range(workload.size):
            name = f"{workload.name}-{index}-{rank}" if group else f"{workload.name}-{index}"
            obj = make_pod(name, workload, group, rank)
            pod = SimPod(f"sim/{name}", obj, workload.workload, f"sim/{group}" if group else None, at, workload.duration,
                         workload.gpus * 1000 + workload.gpu_milli, rank)
            members.append(pod)
            placer.add(pod)
        if group:
            groups[f"sim/{group}"] = members
            group_arrival[f"sim/{group}"] = at
        pending.extend(members)

    def evict(key: str) -> None:
        nonlocal used
        pod = running.pop(key, None)
        if pod is None:
            return
        used -= pod.gpu_milli
        outcome.gpus_evicted += pod.gpu_milli / 1000
        if pod.workload == constants.INFERENCE:
            outcome.inference_gpus_evicted += pod.gpu_milli / 1000
        placer.remove(pod)
        if pod.group:  # the job restarts: its members' clocks stop until the group runs whole again
            for member in groups.get(pod.group, []):
                member.runs_until = None
        pod.node, pod.bound_at, pod.runs_until = None, None, None
        pod.obj["spec"].pop("nodeName", None)
        pod.obj["status"]["phase"] = "Pending"
        pod.obj["metadata"]["uid"] = f"uid-{pod.obj['metadata']['name']}-{rng.random():.6f}"  # recreated
        placer.add(pod)
        pending.append(pod)

    async def cycle() -> None:
        nonlocal used
        # kube-scheduler's queue: priority, then creation time; pods of groups created at the same moment by
        # their controllers interleave (rank), which is how member-by-member placement deadlocks.
        pending.sort(key=lambda p: (-PRIORITY[p.workload], p.arrived, p.rank, p.key))
        for pod in list(pending):
            if pod not in pending:
                continue
            node = await placer.schedule(pod)
            if node is None:
                candidates = _preemption_candidates(pod, running, node_gpus)
                decision = await placer.preempt(pod, candidates) if candidates else None
                if decision is not None:
                    for key in decision[1]:
                        evict(key)
                    node = await placer.schedule(pod)
            if node is None:
                continue
            pod.node, pod.bound_at = node, now
            pending.remove(pod)
            running[pod.key] = pod
            used += pod.gpu_milli
            if pod.group is None:
                start(pod)
        # A group runs, and its clock starts, only when every member is bound.
        for group, members in groups.items():
            bound = sum(1 for m in members if m.node is not None)
            if 0 < bound < len(members) and not placer.reserved(group):
                ever_partial.add(group)  # holding GPUs it cannot use, with nothing held for the rest
            elif members and bound == len(members) and members[0].runs_until is None:
                if group not in started_groups:
                    started_groups.add(group)
                    outcome.group_wait.append(now - group_arrival[group])
                    outcome.groups_placed += 1
                for m in members:
                    start(m)

    def account(elapsed: float) -> None:
        working = sum(p.gpu_milli for p in running.values() if p.runs_until is not None)
        outcome.gpu_seconds_used += used / 1000 * elapsed
        outcome.gpu_seconds_working += working / 1000 * elapsed
        outcome.gpu_seconds_total += capacity * elapsed

    def start(pod: SimPod) -> None:
        pod.runs_until = now + pod.duration
        push(pod.runs_until, "finish", pod.key)
        if pod.workload == constants.INFERENCE and pod.key not in waited:
            waited.add(pod.key)
            outcome.inference_wait.append(now - pod.arrived)

    last = 0.0
    while events and events[0][0] <= scenario.horizon:
        now, _, kind, payload = heapq.heappop(events)
        account(now - last)
        last = now
        if kind == "arrive":
            arrive(payload[0], payload[1], now)
        elif kind == "finish":
            pod = running.get(payload)
            if pod is None or pod.runs_until is None or abs(pod.runs_until - now) > 1e-9:
                continue  # evicted and rescheduled since
            running.pop(payload)
            used -= pod.gpu_milli
            placer.remove(pod)
            if pod.group:
                groups[pod.group] = [m for m in groups[pod.group] if m.key != pod.key]
        if events and events[0][0] == now:
            continue  # settle every event of this instant before scheduling
        await cycle()
    account(scenario.horizon - last)
    outcome.partial_groups = len(ever_partial)
    never = [p for p in pending if p.workload == constants.INFERENCE and p.key not in waited]
    outcome.unplaced_inference = len(never)
    # Pods still waiting at the end have waited at least until then: count that, not nothing.
    outcome.inference_wait += [scenario.horizon - p.arrived for p in never]
    return outcome.summary()


def _preemption_candidates(pod: SimPod, running: dict[str, SimPod], node_gpus: dict[str, int]) -> dict[str, list[str]]:
    """What kube-scheduler's DefaultPreemption proposes: per node, the fewest lower-priority pods (largest
    first) whose GPUs, with the node's free ones, cover the pod. It counts GPUs per node, not per GPU index."""
    mine = PRIORITY[pod.workload]
    used: dict[str, int] = {}
    lower: dict[str, list[SimPod]] = {}
    for other in running.values():
        if other.node:
            used[other.node] = used.get(other.node, 0) + other.gpu_milli
            if PRIORITY[other.workload] < mine:
                lower.setdefault(other.node, []).append(other)
    candidates: dict[str, list[str]] = {}
    for node, pods in lower.items():
        free = node_gpus[node] - used[node]
        victims: list[str] = []
        for other in sorted(pods, key=lambda p: (-p.gpu_milli, p.key)):
            if free >= pod.gpu_milli:
                break
            victims.append(other.key)
            free += other.gpu_milli
        if free >= pod.gpu_milli and victims:
            candidates[node] = victims
    return candidates


async def compare(scenario: Scenario, policy: Policy) -> dict[str, Any]:
    """Ours and the baseline on the same arrivals."""
    return {
        "scenario": scenario.name,
        "results": [await simulate(scenario, policy, "infergate"), await simulate(scenario, policy, "default")],
    }
