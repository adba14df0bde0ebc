"""Live placement quality: an openb slice through the real kube-scheduler with the extender, against the simulator.

    .venv/bin/python bench/openb_live.py [--node-share 0.1] [--seed 42] [--arrival 1.3] [--json OUT]

1. Samples a share of the openb GPU nodes (seeded, without repetition) and builds the workload exactly as
   `infergate simulate` does for that node list: the default trace's pods, trimmed or topped up to `arrival` x
   the sample's GPU capacity, shuffled with the seed. With a tenth of the nodes that is about a thousand pods,
   well past the knee of the allocation curve.
2. Replays that workload through the simulator (`extender.simulate.replay.run_seed`, the scorer learning as
   the live extender does: from the pods it places) and records the allocation curve.
3. Starts the local control plane (devcluster), the extender as deployed (list+watch, HTTPS), kwok nodes with
   the sampled nodes' CPU, memory, GPU count and model, and kube-scheduler with the shipped profile
   (deploy/base/scheduler/kube-scheduler-config.yaml).
4. Creates the pods one at a time in the same order; each waits until it is bound or kube-scheduler reports
   it unschedulable (then it is deleted, as the simulator skips a pod that fits nowhere). Whole GPUs are asked
   as nvidia.com/gpu, shares as infergate.io/gpu-milli, a required GPU model as node affinity on
   nvidia.com/gpu.product. Every pod is annotated as inference: the simulator knows no workload classes, so
   the extender's training steering (free nodes kept for inference groups) must not apply.
5. Reports the GPU allocation of both at the end and at each 10% of arrival, and the difference.

Target: live within 0.5 points of the simulator at the end. Exit code 1 when missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from devcluster.cluster import LocalCluster  # noqa: E402
from extender.core.resources import NodeSpec, PodRequest  # noqa: E402
from extender.core.scorers import DEFAULT_SCORER, make_scorer  # noqa: E402
from extender.simulate.replay import run_seed, tune_workload  # noqa: E402
from extender.simulate.trace import TracePod, load_nodes, load_pods  # noqa: E402
from infergate import constants  # noqa: E402
import scheduler_throughput  # noqa: E402
from scheduler_throughput import NAMESPACE, SCHEDULER_NAME, Bench, api_client, machine, pod_changes  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "openb"
TARGET_POINTS = 0.5
MIB = 1 << 20


def sample_nodes(nodes: list[NodeSpec], share: float, seed: int) -> list[NodeSpec]:
    """A seeded share of the nodes, in the node list's order."""
    count = max(1, round(share * len(nodes)))
    picked = np.sort(np.random.default_rng(seed).choice(len(nodes), size=count, replace=False))
    return [nodes[i] for i in picked]


def workload_of(nodes: list[NodeSpec], pods: list[TracePod], seed: int, arrival: float) -> list[TracePod]:
    """The pods in the order `run_seed` places them (it draws the workload first from the same generator)."""
    capacity = sum(n.gpus for n in nodes) * 1000
    return tune_workload(pods, arrival * capacity, np.random.default_rng(seed))


def pod_object(i: int, request: PodRequest) -> dict[str, Any]:
    requests: dict[str, str] = {"cpu": f"{request.cpu_milli}m", "memory": str(request.memory_bytes)}
    limits: dict[str, str] = {}
    if request.gpus:
        limits[constants.GPU_RESOURCE] = str(request.gpus)
    elif request.gpu_milli:
        limits[constants.GPU_SHARE_RESOURCE] = str(request.gpu_milli)
    spec: dict[str, Any] = {
        "schedulerName": SCHEDULER_NAME,
        "containers": [{"name": "c", "image": "registry.example.com/openb:v1",
                        "resources": {"requests": {**requests, **limits}, "limits": limits}}],
        "terminationGracePeriodSeconds": 0,
    }
    if request.gpu_products:
        spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": constants.GPU_PRODUCT_LABEL, "operator": "In",
                                   "values": sorted(request.gpu_products)}]}]}}}
    return {"apiVersion": "v1", "kind": "Pod",
            # every pod as inference: the simulator has no workload classes, so no training steering here
            "metadata": {"name": f"p-{i:05d}", "namespace": NAMESPACE, "labels": {"app": "openb"},
                         "annotations": {constants.WORKLOAD_ANNOTATION: constants.INFERENCE}},
            "spec": spec}


