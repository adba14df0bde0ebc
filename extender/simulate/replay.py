"""The openb experiment (the FGD paper's method) run through the extender's own placement code.

Per seed: keep the trace's pods, add random copies (or drop random pods) until their summed GPU request is
`arrival` x the cluster's GPU capacity, shuffle, and place them one at a time with the scorer, never removing
any. A pod that fits nowhere fails and is skipped. The GPU allocation ratio is recorded at each 1% of arrived
GPU demand; results are averaged over seeds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from extender.core.cluster import ClusterState
from extender.core.placement import choose
from extender.core.resources import NodeSpec
from extender.core.scorers import DEFAULT_SCORER, Scorer, make_scorer
from extender.simulate.trace import TracePod, load_nodes, load_pods

__all__ = ["DEFAULT_SEEDS", "run", "run_seed", "tune_workload"]

DEFAULT_SEEDS = tuple(range(42, 52))


def tune_workload(pods: Sequence[TracePod], target_milli: float, rng: np.random.Generator) -> list[TracePod]:
    """The trace's pods, trimmed or topped up with random copies so their GPU request just stays within
    `target_milli`, then shuffled.

    Topping up stops at the first drawn copy that would overshoot, as the paper's simulator does; trimming
    (a trace that already asks for more, like multigpu50) drops random pods until it fits.
    """
    workload = list(pods)
    total = sum(p.request.total_gpu_milli for p in workload)
    if total > target_milli:
        while total > target_milli and workload:
            victim = workload.pop(int(rng.integers(len(workload))))
            total -= victim.request.total_gpu_milli
    else:
        copies = 0
        while True:
            pick = pods[int(rng.integers(len(pods)))]
            if total + pick.request.total_gpu_milli > target_milli:
                break
            total += pick.request.total_gpu_milli
            copies += 1
            workload.append(TracePod(name=f"{pick.name}-copy-{copies}", request=pick.request))
    return [workload[i] for i in rng.permutation(len(workload))]


def run_seed(
    nodes: Sequence[NodeSpec],
    pods: Sequence[TracePod],
    scorer: Scorer,
    seed: int,
    arrival: float = 1.3,
    on_pod: Callable[[], None] | None = None,
    placements: list[str | None] | None = None,
) -> dict[str, Any]:
    """One seed of the experiment; returns its allocation ratio, failures and curve. `placements`, when given,
    gets each pod's node (None: it fit nowhere), in the order they were placed."""
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    state = ClusterState(nodes)
    capacity = state.gpu_capacity_milli()
    if capacity <= 0:
        raise ValueError("the node list has no GPUs, so there is no GPU allocation to measure")
    workload = tune_workload(pods, arrival * capacity, rng)
    points = int(math.floor(arrival * 100 + 1e-9))
    curve = np.zeros(points + 1)
    next_point = 0
    arrived = 0
    allocated = 0
    failed_at: list[int] = []  # allocated milli when each failing pod came
    for i, pod in enumerate(workload):
        request = pod.request
        choice = choose(state, request, scorer, rng)
        if placements is not None:
            placements.append(choice.node if choice is not None else None)
        if choice is None:
            failed_at.append(allocated)
        else:
            state.allocate(f"trace/{i}", request, choice.node, choice.gpu_indices)
            scorer.observe(request)
            allocated += request.total_gpu_milli
        arrived += request.total_gpu_milli
        arrived_pct = 100.0 * arrived / capacity
        while next_point <= points and next_point <= arrived_pct + 1e-9:
            curve[next_point] = 100.0 * allocated / capacity
            next_point += 1
        if on_pod is not None:
            on_pod()
    final = 100.0 * allocated / capacity
    curve[next_point:] = final
    if allocated != state.gpu_used_milli():  # the core's own accounting must agree with ours
        raise AssertionError(f"accounting drift: placed {allocated} milli, state says {state.gpu_used_milli()}")
    return {
        "seed": seed,
        "allocation_pct": final,
        "failed_pods": len(failed_at),
        # turned away while the cluster had not yet reached 90% of the allocation it ends with: pods a packing
        # policy starves (the big or pinned ones whose nodes it spent) rather than pods that came too late
        "early_failed_pods": sum(1 for at in failed_at if at < 0.9 * allocated),
        "pods": len(workload),
        "arrived_gpu_pct": 100.0 * arrived / capacity,
        "seconds": time.perf_counter() - started,
        "curve": curve.tolist(),
    }


def run(
    nodes_csv: str | Path,
    pods_csv: str | Path,
    scorer: str = DEFAULT_SCORER,
    seeds: Iterable[int] = DEFAULT_SEEDS,
    arrival: float = 1.3,
    progress: bool = False,
) -> dict[str, Any]:
    """Run the experiment for one scorer over `seeds` and average.

    Returns `allocation_pct` (mean over seeds of allocated / total GPU milli at the end, in %), `per_seed`
    (each seed's figures), `failed_pods` (mean number of pods that fit nowhere), `early_failed_pods` (of those,
    the ones that came before the allocation reached 90% of its final value), `scorer`, and `curve`
    (`arrival_pct` 0..arrival*100 in steps of 1 and the mean `allocation_pct` at each).
    """
    seeds = list(seeds)
    if not seeds:
        raise ValueError("no seeds to run")
    if not arrival > 0:
        raise ValueError(f"arrival must be positive, got {arrival}")
    make_scorer(scorer)  # fail on an unknown name before loading anything
    nodes = load_nodes(nodes_csv)
    pods = load_pods(pods_csv)
    # As in the paper, scorers learn the expected pod shapes from the trace itself, before copies are added.
    workload = [p.request for p in pods]
    bar = None
    tick: Callable[[], None] | None = None
    if progress:
        from tqdm import tqdm

        capacity = sum(n.gpus for n in nodes) * 1000
        mean_milli = sum(p.request.total_gpu_milli for p in pods) / len(pods)
        estimate = int(len(seeds) * arrival * capacity / max(mean_milli, 1.0))
        bar = tqdm(total=estimate, desc=f"simulate {scorer}", unit="pod", leave=False)
        tick = lambda: bar.update(1)  # noqa: E731
    per_seed = []
    try:
        for seed in seeds:
            per_seed.append(run_seed(nodes, pods, make_scorer(scorer, workload), seed, arrival, tick))
    finally:
        if bar is not None:
            bar.close()
    curves = np.array([s.pop("curve") for s in per_seed])
    return {
        "scorer": scorer,
        "nodes_csv": str(nodes_csv),
        "pods_csv": str(pods_csv),
        "seeds": seeds,
        "arrival": arrival,
        "allocation_pct": float(np.mean([s["allocation_pct"] for s in per_seed])),
        "failed_pods": float(np.mean([s["failed_pods"] for s in per_seed])),
        "early_failed_pods": float(np.mean([s["early_failed_pods"] for s in per_seed])),
        "per_seed": per_seed,
        "seconds_per_seed": float(np.mean([s["seconds"] for s in per_seed])),
        "curve": {
            "arrival_pct": list(range(curves.shape[1])),
            "allocation_pct": curves.mean(axis=0).tolist(),
        },
    }
