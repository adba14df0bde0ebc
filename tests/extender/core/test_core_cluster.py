"""Cluster state: nodes, accounting, idempotence, growth."""

from __future__ import annotations

import numpy as np
import pytest

from extender.core import (
    AlreadyAllocated,
    ClusterState,
    DoesNotFit,
    NodeSpec,
    PodRequest,
    UnknownNode,
    UnknownPod,
)

GiB = 1 << 30


def node(name: str, gpus: int = 8, product: str | None = "A100", cpu: int = 64_000, mem: int = 256 * GiB) -> NodeSpec:
    return NodeSpec(name=name, cpu_milli=cpu, memory_bytes=mem, gpus=gpus, gpu_product=product if gpus else None)


def test_allocate_and_release_restore_exact_state() -> None:
    state = ClusterState([node("n1"), node("n2", gpus=2)])
    before = (state.cpu_free.copy(), state.memory_free.copy(), state.gpu_free.copy())
    a = state.allocate("ns/a", PodRequest(cpu_milli=4000, memory_bytes=8 * GiB, gpus=2), "n1")
    b = state.allocate("ns/b", PodRequest(cpu_milli=1000, gpu_milli=300), "n1")
    assert a.gpu_indices == (0, 1) and a.gpu_milli == (1000, 1000)
    assert b.gpu_indices == (2,) and b.gpu_milli == (300,)
    assert state.gpu_used_milli() == 2300
    assert state.cpu_free[state.row("n1")] == 64_000 - 5000
    state.release(b)
    state.release("ns/a")
    assert np.array_equal(state.cpu_free, before[0])
    assert np.array_equal(state.memory_free, before[1])
    assert np.array_equal(state.gpu_free, before[2])
    assert state.pod_count == 0


def test_allocating_the_same_pod_twice_is_idempotent_never_double_counted() -> None:
    state = ClusterState([node("n1")])
    req = PodRequest(cpu_milli=1000, gpus=1)
    first = state.allocate("ns/a", req, "n1")
    again = state.allocate("ns/a", req, "n1")
    assert again is first
    assert state.gpu_used_milli() == 1000
    with pytest.raises(AlreadyAllocated, match="ns/a"):
        state.allocate("ns/a", PodRequest(cpu_milli=1000, gpus=2), "n1")
    state.add_node(node("n2"))
    with pytest.raises(AlreadyAllocated):
        state.allocate("ns/a", req, "n2")
    with pytest.raises(AlreadyAllocated):
        state.allocate("ns/a", req, "n1", gpu_indices=[5])
    assert state.gpu_used_milli() == 1000


def test_release_of_unknown_or_stale_allocation_fails() -> None:
    state = ClusterState([node("n1")])
    with pytest.raises(UnknownPod):
        state.release("ns/nope")
    a = state.allocate("ns/a", PodRequest(gpus=1), "n1")
    state.release(a)
    with pytest.raises(UnknownPod):
        state.release(a)
    b = state.allocate("ns/a", PodRequest(gpus=2), "n1")
    with pytest.raises(UnknownPod):
        state.release(a)  # a record of an earlier allocation of the same pod
    state.release(b)


def test_does_not_fit_carries_the_reason() -> None:
    state = ClusterState([node("n1", gpus=2)])
    state.allocate("ns/a", PodRequest(gpus=1), "n1")
    with pytest.raises(DoesNotFit, match="node n1: needs 2 free GPUs, has 1"):
        state.allocate("ns/b", PodRequest(gpus=2), "n1")
    with pytest.raises(UnknownNode, match="node nx: unknown node"):
        state.allocate("ns/b", PodRequest(gpus=1), "nx")


def test_explicit_gpu_indices_are_checked() -> None:
    state = ClusterState([node("n1", gpus=4)])
    state.allocate("ns/a", PodRequest(gpu_milli=600), "n1", gpu_indices=[3])
    with pytest.raises(DoesNotFit, match="GPU 3 has 400m free"):
        state.allocate("ns/b", PodRequest(gpu_milli=500), "n1", gpu_indices=[3])
    with pytest.raises(DoesNotFit, match="no GPU index 7"):
        state.allocate("ns/b", PodRequest(gpu_milli=500), "n1", gpu_indices=[7])
    with pytest.raises(DoesNotFit, match="repeat"):
        state.allocate("ns/b", PodRequest(gpus=2), "n1", gpu_indices=[0, 0])
    alloc = state.allocate("ns/b", PodRequest(gpu_milli=400), "n1", gpu_indices=[3])
    assert state.gpu_free[state.row("n1"), 3] == 0
    assert alloc.gpu_indices == (3,)


def test_default_fractional_choice_is_the_tightest_gpu() -> None:
    state = ClusterState([node("n1", gpus=4)])
    state.allocate("ns/a", PodRequest(gpu_milli=200), "n1", gpu_indices=[0])  # 800 free
    state.allocate("ns/b", PodRequest(gpu_milli=600), "n1", gpu_indices=[2])  # 400 free
    state.allocate("ns/c", PodRequest(gpu_milli=700), "n1", gpu_indices=[3])  # 300 free
    alloc = state.allocate("ns/d", PodRequest(gpu_milli=350), "n1")
    assert alloc.gpu_indices == (2,)  # 400 free: tightest that still fits


