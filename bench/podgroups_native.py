"""Native Kubernetes gangs alone vs native gangs with the infergate extender, on the real kube-scheduler.

    .venv/bin/python bench/podgroups_native.py [--seed 7] [--json OUT]

One run, on the local control plane (devcluster: GenericWorkload and TopologyAwareWorkloadScheduling on, so
kube-scheduler's GangScheduling and TopologyPlacementGenerator plugins hold and place scheduling.k8s.io
PodGroups), the same workload twice from an empty cluster:

- `native`: kube-scheduler with the shipped profile's settings and no extender: the native gang plugins place
  the gangs; a fractional pod cannot ask kube-scheduler for part of a GPU, so it asks for one whole GPU;
- `native+infergate`: the shipped configuration (deploy/base/scheduler/kube-scheduler-config.yaml) with the
  extender (`infergate extender --kubeconfig`, list+watch, HTTPS): fractional pods ask for
  `infergate.io/gpu-milli` and share GPUs.

The workload (seeded): native PodGroups of 2-4 members with 2, 4 or 8 GPUs each (half of them with the rack as
required topology), single pods of 1, 2 or 4 GPUs and fractional pods of 250 or 500 thousandths, arriving over
`--arrival-seconds` in random order, all of one priority (no preemption). Each pod runs `--run-seconds` (a
random 0.5-1.5 times that) after it is bound; a gang runs from when its last member is bound. Nodes: kwok nodes
with 8 H100s in racks of 4. Demand is about twice the cluster, so gangs queue behind each other.

Measured, sampling the pods every `--interval` seconds:
- partial gangs: gangs seen with some, not all, of their minCount members bound in two samples or more in a row;
  a gang seen so in one sample only was caught while its members were being bound (kube-scheduler binds them
  one API call each, through the extender when there is one) and is counted apart;
- time to place each gang: from its PodGroup's creation to its last member bound (p50 / p90 / max; gangs never
  placed count until the end);
- GPUs stranded, the mean over samples with pods waiting of GPU capacity no waiting pod can use, in two parts:
  free GPUs of nodes too small for every waiting pod plus free shares of GPUs no waiting fractional pod fits;
  and the unused part of whole GPUs held by fractional pods (native only: half a GPU each, on average);
- the makespan (first arrival to the last pod bound) and pods never placed.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devcluster.cluster import LocalCluster  # noqa: E402
from devcluster.stack import InfergateStack  # noqa: E402

NAMESPACE = "bench-podgroups"
RACK = "infergate.io/rack"
PRIORITY_CLASS = "infergate-training"
MILLI = 1000


@dataclass
class Item:
    """One arrival: a gang (PodGroup and members) or a single pod."""

    name: str
    at: float
    members: list[dict[str, int]]  # each {"gpus": n} or {"milli": m}
    gang: bool
    topology: bool = False
    run: float = 30.0


def workload(seed: int, arrival: float, run: float) -> list[Item]:
    rng = random.Random(seed)
    items: list[Item] = []
    for i in range(14):
        size = rng.choice([2, 3, 4])
        gpus = rng.choice([2, 4, 8])
        items.append(Item(f"gang-{i}", 0, [{"gpus": gpus}] * size, True, topology=i % 2 == 0))
    for i in range(36):
        items.append(Item(f"single-{i}", 0, [{"gpus": rng.choice([1, 1, 2, 4])}], False))
    for i in range(40):
        items.append(Item(f"frac-{i}", 0, [{"milli": rng.choice([250, 500])}], False))
    rng.shuffle(items)
    for item in items:
        item.at = rng.uniform(0, arrival)
        item.run = run * rng.uniform(0.5, 1.5)
    return sorted(items, key=lambda it: it.at)


def pod_name(item: Item, index: int) -> str:
    return f"{item.name}-{index}" if item.gang else item.name


def pod_object(item: Item, index: int, shares: bool) -> dict[str, Any]:
    ask = item.members[index]
    resources = {"nvidia.com/gpu": str(ask["gpus"])} if "gpus" in ask else (
        {"infergate.io/gpu-milli": str(ask["milli"])} if shares else {"nvidia.com/gpu": "1"})
    spec: dict[str, Any] = {
        "schedulerName": "infergate-scheduler",
        "priorityClassName": PRIORITY_CLASS,
        "containers": [{"name": "main", "image": "busybox", "resources": {"limits": resources, "requests": resources}}],
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    }
    if item.gang:
        spec["schedulingGroup"] = {"podGroupName": item.name}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod_name(item, index), "namespace": NAMESPACE,
            "annotations": {"infergate.io/workload": "training"}}, "spec": spec}


def pod_group(item: Item) -> dict[str, Any]:
    spec: dict[str, Any] = {"schedulingPolicy": {"gang": {"minCount": len(item.members)}}, "priorityClassName": PRIORITY_CLASS}
    if item.topology:
        spec["schedulingConstraints"] = {"topology": [{"key": RACK}]}
    return {"apiVersion": "scheduling.k8s.io/v1beta1", "kind": "PodGroup", "metadata": {"name": item.name, "namespace": NAMESPACE},
            "spec": spec}


@dataclass
class Phase:
    name: str
    partial: dict[str, int] = field(default_factory=dict)  # gang -> most consecutive samples seen partly bound
    partial_run: dict[str, int] = field(default_factory=dict)
    gang_seconds: dict[str, float] = field(default_factory=dict)
    stranded: list[tuple[float, float]] = field(default_factory=list)
    makespan: float = 0.0
    never_placed: int = 0


def stranded_gpus(pods: list[dict[str, Any]], capacity: dict[str, int], shares: bool) -> tuple[float, float] | None:
    """GPU capacity no waiting pod can use, as (free GPUs and free shares no waiting pod fits, the unused part
    of whole GPUs held by fractional pods); None when nothing waits."""
    waiting: list[tuple[int, int]] = []  # (whole GPUs, milli)
    whole_used = {n: 0 for n in capacity}
    share_used: dict[tuple[str, str], int] = {}
    waste = 0.0
    for pod in pods:
        limits = pod["spec"]["containers"][0]["resources"]["limits"]
        gpus, milli = int(limits.get("nvidia.com/gpu", 0)), int(limits.get("infergate.io/gpu-milli", 0))
        fractional_as_whole = pod["metadata"]["name"].startswith("frac-") and not shares
        node = pod["spec"].get("nodeName")
        if not node:
            waiting.append((0, 500) if fractional_as_whole else (gpus, milli))  # what it really needs
            continue
        if node not in capacity:
            continue
        if milli:
            index = (pod["metadata"].get("annotations") or {}).get("infergate.io/gpu-index", "?")
            share_used[(node, index)] = share_used.get((node, index), 0) + milli
        else:
            whole_used[node] += gpus
        if fractional_as_whole:
            waste += 0.5  # the mean unused part of a whole GPU held for a 250m or 500m pod
    if not waiting:
        return None
    smallest_whole = min((g for g, _ in waiting if g), default=None)
    smallest_share = min((m for g, m in waiting if not g and m), default=None)
    stranded = 0.0
    for node, count in capacity.items():
        shared = {i for (n, i) in share_used if n == node}
        free = count - whole_used[node] - len(shared)
        if free > 0 and (smallest_whole is None or free < smallest_whole) and smallest_share is None:
            stranded += free
        for index in shared:
            left = MILLI - share_used[(node, index)]
            if left > 0 and (smallest_share is None or left < smallest_share):
                stranded += left / MILLI
    return stranded, waste


def run_phase(cluster: LocalCluster, name: str, items: list[Item], shares: bool, interval: float, limit: float) -> Phase:
    phase = Phase(name)
    cluster.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}])
    capacity = {n["metadata"]["name"]: int(n["status"]["allocatable"].get("nvidia.com/gpu", 0))
                for n in cluster.get_json("nodes")["items"] if n["metadata"].get("labels", {}).get(RACK, "").startswith("bench-")}
    start = time.monotonic()
    created: dict[str, float] = {}
    bound_at: dict[str, float] = {}  # item -> when it was wholly bound
    finished: set[str] = set()
    pending = list(items)
    last_bind = start
    while time.monotonic() - start < limit:
        now = time.monotonic() - start
        arrivals = [it for it in pending if it.at <= now]
        pending = [it for it in pending if it.at > now]
        if arrivals:
            objects: list[dict[str, Any]] = []
            for item in arrivals:
                if item.gang:
                    objects.append(pod_group(item))
                objects += [pod_object(item, i, shares) for i in range(len(item.members))]
            cluster.apply(objects, verb="create")
            for item in arrivals:
                created[item.name] = time.monotonic() - start  # once the API server has all of it
        pods = [p for p in cluster.get_json("pods", "-n", NAMESPACE)["items"] if not p["metadata"].get("deletionTimestamp")]
        now = time.monotonic() - start  # what the list shows is true by now
        by_item: dict[str, list[dict[str, Any]]] = {}
        for p in pods:
            owner = (p["spec"].get("schedulingGroup") or {}).get("podGroupName") or p["metadata"]["name"]
            by_item.setdefault(owner, []).append(p)
        done: list[str] = []
        for item in items:
            members = by_item.get(item.name, [])
            bound = sum(1 for p in members if p["spec"].get("nodeName"))
            if item.gang and 0 < bound < len(item.members):
                run = phase.partial_run[item.name] = phase.partial_run.get(item.name, 0) + 1
                phase.partial[item.name] = max(run, phase.partial.get(item.name, 0))
            else:
                phase.partial_run.pop(item.name, None)
            if item.name not in bound_at and members and bound == len(item.members):
                bound_at[item.name] = now
                last_bind = time.monotonic()
                if item.gang:
                    phase.gang_seconds[item.name] = now - created[item.name]
            if item.name in bound_at and item.name not in finished and now - bound_at[item.name] >= item.run:
                done += [pod_name(item, i) for i in range(len(item.members))]
                finished.add(item.name)
        sample = stranded_gpus(pods, capacity, shares)
        if sample is not None:
            phase.stranded.append(sample)
        if done:
            cluster.kubectl("delete", "pod", "-n", NAMESPACE, "--wait=false", *done)
        if not pending and len(finished) == len(items):
            break
        time.sleep(interval)
    end = time.monotonic() - start
    phase.makespan = last_bind - start
    phase.never_placed = sum(1 for it in items if it.name not in bound_at)
    for item in items:
        if item.gang and item.name not in phase.gang_seconds:
            phase.gang_seconds[item.name] = end - created.get(item.name, 0.0)
    cluster.kubectl("delete", "namespace", NAMESPACE, "--wait=true", "--timeout=120s")
    return phase


def summary(phase: Phase) -> dict[str, Any]:
    waits = sorted(phase.gang_seconds.values())

    def pct(q: float) -> float:
        return round(waits[min(len(waits) - 1, int(q * len(waits)))], 1) if waits else 0.0

    return {
        "placer": phase.name, "partial_gangs": sum(1 for n in phase.partial.values() if n >= 2),
        "gangs_seen_binding": sum(1 for n in phase.partial.values() if n == 1), "gang_seconds_p50": pct(0.5),
        "gang_seconds_p90": pct(0.9), "gang_seconds_max": round(max(waits), 1) if waits else 0.0,
        "gpus_stranded_free_mean": round(statistics.fmean(s[0] for s in phase.stranded), 2) if phase.stranded else 0.0,
        "gpus_stranded_in_shares_mean": round(statistics.fmean(s[1] for s in phase.stranded), 2) if phase.stranded else 0.0,
        "makespan_seconds": round(phase.makespan, 1), "never_placed": phase.never_placed,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--racks", type=int, default=3)
    parser.add_argument("--nodes-per-rack", type=int, default=4)
    parser.add_argument("--arrival-seconds", type=float, default=40.0)
    parser.add_argument("--run-seconds", type=float, default=30.0)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--limit-seconds", type=float, default=420.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    items = workload(args.seed, args.arrival_seconds, args.run_seconds)
    with LocalCluster() as cluster:
        stack = InfergateStack(cluster)
        stack.start()
        try:
            for rack in range(args.racks):
                cluster.add_gpu_nodes(args.nodes_per_rack, labels={RACK: f"bench-{rack}"}, name_prefix=f"bench-{rack}")
            with_extender = stack.scheduler_config()
            config = yaml.safe_load(with_extender)
            config.pop("extenders")
            native = yaml.safe_dump(config, sort_keys=False)
            results = []
            for name, scheduler, shares in (("native", native, False), ("native+infergate", with_extender, True)):
                cluster.restart_scheduler(scheduler)
                results.append(summary(run_phase(cluster, name, items, shares, args.interval, args.limit_seconds)))
                print(json.dumps(results[-1]), flush=True)
        finally:
            stack.stop()
    gangs = sum(1 for it in items if it.gang)
    print(f"\n{len(items)} arrivals ({gangs} gangs), {args.racks * args.nodes_per_rack} nodes x 8 GPUs\n")
    print("| placer | partial gangs (seen in a binding) | time to place a gang p50 / p90 / max (s) | GPUs stranded: free, no waiting pod fits "
          "/ unused in whole GPUs held by fractional pods (mean) | makespan (s) | never placed |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(f"| {r['placer']} | {r['partial_gangs']} ({r['gangs_seen_binding']}) | {r['gang_seconds_p50']} / {r['gang_seconds_p90']} / "
              f"{r['gang_seconds_max']} | {r['gpus_stranded_free_mean']} / {r['gpus_stranded_in_shares_mean']} | "
              f"{r['makespan_seconds']} | {r['never_placed']} |")
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
