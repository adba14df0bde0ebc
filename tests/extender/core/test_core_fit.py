"""Fit checks and their reasons, table-driven."""

from __future__ import annotations

import numpy as np
import pytest

from extender.core import ClusterState, NodeSpec, PodRequest, explain, filter_nodes, fit_mask

GiB = 1 << 30


@pytest.fixture
def state() -> ClusterState:
    s = ClusterState([
        NodeSpec("a10", cpu_milli=16_000, memory_bytes=64 * GiB, gpus=4, gpu_product="A10"),
        NodeSpec("h100", cpu_milli=64_000, memory_bytes=512 * GiB, gpus=8, gpu_product="H100"),
        NodeSpec("cpu", cpu_milli=32_000, memory_bytes=128 * GiB),
    ])
    s.allocate("ns/x", PodRequest(gpus=2), "a10")  # a10: 2 whole GPUs left
    s.allocate("ns/y", PodRequest(gpu_milli=700), "a10")  # a10: GPU 2 has 300m left
    return s


CASES = [
    # request, node, reason (None: fits)
    (PodRequest(gpus=1), "a10", None),
    (PodRequest(gpus=4), "a10", "node a10: needs 4 free GPUs, has 1"),
    (PodRequest(gpus=1), "cpu", "node cpu: needs 1 free GPU, has no GPUs"),
    (PodRequest(gpu_milli=300), "a10", None),
    (PodRequest(gpu_milli=500), "h100", None),
    (PodRequest(gpus=1, gpu_products=frozenset({"H100"})), "a10", "node a10: needs GPU product H100, node has A10"),
    (PodRequest(gpus=1, gpu_products=frozenset({"H100", "A10"})), "a10", None),
    (PodRequest(cpu_milli=20_000), "a10", "node a10: needs 20 CPUs, has 16 CPUs free"),
    (PodRequest(cpu_milli=1500), "a10", None),
    (PodRequest(memory_bytes=100 * GiB), "a10", "node a10: needs 100Gi memory, has 64Gi free"),
    (PodRequest(cpu_milli=1000), "cpu", None),
    (PodRequest(gpu_milli=100, gpu_products=frozenset({"T4"})), "cpu",
     "node cpu: needs GPU product T4, node has no GPU product; needs 100m of one GPU, node has no GPUs"),
]


@pytest.mark.parametrize(("request_", "node", "reason"), CASES)
def test_fit_and_reason(state: ClusterState, request_: PodRequest, node: str, reason: str | None) -> None:
    row = state.row(node)
    assert explain(state, request_, row) == reason
    assert bool(fit_mask(state, request_, np.array([row]))[0]) == (reason is None)


def test_fractional_reason_names_the_largest_share(state: ClusterState) -> None:
    state.allocate("ns/z", PodRequest(gpus=1), "a10")  # the last whole GPU
    reason = explain(state, PodRequest(gpu_milli=400), state.row("a10"))
    assert reason == "node a10: needs 400m of one GPU, the most free on one GPU is 300m"


def test_fit_mask_matches_explain_on_every_row(state: ClusterState) -> None:
    rows = np.arange(state.size)
    for request, _, _ in CASES:
        mask = fit_mask(state, request, rows)
        for row, ok in zip(rows, mask):
            assert ok == (explain(state, request, int(row)) is None)


def test_filter_nodes_reports_unknown_and_failed(state: ClusterState) -> None:
    result = filter_nodes(state, PodRequest(gpus=2), ["a10", "h100", "ghost"])
    assert result.fits == ["h100"]
    assert result.failed["a10"] == "node a10: needs 2 free GPUs, has 1"
    assert "ghost" in result.failed["ghost"] and "not known" in result.failed["ghost"]


def test_removed_nodes_never_fit(state: ClusterState) -> None:
    row = state.row("h100")
    state.remove_node("h100")
    assert not fit_mask(state, PodRequest(), np.array([row]))[0]
