"""What the GPU map shows, built from the extender's own state: pure functions of a ClusterState, a ClusterView
and a GangBook to JSON-able dicts. No I/O, no clock of its own (callers pass `now`).

Two levels, so the page never holds the whole cluster at once: `summary` gives the figures, one aggregate per
(topology domain, GPU product) group, the pending GPU pods and the gangs being placed; `group_detail` gives the
nodes of one group, a page at a time, with every GPU and who holds it.

Only names leave here: pod keys (namespace/name), node names and labels used for grouping, never a pod's spec,
env or anything read from a Secret.
"""

from __future__ import annotations

import hashlib
from collections import Counter, OrderedDict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from extender.core import MILLI_PER_GPU, ClusterState, PodRequest, filter_nodes, fit_mask
from extender.gangs import SLOT_PREFIX, GangBook
from extender.view import ClusterView

NO_DOMAIN = "(no topology label)"
NO_PRODUCT = "(no GPU product label)"
MAX_PENDING = 200  # pending pods listed (the count is always exact)
MAX_REASON_SHAPES = 16  # distinct request shapes a summary explains on the spot
DEFAULT_PAGE = 100  # nodes per drill-down page: at 8 GPUs each, well under a thousand GPU cells


# --------------------------------------------------------------------------------------------------- figures
@dataclass(frozen=True)
class Figures:
    """Cluster-wide GPU accounting, in milli-GPU."""

    nodes: int
    gpu_nodes: int
    gpus: int
    capacity: int
    allocated: int  # held by pods
    reserved: int  # held for gangs not yet bound
    stranded: int  # free, but on GPUs partly taken: no whole-GPU pod can use it
    free_gpus: int  # GPUs with nothing on them

    @property
    def free(self) -> int:
        return self.capacity - self.allocated - self.reserved

    @property
    def fragmentation(self) -> float:
        """The share of free capacity that is stranded (0 when nothing is free)."""
        return self.stranded / self.free if self.free else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "nodes": self.nodes, "gpuNodes": self.gpu_nodes, "gpus": self.gpus, "freeGpus": self.free_gpus,
            "capacityMilli": self.capacity, "allocatedMilli": self.allocated, "reservedMilli": self.reserved,
            "freeMilli": self.free, "strandedMilli": self.stranded,
            "allocation": round((self.allocated + self.reserved) / self.capacity, 4) if self.capacity else 0.0,
            "fragmentation": round(self.fragmentation, 4),
        }


@dataclass(frozen=True)
class _PerRow:
    """Per node row: GPUs, wholly free GPUs, free milli, and stranded milli (free on partly taken GPUs)."""

    gpus: np.ndarray
    free_gpus: np.ndarray
    free_milli: np.ndarray
    stranded: np.ndarray

    @classmethod
    def of(cls, state: ClusterState, rows: np.ndarray) -> _PerRow:
        free = state.gpu_free[rows]
        real = np.arange(free.shape[1])[None, :] < state.gpu_count[rows][:, None]
        partly = real & (free > 0) & (free < MILLI_PER_GPU)
        return cls(real.sum(axis=1), (real & (free >= MILLI_PER_GPU)).sum(axis=1),
                   np.where(real, free, 0).sum(axis=1), np.where(partly, free, 0).sum(axis=1))


def figures(state: ClusterState, reserved_milli: int = 0) -> Figures:
    rows = state.rows()
    per_row = _PerRow.of(state, rows)
    gpus = int(per_row.gpus.sum())
    capacity = gpus * MILLI_PER_GPU
    return Figures(
        nodes=len(rows), gpu_nodes=int((per_row.gpus > 0).sum()), gpus=gpus, capacity=capacity,
        allocated=capacity - int(per_row.free_milli.sum()) - reserved_milli, reserved=reserved_milli,
        stranded=int(per_row.stranded.sum()), free_gpus=int(per_row.free_gpus.sum()),
    )


