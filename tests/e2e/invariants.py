"""What must hold in the cluster whatever happened: no GPU given twice, no partial group, nothing lost."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from infergate.workloads import group_identity


def check_invariants(pods: list[dict[str, Any]], nodes: list[dict[str, Any]], created: set[str],
                     sizes: dict[str, int] | None = None) -> list[str]:
    """`sizes`: group key -> size, for groups whose pods do not carry it (PodGroups)."""
    sizes = sizes or {}
    problems: list[str] = []
    capacity = {n["metadata"]["name"]: int(n["status"]["allocatable"].get("nvidia.com/gpu", 0)) for n in nodes}
    whole: dict[str, int] = defaultdict(int)
    shares: dict[tuple[str, str], int] = defaultdict(int)
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    live = set()
    for pod in pods:
        metadata = pod["metadata"]
        key = f"{metadata['namespace']}/{metadata['name']}"
        live.add(key)
        if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            continue
        group = group_identity(metadata, pod["spec"])
        if group is not None:
            groups[group.key].append(pod)
        node = pod["spec"].get("nodeName")
        if not node:
            continue
        for container in pod["spec"]["containers"]:
            limits = container.get("resources", {}).get("limits", {})
            whole[node] += int(limits.get("nvidia.com/gpu", 0))
            milli = int(limits.get("infergate.io/gpu-milli", 0))
            if milli:
                index = metadata.get("annotations", {}).get("infergate.io/gpu-index")
                if index is None:
                    problems.append(f"fractional pod {key} is bound without a GPU index")
                shares[(node, str(index))] += milli
    for node, count in whole.items():
        used_by_shares = len({i for (n, i) in shares if n == node})
        if count + used_by_shares > capacity.get(node, 0):
            problems.append(f"node {node}: {count} whole GPUs and {used_by_shares} shared ones exceed its {capacity.get(node)}")
    for (node, index), milli in shares.items():
        if milli > 1000:
            problems.append(f"node {node} GPU {index}: {milli}m given")
    for group, members in groups.items():
        size = group_identity(members[0]["metadata"], members[0]["spec"]).size or sizes.get(group) or len(members)
        bound = [m for m in members if m["spec"].get("nodeName")]
        if 0 < len(bound) < size:
            pending = [m for m in members if not m["spec"].get("nodeName")]
            # members beyond the group's size (a PodGroup's minCount) need no place of their own
            reserved = sum(1 for m in pending if "infergate.io/reserved-node" in m["metadata"].get("annotations", {}))
            if len(bound) + reserved < size:
                problems.append(f"group {group}: {len(bound)} of {size} members bound and the rest not reserved")
    for key in sorted(created - live):
        problems.append(f"pod {key} was lost")
    return problems
