"""The openb experiment on a tiny synthetic trace."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from extender.core import PodRequest, scorer_names
from extender.simulate import TracePod, run, tune_workload


@pytest.mark.parametrize("scorer", scorer_names())
def test_run_reports_the_contract_fields(tiny_trace: tuple[Path, Path], scorer: str) -> None:
    nodes_csv, pods_csv = tiny_trace
    result = run(nodes_csv, pods_csv, scorer, seeds=[1, 2], arrival=1.3)
    assert result["scorer"] == scorer
    assert len(result["per_seed"]) == 2
    assert 0 < result["allocation_pct"] <= 100
    assert result["allocation_pct"] == pytest.approx(np.mean([s["allocation_pct"] for s in result["per_seed"]]))
    assert result["failed_pods"] >= 0
    curve = result["curve"]
    assert curve["arrival_pct"] == list(range(131))
    assert len(curve["allocation_pct"]) == 131
    assert curve["allocation_pct"][-1] == pytest.approx(result["allocation_pct"])
    assert all(a <= b + 1e-9 for a, b in zip(curve["allocation_pct"], curve["allocation_pct"][1:]))
    for seed in result["per_seed"]:
        assert seed["arrived_gpu_pct"] <= 130 + 1e-9


def test_same_seed_same_result(tiny_trace: tuple[Path, Path]) -> None:
    nodes_csv, pods_csv = tiny_trace
    a = run(nodes_csv, pods_csv, "infergate", seeds=[7])
    b = run(nodes_csv, pods_csv, "infergate", seeds=[7])
    assert a["per_seed"][0]["allocation_pct"] == b["per_seed"][0]["allocation_pct"]
    assert a["curve"] == b["curve"]


def test_tune_workload_tops_up_and_trims() -> None:
    pods = [TracePod(f"p{i}", PodRequest(gpus=1)) for i in range(10)]
    rng = np.random.default_rng(0)
    up = tune_workload(pods, 25_000, rng)
    assert len(up) == 25 and {p.name for p in pods} <= {p.name for p in up}
    down = tune_workload(pods, 4_500, np.random.default_rng(0))
    assert len(down) == 4


def test_bad_inputs(tiny_trace: tuple[Path, Path], tmp_path: Path) -> None:
    nodes_csv, pods_csv = tiny_trace
    with pytest.raises(ValueError, match="unknown scorer"):
        run(nodes_csv, pods_csv, "nope", seeds=[1])
    with pytest.raises(ValueError, match="no seeds"):
        run(nodes_csv, pods_csv, "bestfit", seeds=[])
    cpu_only = tmp_path / "cpu.csv"
    cpu_only.write_text("sn,cpu_milli,memory_mib,gpu,model\nc,1000,1024,0,\n")
    with pytest.raises(ValueError, match="no GPUs"):
        run(cpu_only, pods_csv, "bestfit", seeds=[1])