class History:
    """The last figures, one sample per `every` seconds at most, for the page's small chart."""

    def __init__(self, size: int = 360, every: float = 10.0):
        self.samples: deque[dict[str, float]] = deque(maxlen=size)
        self.every = every

    def record(self, now: float, figures: Figures) -> None:
        if self.samples and now - self.samples[-1]["t"] < self.every:
            return
        summary = figures.as_dict()
        self.samples.append({"t": round(now, 1), "allocation": summary["allocation"],
                             "fragmentation": summary["fragmentation"],
                             "reserved": round(figures.reserved / figures.capacity, 4) if figures.capacity else 0.0})


# ---------------------------------------------------------------------------------------------------- groups
def domain_of(labels: Mapping[str, str], topology_keys: Sequence[str]) -> str:
    """Where a node sits, largest domain first ("zone-a / rack-07"). The finest key (an NVLink clique, often a
    single node) is left to the node's own line when there are coarser ones."""
    keys = list(topology_keys[1:] if len(topology_keys) > 1 else topology_keys)
    values = [labels[k] for k in reversed(keys) if labels.get(k)]
    return " / ".join(values) if values else NO_DOMAIN


def group_id(domain: str, product: str) -> str:
    return hashlib.sha1(f"{domain}\0{product}".encode()).hexdigest()[:12]


@dataclass
class _Group:
    id: str
    domain: str
    product: str
    rows: list[int]


class GroupIndex:
    """The (domain, product) group of every node row. Grouping reads every node's labels, the slowest part of a
    summary at thousands of nodes, so it is kept until the nodes or their GPU products change, and redone at
    least every `ttl` seconds for label edits."""

    def __init__(self, ttl: float = 30.0):
        self.ttl = ttl
        self.groups: list[_Group] = []
        self.by_id: dict[str, _Group] = {}
        self.row_group = np.empty(0, dtype=np.int64)
        self._fingerprint: tuple[Any, ...] | None = None
        self._built = float("-inf")

    def of(self, state: ClusterState, topology_keys: Sequence[str], now: float) -> GroupIndex:
        fingerprint = (state.instance_id, tuple(topology_keys), hash(state.active.tobytes()),
                       hash(state.product.tobytes()))
        if fingerprint != self._fingerprint or now - self._built > self.ttl:
            self._build(state, topology_keys)
            self._fingerprint, self._built = fingerprint, now
        return self

    def _build(self, state: ClusterState, topology_keys: Sequence[str]) -> None:
        self.groups, self.by_id = [], {}
        self.row_group = np.full(state.capacity_rows, -1, dtype=np.int64)
        position: dict[str, int] = {}
        for name in state.node_names():
            row = state.row(name)
            domain = domain_of(state.labels(name), topology_keys)
            product = state.gpu_product(row) or NO_PRODUCT
            gid = group_id(domain, product)
            if gid not in position:
                position[gid] = len(self.groups)
                self.by_id[gid] = _Group(gid, domain, product, [])
                self.groups.append(self.by_id[gid])
            self.by_id[gid].rows.append(row)
            self.row_group[row] = position[gid]


def _aggregates(state: ClusterState, index: GroupIndex, book: GangBook) -> list[dict[str, Any]]:
    """One line per group, every figure summed over its nodes in one vectorised pass."""
    rows = state.rows()
    which = index.row_group[rows]
    count = len(index.groups)
    per_row = _PerRow.of(state, rows)
    reserved_on_row = np.zeros(state.capacity_rows, dtype=np.int64)
    for reservation in book.reservations.values():
        for slot in reservation.slots:
            if not slot.bound and state.has_node(slot.node):
                reserved_on_row[state.row(slot.node)] += slot.request.total_gpu_milli

    def total(values: np.ndarray) -> list[int]:
        return np.bincount(which, weights=values, minlength=count).astype(np.int64).tolist()

    gpus, free_gpus = total(per_row.gpus), total(per_row.free_gpus)
    free_milli, stranded = total(per_row.free_milli), total(per_row.stranded)
    reserved = total(reserved_on_row[rows])
    lines = []
    for i, group in enumerate(index.groups):
        capacity = gpus[i] * MILLI_PER_GPU
        lines.append({
            "id": group.id, "domain": group.domain, "product": group.product, "nodes": len(group.rows),
            "gpus": gpus[i], "freeGpus": free_gpus[i], "capacityMilli": capacity,
            "allocatedMilli": capacity - free_milli[i] - reserved[i], "reservedMilli": reserved[i],
            "strandedMilli": stranded[i],
        })
    return lines


