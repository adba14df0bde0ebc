"""Property: any sequence of allocate/release keeps every GPU within 0..1000 used and release is exact."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from extender.core import (
    ClusterState,
    DoesNotFit,
    NodeSpec,
    PlacementError,
    PodRequest,
    Statement,
    make_scorer,
    place,
)

GiB = 1 << 30
NODES = [NodeSpec(f"n{i}", cpu_milli=16_000, memory_bytes=64 * GiB, gpus=g, gpu_product=p)
         for i, (g, p) in enumerate([(1, "T4"), (2, "T4"), (4, "A10"), (8, "H100")])]

requests = st.one_of(
    st.builds(lambda c, g: PodRequest(cpu_milli=c, gpus=g), st.integers(0, 8000), st.integers(0, 4)),
    st.builds(lambda c, m: PodRequest(cpu_milli=c, gpu_milli=m), st.integers(0, 8000), st.integers(1, 999)),
)
ops = st.lists(
    st.tuples(
        st.sampled_from(["allocate", "place", "release", "statement"]),
        st.integers(0, 11),  # pod
        requests,
        st.integers(0, len(NODES) - 1),
        st.lists(st.integers(0, 7), max_size=4),
    ),
    max_size=40,
)


def invariants(state: ClusterState) -> None:
    rows = state.rows()
    free = state.gpu_free[rows]
    assert free.min() >= 0 and free.max() <= 1000
    used = np.zeros_like(state.gpu_free)
    cpu = state.cpu_capacity.copy()
    for alloc in state.allocations():
        row = state.row(alloc.node)
        if alloc.gpu_indices:
            used[row, list(alloc.gpu_indices)] += np.asarray(alloc.gpu_milli, dtype=used.dtype)
        cpu[row] -= alloc.cpu_milli
    capacity = (np.arange(state.gpu_columns)[None, :] < state.gpu_count[:, None]) * 1000
    assert np.array_equal(state.gpu_free, capacity - used)
    assert np.array_equal(state.cpu_free, cpu)
    assert (used <= 1000).all()


@settings(max_examples=150, deadline=None)
@given(ops)
def test_random_allocate_release_keeps_accounting_exact(sequence: list) -> None:
    state = ClusterState(NODES)
    initial = (state.cpu_free.copy(), state.gpu_free.copy(), state.memory_free.copy())
    scorer = make_scorer("infergate")
    for op, pod, request, node_i, indices in sequence:
        key = f"ns/p{pod}"
        node = NODES[node_i].name
        try:
            if op == "allocate":
                given_indices = indices[: request.gpu_slots] if indices else None
                state.allocate(key, request, node, given_indices)
            elif op == "place":
                if key not in state:
                    place(state, key, request, scorer, np.random.default_rng(pod))
            elif op == "release":
                if key in state:
                    before_cpu = state.cpu_free.copy()
                    alloc = state.release(key)
                    row = state.row(alloc.node)
                    assert state.cpu_free[row] - before_cpu[row] == alloc.cpu_milli
            else:
                snap = (state.cpu_free.copy(), state.gpu_free.copy(), state.memory_free.copy())
                stmt = Statement(state)
                try:
                    stmt.allocate(key + "-g0", request, node)
                    stmt.allocate(key + "-g1", request, NODES[(node_i + 1) % len(NODES)].name)
                except DoesNotFit:
                    pass
                stmt.rollback()
                assert all(np.array_equal(a, b) for a, b in zip(snap, (
                    state.cpu_free, state.gpu_free, state.memory_free)))
        except PlacementError:
            pass  # refused operations must leave the state as it was; invariants check that
        invariants(state)
    for alloc in list(state.allocations()):
        state.release(alloc)
    assert np.array_equal(state.cpu_free, initial[0])
    assert np.array_equal(state.gpu_free, initial[1])
    assert np.array_equal(state.memory_free, initial[2])
