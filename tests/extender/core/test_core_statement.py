"""Statements: checkpoint, rollback, commit over allocate/release."""

from __future__ import annotations

import numpy as np
import pytest

from extender.core import ClusterState, DoesNotFit, NodeSpec, PodRequest, Statement, StatementClosed

GiB = 1 << 30


def snapshot(state: ClusterState) -> tuple[list[int], list[int], list[list[int]], dict[str, object]]:
    return (state.cpu_free.tolist(), state.memory_free.tolist(), state.gpu_free.tolist(),
            {a.pod_key: a for a in state.allocations()})


@pytest.fixture
def state() -> ClusterState:
    s = ClusterState([NodeSpec(f"n{i}", cpu_milli=32_000, memory_bytes=128 * GiB, gpus=4) for i in range(2)])
    s.allocate("ns/existing", PodRequest(cpu_milli=1000, gpu_milli=500), "n0")
    return s


def test_rollback_undoes_a_whole_gang(state: ClusterState) -> None:
    before = snapshot(state)
    stmt = Statement(state)
    stmt.allocate("ns/g-0", PodRequest(cpu_milli=4000, gpus=2), "n0")
    stmt.allocate("ns/g-1", PodRequest(cpu_milli=4000, gpus=2), "n1")
    assert state.gpu_used_milli() == 4500
    stmt.rollback()
    assert snapshot(state) == before
    assert not stmt.is_open
    with pytest.raises(StatementClosed):
        stmt.allocate("ns/g-2", PodRequest(gpus=1), "n1")


def test_rollback_to_checkpoint_keeps_earlier_work(state: ClusterState) -> None:
    stmt = Statement(state)
    stmt.allocate("ns/g-0", PodRequest(gpus=2), "n0")
    mark = stmt.checkpoint()
    after_first = snapshot(state)
    stmt.allocate("ns/g-1", PodRequest(gpus=4), "n1")
    stmt.release("ns/existing")
    stmt.rollback(mark)
    assert snapshot(state) == after_first
    assert stmt.is_open
    held = stmt.commit()
    assert [a.pod_key for a in held] == ["ns/g-0"]
    assert state.allocation("ns/g-0") is not None


def test_rollback_restores_released_pods_exactly(state: ClusterState) -> None:
    before = snapshot(state)
    stmt = Statement(state)
    stmt.release("ns/existing")
    stmt.allocate("ns/other", PodRequest(gpus=4), "n0")  # takes the capacity the released pod had
    stmt.rollback()
    assert snapshot(state) == before


def test_commit_keeps_everything_and_closes(state: ClusterState) -> None:
    stmt = Statement(state)
    stmt.allocate("ns/g-0", PodRequest(gpus=1), "n1")
    assert [a.pod_key for a in stmt.commit()] == ["ns/g-0"]
    assert state.allocation("ns/g-0") is not None
    with pytest.raises(StatementClosed):
        stmt.rollback()


def test_context_manager_rolls_back_on_error(state: ClusterState) -> None:
    before = snapshot(state)
    with pytest.raises(DoesNotFit):
        with Statement(state) as stmt:
            stmt.allocate("ns/g-0", PodRequest(gpus=4), "n1")
            stmt.allocate("ns/g-1", PodRequest(gpus=4), "n1")  # no room left: the gang fails
    assert snapshot(state) == before
    with Statement(state) as stmt:
        stmt.allocate("ns/g-0", PodRequest(gpus=4), "n1")
    assert state.allocation("ns/g-0") is not None


def test_idempotent_repeat_inside_a_statement_is_not_undone_twice(state: ClusterState) -> None:
    stmt = Statement(state)
    stmt.allocate("ns/g-0", PodRequest(gpus=1), "n1")
    stmt.allocate("ns/g-0", PodRequest(gpus=1), "n1")
    stmt.rollback()
    assert state.allocation("ns/g-0") is None
    assert np.all(state.gpu_free[state.row("n1"), :4] == 1000)


def test_bad_checkpoint(state: ClusterState) -> None:
    stmt = Statement(state)
    with pytest.raises(ValueError):
        stmt.rollback(5)