# --------------------------------------------------------------------------------------------------- pending
class FilterReasons:
    """Why the extender last refused each pod, as its filter answered: kept per pod, the oldest forgotten first.
    The server records every filter answer that placed nowhere and forgets a pod once it fits somewhere."""

    def __init__(self, size: int = 10_000):
        self.size = size
        self._by_pod: OrderedDict[str, str] = OrderedDict()

    def record(self, pod: str, candidates: int, fits: Sequence[str], failed: Mapping[str, str]) -> None:
        if fits:
            self._by_pod.pop(pod, None)
        else:
            self.note(pod, summarize(candidates, failed))

    def note(self, pod: str, reason: str) -> None:
        self._by_pod.pop(pod, None)
        self._by_pod[pod] = reason
        while len(self._by_pod) > self.size:
            self._by_pod.popitem(last=False)

    def get(self, pod: str) -> str | None:
        return self._by_pod.get(pod)


def summarize(candidates: int, failed: Mapping[str, str], top: int = 3) -> str:
    """kube-scheduler's way: "0/40 nodes fit: 32× has 0 of 8 GPUs free; 8× GPU product A100 is not wanted"."""
    bodies: Counter[str] = Counter()
    for name, reason in failed.items():
        prefix = f"node {name}: "
        bodies[reason[len(prefix):] if reason.startswith(prefix) else reason] += 1
    if not bodies:
        return f"0/{candidates} nodes fit"
    parts = [f"{count}× {body}" if count > 1 else body for body, count in bodies.most_common(top)]
    more = len(bodies) - top
    return f"0/{candidates} nodes fit: " + "; ".join(parts) + (f"; and {more} other reasons" if more > 0 else "")


def _pending(view: ClusterView, book: GangBook, reasons: FilterReasons | None) -> tuple[int, list[dict[str, Any]]]:
    state = view.state
    explained: dict[PodRequest, str] = {}
    listed: list[dict[str, Any]] = []
    count = 0
    for key, facts in view.facts.items():
        request = view.requests.get(key)
        if facts.node is not None or facts.terminal or request is None or not request.wants_gpu:
            continue
        count += 1
        if len(listed) >= MAX_PENDING:
            continue
        gang = facts.group.key if facts.in_gang and facts.group else None
        reason = reasons.get(key) if reasons else None
        if reason is None and gang and gang in book.reservations:
            slot = book.reservations[gang].slot_of(key)
            reason = f"gang {gang}: reserved on node {slot.node}, waiting to be bound" if slot else \
                f"gang {gang}: reserved, waiting for this member to reach the scheduler"
        if reason is None and gang:
            reason = f"gang {gang}: not planned yet (its members have not reached the extender)"
        if reason is None:
            if request not in explained and len(explained) < MAX_REASON_SHAPES:
                explained[request] = _explain(state, request)
            reason = explained.get(request, "not examined (too many different requests pending)")
        listed.append({"pod": key, "class": facts.workload_class, "request": request.describe_gpu(),
                       "gang": gang, "reason": reason})
    return count, listed


def _explain(state: ClusterState, request: PodRequest) -> str:
    """What the extender's filter would answer now, for a pod it has not been asked about."""
    fits = int(fit_mask(state, request, state.rows()).sum())
    if fits:
        return f"fits {fits} of {len(state)} nodes now; waiting for the scheduler"
    return summarize(len(state), filter_nodes(state, request).failed)


def _gangs(book: GangBook, now: float) -> list[dict[str, Any]]:
    out = []
    for group, reservation in sorted(book.reservations.items()):
        age = now - reservation.created
        out.append({
            "group": group, "domain": reservation.domain, "members": len(reservation.slots),
            "bound": sum(s.bound for s in reservation.slots),
            "claimed": sum(s.pod is not None for s in reservation.slots),
            "ageSeconds": round(age, 1), "expiresInSeconds": round(max(0.0, book.ttl_seconds - age), 1),
            "nodes": sorted({s.node for s in reservation.slots}),
        })
    return out