def add_nodes(cluster: LocalCluster, nodes: list[NodeSpec]) -> None:
    """kwok nodes like the sampled ones, named after them (`<sn>-<n>`), so placements can be compared."""
    for node in nodes:
        cluster.add_gpu_nodes(1, gpus_per_node=node.gpus, product=node.gpu_product or "", cpu=f"{node.cpu_milli}m",
                              memory=f"{node.memory_bytes // MIB}Mi", pods=500, name_prefix=node.name, wait=False)


def trace_node(kwok_name: str) -> str:
    return kwok_name.rsplit("-", 1)[0]


class Placements:
    """Follows the namespace's pods with one watch: which are bound, which kube-scheduler gave up on."""

    def __init__(self) -> None:
        self.outcome: dict[str, str] = {}  # pod name -> node name, or "" when unschedulable
        self.reasons: dict[str, str] = {}  # pod name -> kube-scheduler's message when unschedulable
        self.changed = asyncio.Event()

    async def follow(self, api, ready: asyncio.Event) -> None:
        async for obj in pod_changes(api, ready, 3600):
            name = (obj.get("metadata") or {}).get("name")
            node = (obj.get("spec") or {}).get("nodeName")
            conditions = (obj.get("status") or {}).get("conditions") or []
            failed = [c for c in conditions if c.get("type") == "PodScheduled" and c.get("status") == "False"
                      and c.get("reason") == "Unschedulable"]
            if name and name not in self.outcome and (node or failed):
                self.outcome[name] = node or ""
                if failed and not node:
                    self.reasons[name] = str(failed[0].get("message", ""))
                self.changed.set()

    async def wait(self, name: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while name not in self.outcome:
            self.changed.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"pod {name} neither bound nor unschedulable after {timeout:.0f}s")
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except asyncio.TimeoutError:
                continue
        return self.outcome[name]


async def replay_live(bench: Bench, workload: list[TracePod], capacity: int) -> dict[str, Any]:
    from kubernetes_asyncio import client

    api = await api_client(bench.cluster)
    core = client.CoreV1Api(api)
    placements = Placements()
    ready = asyncio.Event()
    follower = asyncio.create_task(placements.follow(api, ready))
    await ready.wait()
    allocated = arrived = failed = 0
    points: list[float] = []
    nodes: list[str | None] = []
    started = time.perf_counter()
    try:
        for i, pod in enumerate(workload):
            body = pod_object(i, pod.request)
            response = await core.create_namespaced_pod(NAMESPACE, body, _preload_content=False)
            if response.status >= 300:
                raise RuntimeError(f"creating pod {i}: {response.status} {await response.text()}")
            response.release()
            node = await placements.wait(body["metadata"]["name"])
            nodes.append(trace_node(node) if node else None)
            if node:
                allocated += pod.request.total_gpu_milli
            else:
                failed += 1
                if failed <= 3:
                    print(f"  live: pod {i} ({pod.request.describe_gpu()}, {pod.request.cpu_milli}m CPU) "
                          f"unschedulable: {placements.reasons.get(body['metadata']['name'], '?')}", flush=True)
                await core.delete_namespaced_pod(body["metadata"]["name"], NAMESPACE, grace_period_seconds=0,
                                                 _preload_content=False)
            arrived += pod.request.total_gpu_milli
            while len(points) <= int(100.0 * arrived / capacity + 1e-9):
                points.append(100.0 * allocated / capacity)
            if (i + 1) % 100 == 0:
                print(f"  live: {i + 1}/{len(workload)} pods, {100.0 * allocated / capacity:.2f}% allocated, "
                      f"{failed} unschedulable ({time.perf_counter() - started:.0f}s)", flush=True)
    finally:
        follower.cancel()
        await api.close()
    gauge = bench.extender_metrics().get("infergate_gpu_allocated_milli")
    return {"allocation_pct": 100.0 * allocated / capacity, "failed_pods": failed, "curve": points, "nodes": nodes,
            "extender_allocated_milli": gauge, "allocated_milli": allocated,
            "seconds": round(time.perf_counter() - started, 1)}


