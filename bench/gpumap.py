"""The GPU map's data at scale: how long /api/v1/cluster (the summary) and one group's drill-down take on the
event loop, against the extender's own filter of one pod over every node, measured in the same run.

    .venv/bin/python bench/gpumap.py [--nodes 5000] [--pods 50000] [--repeat 20]

The cluster is bench/extender_cluster.py's (racks of 20 across three zones, H100/A100/L40S, 5% of pods
pending). Prints the median milliseconds and the response sizes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.extender_cluster import generate  # noqa: E402
from extender.core import filter_nodes, make_scorer  # noqa: E402
from extender.gangs import GangBook  # noqa: E402
from extender.gpumap import GroupIndex, group_detail, summary  # noqa: E402
from extender.podspec import pod_request  # noqa: E402
from extender.view import ClusterView  # noqa: E402

KEYS = ["nvidia.com/gpu.clique", "infergate.io/rack", "topology.kubernetes.io/zone"]


def median_ms(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--pods", type=int, default=50000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    cluster = generate(args.nodes, args.pods)
    view = ClusterView()
    view.replace_all(cluster.nodes, cluster.pods)
    book = GangBook(view.state, make_scorer("infergate"), KEYS)
    index = GroupIndex()
    data = summary(view, book, KEYS, now=0.0, index=index)
    group = max(data["groups"], key=lambda g: g["nodes"])["id"]
    request = pod_request(cluster.pending[0])

    rows = {
        "filter of one pod over every node (baseline)": (median_ms(lambda: filter_nodes(view.state, request), args.repeat), ""),
        "summary, grouping cached": (median_ms(lambda: summary(view, book, KEYS, now=0.0, index=index), args.repeat),
                                     f"{len(json.dumps(data)) / 1e3:.0f} kB, {len(data['groups'])} groups"),
        "summary, grouping rebuilt": (median_ms(lambda: summary(view, book, KEYS, now=0.0), args.repeat), ""),
        "one group's nodes (drill-down)": (median_ms(lambda: group_detail(view, KEYS, group, now=0.0, index=index), args.repeat),
                                           f"{len(json.dumps(group_detail(view, KEYS, group, now=0.0, index=index))) / 1e3:.0f} kB"),
    }
    print(f"{args.nodes} nodes, {args.pods} pods ({len(cluster.pending)} pending), median of {args.repeat}:")
    print("| what | ms | response |\n| --- | --- | --- |")
    for what, (ms, size) in rows.items():
        print(f"| {what} | {ms:.1f} | {size} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