# ---------------------------------------------------------------------------------------------------- public
def summary(view: ClusterView, book: GangBook, topology_keys: Sequence[str], *, now: float,
            reasons: FilterReasons | None = None, history: History | None = None,
            index: GroupIndex | None = None) -> dict[str, Any]:
    """The top level of the map: figures, groups (aggregated), pending GPU pods, gangs, recent history."""
    state = view.state
    totals = figures(state, book.reserved_milli())
    groups = _aggregates(state, (index or GroupIndex()).of(state, topology_keys, now), book)
    groups.sort(key=lambda g: (g["domain"], g["product"]))
    pending_count, pending = _pending(view, book, reasons)
    return {
        "synced": view.synced,
        "topologyKeys": list(topology_keys),
        "totals": totals.as_dict(),
        "groups": groups,
        "pendingCount": pending_count,
        "pending": pending,
        "gangs": _gangs(book, now),
        "history": list(history.samples) if history else [],
    }


def _holders(state: ClusterState, view: ClusterView, name: str, gpus: int) -> list[list[dict[str, Any]]]:
    on_gpu: list[list[dict[str, Any]]] = [[] for _ in range(gpus)]
    for alloc in state.pods_on(name):
        whole = alloc.request.gpus > 0
        for index, milli in zip(alloc.gpu_indices, alloc.gpu_milli):
            if index >= gpus:
                continue
            if alloc.pod_key.startswith(SLOT_PREFIX):
                group = alloc.pod_key[len(SLOT_PREFIX):].rsplit("#", 1)[0]
                on_gpu[index].append({"gang": group, "milli": milli, "kind": "reserved"})
            else:
                facts = view.facts.get(alloc.pod_key)
                holder: dict[str, Any] = {"pod": alloc.pod_key, "milli": milli, "kind": "whole" if whole else "share"}
                if facts is not None:
                    holder["class"] = facts.workload_class
                    if facts.in_gang and facts.group:
                        holder["gang"] = facts.group.key
                on_gpu[index].append(holder)
    return on_gpu


def gpu_state(free: int, holders: list[dict[str, Any]]) -> str:
    """free, whole, fractional or reserved: what the cell of one GPU shows."""
    if any(h["kind"] == "reserved" for h in holders):
        return "reserved"
    if any(h["kind"] == "whole" for h in holders):
        return "whole"
    if holders or free < MILLI_PER_GPU:
        return "fractional"
    return "free"


def group_detail(view: ClusterView, topology_keys: Sequence[str], gid: str, *, now: float, offset: int = 0,
                 limit: int = DEFAULT_PAGE, index: GroupIndex | None = None) -> dict[str, Any] | None:
    """The nodes of one group, `limit` from `offset` (by name), each GPU with its state and holders; None when
    no group has that id."""
    state = view.state
    group = (index or GroupIndex()).of(state, topology_keys, now).by_id.get(gid)
    if group is None:
        return None
    names = sorted(state.name_of(r) for r in group.rows if state.active[r])
    page = names[max(0, offset): max(0, offset) + max(1, limit)]
    finest = topology_keys[0] if len(topology_keys) > 1 else None
    nodes = []
    for name in page:
        row = state.row(name)
        count = int(state.gpu_count[row])
        free = state.gpu_free[row, :count].tolist()
        holders = _holders(state, view, name, count)
        nodes.append({
            "name": name,
            "clique": state.labels(name).get(finest) if finest else None,
            "gpus": [{"index": i, "freeMilli": int(free[i]), "state": gpu_state(int(free[i]), holders[i]),
                      "holders": holders[i]} for i in range(count)],
        })
    return {"id": gid, "domain": group.domain, "product": group.product, "nodes": len(names),
            "offset": offset, "limit": limit, "page": nodes}
