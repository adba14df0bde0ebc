"""Can a node take a pod? Vectorised over candidate rows, with a reason a person can act on when it can't."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from extender.core.resources import MILLI_PER_GPU, PodRequest

if TYPE_CHECKING:  # the state calls back into this module to check a single allocation
    from extender.core.cluster import ClusterState

__all__ = ["FilterResult", "explain", "filter_nodes", "fit_mask", "format_bytes", "format_cpu"]


def fit_mask(state: ClusterState, request: PodRequest, rows: np.ndarray | None = None) -> np.ndarray:
    """True for each of `rows` (default: every row) whose node can take `request` now."""
    if rows is None:
        rows = np.arange(state.size)
    ok = state.active[rows] & (state.cpu_free[rows] >= request.cpu_milli)
    ok &= state.memory_free[rows] >= request.memory_bytes
    if request.gpus:
        ok &= (state.gpu_free[rows] >= MILLI_PER_GPU).sum(axis=1) >= request.gpus
    elif request.gpu_milli:
        ok &= state.gpu_free[rows].max(axis=1) >= request.gpu_milli
    if request.gpu_products:
        ok &= np.isin(state.product[rows], state.product_ids(request.gpu_products))
    return ok


def format_cpu(milli: int) -> str:
    return f"{milli // 1000} CPUs" if milli % 1000 == 0 else f"{milli}m CPU"


def format_bytes(value: int) -> str:
    for unit, size in (("Ti", 1 << 40), ("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)):
        if value >= size and value % size == 0:
            return f"{value // size}{unit}"
    if value >= 1 << 20:
        return f"{value / (1 << 30):.1f}Gi"
    return f"{value} bytes"


def _reasons(state: ClusterState, request: PodRequest, rows: np.ndarray,
             names: list[str] | None = None) -> list[str | None]:
    """Per row: None when it fits, else every reason it doesn't, prefixed with the node's name.

    The checks are vectorised and each distinct combination of shortfalls is worded once: a big cluster
    repeats a handful of them, so thousands of failing nodes cost little more than a few.
    """
    n = len(rows)
    codes = np.full((n, 5), -1, dtype=np.int64)  # product, GPUs, share, CPU, memory; -1: no problem
    if request.gpu_products:
        bad = ~np.isin(state.product[rows], state.product_ids(request.gpu_products))
        codes[bad, 0] = state.product[rows][bad] + 1  # 0: node without a product
    has_gpus = state.gpu_count[rows] > 0
    free = state.gpu_free[rows]
    if request.gpus:
        whole = (free >= MILLI_PER_GPU).sum(axis=1)
        short = whole < request.gpus
        codes[short, 1] = np.where(has_gpus, whole, -2)[short]
    elif request.gpu_milli:
        largest = free.max(axis=1) if free.shape[1] else np.zeros(n, dtype=np.int64)
        short = largest < request.gpu_milli
        codes[short, 2] = np.where(has_gpus, largest, -2)[short]
    cpu_free = state.cpu_free[rows]
    short = cpu_free < request.cpu_milli
    codes[short, 3] = np.maximum(cpu_free[short], 0)
    memory_free = state.memory_free[rows]
    short = memory_free < request.memory_bytes
    codes[short, 4] = np.maximum(memory_free[short], 0)

    out: list[str | None] = [None] * n
    failing = np.flatnonzero((codes != -1).any(axis=1) | ~state.active[rows])
    if not len(failing):
        return out
    suffixes: dict[tuple[int, ...], str] = {}
    combos = zip(*(codes[failing, j].tolist() for j in range(codes.shape[1])))
    active = state.active[rows[failing]].tolist()
    for i, combo, alive in zip(failing.tolist(), combos, active):
        if not alive:
            out[i] = f"row {int(rows[i])}: no node"
            continue
        suffix = suffixes.get(combo)
        if suffix is None:
            suffix = suffixes[combo] = _wording(state, request, combo)
        name = names[i] if names is not None else state.name_of(int(rows[i]))
        out[i] = f"node {name}: {suffix}"
    return out


def _wording(state: ClusterState, request: PodRequest, combo: tuple[int, ...]) -> str:
    product, whole, largest, cpu_left, memory_left = combo
    parts: list[str] = []
    if product != -1:
        have = state.products[product - 1] if product > 0 else "no GPU product"
        parts.append(f"needs GPU product {' or '.join(sorted(request.gpu_products))}, node has {have}")
    if whole != -1:
        noun = "GPU" if request.gpus == 1 else "GPUs"
        parts.append(f"needs {request.gpus} free {noun}, {f'has {whole}' if whole >= 0 else 'has no GPUs'}")
    if largest != -1:
        detail = f"the most free on one GPU is {largest}m" if largest >= 0 else "node has no GPUs"
        parts.append(f"needs {request.gpu_milli}m of one GPU, {detail}")
    if cpu_left != -1:
        parts.append(f"needs {format_cpu(request.cpu_milli)}, has {format_cpu(cpu_left)} free")
    if memory_left != -1:
        parts.append(f"needs {format_bytes(request.memory_bytes)} memory, has {format_bytes(memory_left)} free")
    return "; ".join(parts) or "does not fit"


def explain(state: ClusterState, request: PodRequest, row: int) -> str | None:
    """None when the node at `row` can take `request`; otherwise every reason it can't, in one line."""
    state.name_of(row)  # unknown rows raise
    return _reasons(state, request, np.array([row]))[0]


@dataclass
class FilterResult:
    """Nodes that can take the pod, and why each of the others can't (keyed by node name)."""

    fits: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def filter_nodes(state: ClusterState, request: PodRequest, names: Iterable[str] | None = None) -> FilterResult:
    """The extender's filter: one vectorised fit check, reasons only for the nodes that fail."""
    result = FilterResult()
    if names is None:
        names = state.node_names()
    known: list[str] = []
    for name in names:
        if state.has_node(name):
            known.append(name)
        else:
            result.failed[name] = f"node {name}: not known to the extender (no such node, or not synced yet)"
    if not known:
        return result
    rows = state.rows(known)
    ok = fit_mask(state, request, rows)
    result.fits = [name for name, fits in zip(known, ok.tolist()) if fits]
    failing = np.flatnonzero(~ok)
    if len(failing):
        failing_names = [known[i] for i in failing.tolist()]
        for i, reason in zip(failing.tolist(), _reasons(state, request, rows[failing], failing_names)):
            result.failed[known[i]] = reason or f"node {known[i]}: does not fit"
    return result