async def run_live(args: argparse.Namespace, nodes: list[NodeSpec], workload: list[TracePod],
                   work: Path) -> dict[str, Any]:
    shutil.rmtree(work / "cluster", ignore_errors=True)  # a fresh etcd every run
    cluster = LocalCluster(work_dir=work / "cluster")
    cluster.start()
    try:
        bench = Bench(cluster, work)
        bench.start_extender()
        try:
            cluster.kubectl("create", "namespace", NAMESPACE, check=True)
            cluster.wait_for("the default service account", lambda: cluster.kubectl(
                "get", "serviceaccount", "default", "-n", NAMESPACE).returncode == 0, timeout=60)
            await asyncio.to_thread(add_nodes, cluster, nodes)
            api = await api_client(cluster)
            try:
                await bench.wait_schedulable(api, len(nodes), time.perf_counter())
            finally:
                await api.close()
            cluster.restart_scheduler(bench.scheduler_config(True))
            capacity = sum(n.gpus for n in nodes) * 1000
            return await replay_live(bench, workload, capacity)
        finally:
            bench.stop_extender()
    finally:
        cluster.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.environ.get("OPENB_DATA", str(DEFAULT_DATA)))
    parser.add_argument("--pods", default="openb_pod_list_default.csv", help="pod list in --data")
    parser.add_argument("--node-share", type=float, default=0.1, help="share of the openb nodes (default 0.1)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--arrival", type=float, default=1.3)
    parser.add_argument("--json", metavar="OUT")
    parser.add_argument("--keep", metavar="DIR", help="work (and leave logs) in DIR")
    parser.add_argument("--simulate-only", action="store_true", help="only the simulator side (no control plane)")
    parser.add_argument("--scheduler-config", metavar="FILE",
                        help="KubeSchedulerConfiguration to run instead of the shipped one (its first profile and "
                             "extender are used; URL and CA are filled in)")
    args = parser.parse_args(argv)
    if args.scheduler_config:
        scheduler_throughput.SCHEDULER_CONFIG = Path(args.scheduler_config)
    data = Path(args.data)
    nodes = sample_nodes(load_nodes(data / "openb_node_list_gpu_node.csv"), args.node_share, args.seed)
    pods = load_pods(data / args.pods)
    workload = workload_of(nodes, pods, args.seed, args.arrival)
    capacity = sum(n.gpus for n in nodes) * 1000
    print(f"{len(nodes)} nodes ({capacity // 1000} GPUs), {len(workload)} pods; {machine()}", flush=True)
    # The live extender starts knowing no workload and learns from the pods it places; so does this scorer.
    # `infergate simulate` learns from the whole trace up front: reported beside it.
    sim_nodes: list[str | None] = []
    simulated = run_seed(nodes, pods, make_scorer(DEFAULT_SCORER), args.seed, args.arrival, placements=sim_nodes)
    trace_learned = run_seed(nodes, pods, make_scorer(DEFAULT_SCORER, [p.request for p in pods]), args.seed,
                             args.arrival)
    report: dict[str, Any] = {
        "nodes": len(nodes), "gpus": capacity // 1000, "pods": len(workload), "seed": args.seed,
        "arrival": args.arrival, "machine": machine(),
        "simulator": {k: simulated[k] for k in ("allocation_pct", "failed_pods", "curve")},
        "simulator_trace_learned": {k: trace_learned[k] for k in ("allocation_pct", "failed_pods")},
    }
    print(f"simulator: {simulated['allocation_pct']:.2f}% ({simulated['failed_pods']} pods fit nowhere); "
          f"learning from the whole trace up front: {trace_learned['allocation_pct']:.2f}%", flush=True)
    ok = True
    if not args.simulate_only:
        with tempfile.TemporaryDirectory(prefix="openb-live-") as tmp:
            work = Path(args.keep) if args.keep else Path(tmp)
            work.mkdir(parents=True, exist_ok=True)
            live = asyncio.run(run_live(args, nodes, workload, work))
        report["live"] = live
        gap = live["allocation_pct"] - simulated["allocation_pct"]
        report["live_minus_simulator"] = round(gap, 2)
        ok = abs(gap) <= TARGET_POINTS
        same = [a == b for a, b in zip(sim_nodes, live["nodes"])]
        first = same.index(False) if not all(same) else None
        report["same_node_pct"] = round(100.0 * sum(same) / max(len(same), 1), 1)
        report["first_difference"] = first
        print(f"same node as the simulator for {report['same_node_pct']}% of the pods; first difference: "
              + (f"pod {first} ({workload[first].request.describe_gpu()}, {workload[first].request.cpu_milli}m CPU): "
                 f"simulator {sim_nodes[first]}, live {live['nodes'][first]}" if first is not None else "none"))
        print(f"live: {live['allocation_pct']:.2f}% ({live['failed_pods']} pods unschedulable, "
              f"{live['seconds']}s); live - simulator = {gap:+.2f} points "
              f"({'within' if ok else 'MISSED:'} target {TARGET_POINTS})")
        print("arrival %   simulator   live")
        for pct in range(0, min(len(live["curve"]), len(simulated["curve"])), 10):
            print(f"{pct:>9}   {simulated['curve'][pct]:>9.2f}   {live['curve'][pct]:>6.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