def test_nodes_grow_shrink_and_rows_are_reused() -> None:
    state = ClusterState()
    for i in range(200):
        state.add_node(node(f"n{i}", gpus=i % 9))
    assert len(state) == 200 and state.capacity_rows >= 200
    state.add_node(node("big", gpus=16))  # wider than 8 columns
    assert state.gpu_columns >= 16
    assert state.gpu_capacity_milli() == sum(i % 9 for i in range(200)) * 1000 + 16_000
    row = state.row("n5")
    alloc = state.allocate("ns/a", PodRequest(gpus=2), "n5")
    dropped = state.remove_node("n5")
    assert dropped == [alloc] and "ns/a" not in state
    assert not state.has_node("n5") and not state.active[row]
    state.add_node(node("fresh", gpus=1))
    assert state.row("fresh") == row  # the freed row is reused
    assert state.gpu_free[row].tolist()[:2] == [1000, 0]


def test_updating_a_node_keeps_its_pods() -> None:
    state = ClusterState([node("n1", gpus=4, cpu=8000)])
    state.allocate("ns/a", PodRequest(cpu_milli=2000, gpus=1), "n1", gpu_indices=[1])
    state.add_node(node("n1", gpus=8, cpu=16_000, product="H100"))
    row = state.row("n1")
    assert state.cpu_free[row] == 14_000
    assert state.gpu_free[row, :8].tolist() == [1000, 0] + [1000] * 6
    assert state.gpu_product(row) == "H100"



def test_a_node_that_shrinks_counts_its_pods_on_the_gpus_it_still_has() -> None:
    """issue 12 (4): allocatable 8 -> 6 while pods hold GPUs 6 and 7: the new count applies, and those pods are
    counted on the least used GPUs left, so no GPU index beyond the node's count is ever held or handed out."""
    state = ClusterState([node("n1", gpus=8)])
    state.allocate("ns/low", PodRequest(gpus=2), "n1", gpu_indices=[0, 1])
    state.allocate("ns/high", PodRequest(gpus=2), "n1", gpu_indices=[6, 7])
    state.allocate("ns/share", PodRequest(gpu_milli=500), "n1", gpu_indices=[5])
    state.add_node(node("n1", gpus=6))
    row = state.row("n1")
    assert state.gpu_count[row] == 6
    assert all(i < 6 for alloc in state.pods_on("n1") for i in alloc.gpu_indices)
    assert state.gpu_used_milli() == 4500 and state.gpu_free[row, 6:].sum() == 0
    assert state.default_gpu_indices(row, PodRequest(gpus=2)) is None or all(i < 6 for i in state.default_gpu_indices(row, PodRequest(gpus=2)))
    state.release("ns/high")
    assert state.gpu_used_milli() == 2500 and (state.gpu_free[row, :6] >= 0).all()
    state.add_node(node("n1", gpus=1))  # smaller than one pod's GPUs: counted on what exists, the node full
    assert state.gpu_free[row, 0] <= 0


def test_force_records_overcommit_reported_by_the_api_server() -> None:
    state = ClusterState([node("n1", gpus=1, cpu=1000)])
    state.allocate("ns/a", PodRequest(cpu_milli=1000, gpus=1), "n1")
    state.allocate("ns/b", PodRequest(cpu_milli=500, gpus=1), "n1", gpu_indices=[0], force=True)
    assert state.cpu_free[state.row("n1")] == -500
    state.release("ns/b")
    assert state.cpu_free[state.row("n1")] == 0


def test_versions_change_on_every_change() -> None:
    state = ClusterState([node("n1"), node("n2")])
    v = state.version.copy()
    state.allocate("ns/a", PodRequest(gpus=1), "n1")
    r1, r2 = state.row("n1"), state.row("n2")
    assert state.version[r1] != v[r1] and state.version[r2] == v[r2]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"gpus": 1, "gpu_milli": 500}, "not both"),
        ({"gpu_milli": 1000}, "below 1000"),
        ({"cpu_milli": -1}, "non-negative"),
    ],
)
def test_bad_requests_are_rejected(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PodRequest(**kwargs)


def test_from_per_gpu_normalises_the_openb_shape() -> None:
    assert PodRequest.from_per_gpu(cpu_milli=1, memory_bytes=0, num_gpu=2, milli_per_gpu=1000).gpus == 2
    assert PodRequest.from_per_gpu(cpu_milli=1, memory_bytes=0, num_gpu=1, milli_per_gpu=460).gpu_milli == 460
    assert not PodRequest.from_per_gpu(cpu_milli=1, memory_bytes=0, num_gpu=0, milli_per_gpu=0).wants_gpu
    with pytest.raises(ValueError, match="one GPU"):
        PodRequest.from_per_gpu(cpu_milli=1, memory_bytes=0, num_gpu=2, milli_per_gpu=500)


def test_a_pod_reported_on_a_node_with_fewer_gpus_than_it_holds_fills_the_node() -> None:
    state = ClusterState([node("n1", gpus=4)])
    state.allocate("ns/big", PodRequest(gpus=8), "n1", force=True)
    row = state.row("n1")
    assert state.gpu_free[row, :4].tolist() == [0, 0, 0, 0]
    state.release("ns/big")
    assert state.gpu_free[row, :4].tolist() == [1000] * 4
