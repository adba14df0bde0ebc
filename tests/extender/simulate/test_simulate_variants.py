"""The openb variant generator: each family moves its own measure to the asked level and leaves the rest alone."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from extender.simulate.trace import load_pods
from extender.simulate.variants import (
    Variant,
    generate,
    gpu_milli,
    is_multi,
    is_sharing,
    parse_variant,
    read_rows,
    write_rows,
    write_variant,
)


def _row(i: int, cpu: int, gpus: int, milli: int, spec: str = "") -> dict[str, str]:
    return {"name": f"p{i}", "cpu_milli": str(cpu), "memory_mib": str(1024 * (1 + i % 7)), "num_gpu": str(gpus),
            "gpu_milli": str(milli), "gpu_spec": spec}


def _trace(n: int = 600, seed: int = 0) -> list[dict[str, str]]:
    """A default-like trace: CPU-only pods, shares, single whole GPUs, a few multi-GPU pods."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        kind = rng.random()
        if kind < 0.15:
            rows.append(_row(i, rng.choice([2000, 8000, 32000]), 0, 0))
        elif kind < 0.55:
            rows.append(_row(i, rng.choice([4000, 6000]), 1, rng.choice([100, 250, 460, 500, 810])))
        elif kind < 0.97:
            rows.append(_row(i, rng.choice([8000, 12000]), 1, 1000))
        else:
            rows.append(_row(i, 32000, rng.choice([2, 4, 8]), 1000))
    return rows


def _nodes() -> list[dict[str, str]]:
    return [{"sn": f"n{i}", "cpu_milli": "96000", "memory_mib": "786432", "gpu": "8", "model": m}
            for i, m in enumerate(["G2", "G2", "T4", "V100M32"])]


def _share_of(rows: list[dict[str, str]], pick) -> float:
    gpu = [r for r in rows if int(r["num_gpu"])]
    return sum(gpu_milli(r) for r in gpu if pick(r)) / sum(gpu_milli(r) for r in gpu)


def _shape(row: dict[str, str]) -> tuple[str, ...]:
    return (row["cpu_milli"], row["memory_mib"], row["num_gpu"], row["gpu_milli"])


@pytest.mark.parametrize(("name", "family", "percent", "canonical"), [
    ("gpushare40", "gpushare", 40, "gpushare40"), ("cpu050", "cpu", 50, "cpu050"), ("cpu50", "cpu", 50, "cpu050"),
    ("multigpu50", "multigpu", 50, "multigpu50"), ("gpuspec33", "gpuspec", 33, "gpuspec33"),
    ("cpu250", "cpu", 250, "cpu250"),
])
def test_parse_variant(name: str, family: str, percent: int, canonical: str) -> None:
    variant = parse_variant(name)
    assert variant == Variant(family, percent)
    assert variant.name == canonical


@pytest.mark.parametrize("bad", ["default", "gpushare", "gpushare140", "share40", ""])
def test_parse_variant_rejects(bad: str) -> None:
    with pytest.raises(ValueError, match="variant"):
        parse_variant(bad)


@settings(max_examples=25, deadline=None)
@given(percent=st.integers(20, 90), seed=st.integers(0, 10_000))
def test_gpushare_reaches_its_share_and_keeps_the_rest(percent: int, seed: int) -> None:
    rows = _trace()
    out = generate(rows, f"gpushare{percent}", seed=seed)
    # same number of GPU pods, CPU-only pods untouched, every shape drawn from the trace
    assert sum(int(r["num_gpu"]) > 0 for r in out) == sum(int(r["num_gpu"]) > 0 for r in rows)
    assert Counter(_shape(r) for r in out if r["num_gpu"] == "0") == Counter(
        _shape(r) for r in rows if r["num_gpu"] == "0")
    assert {_shape(r) for r in out} <= {_shape(r) for r in rows}
    # the sharing pods' share of GPU request lands on the level, within one pod (the largest one drawn: an
    # 8-GPU pod moves the share by its whole request)
    gpu = [r for r in out if int(r["num_gpu"])]
    one_pod = max(gpu_milli(r) for r in gpu) / sum(gpu_milli(r) for r in gpu)
    assert _share_of(out, is_sharing) == pytest.approx(percent / 100, abs=one_pod + 1e-9)


def test_gpushare100_has_only_sharing_gpu_pods() -> None:
    out = generate(_trace(), "gpushare100")
    assert all(is_sharing(r) for r in out if int(r["num_gpu"]))


@settings(max_examples=25, deadline=None)
@given(percent=st.integers(10, 60), seed=st.integers(0, 10_000))
def test_multigpu_appends_copies_until_its_share(percent: int, seed: int) -> None:
    rows = _trace()
    out = generate(rows, f"multigpu{percent}", seed=seed)
    assert [_shape(r) for r in out[:len(rows)]] == [_shape(r) for r in rows]  # the trace itself, unchanged
    assert all(is_multi(r) for r in out[len(rows):])
    share = _share_of(out, is_multi)
    assert share >= percent / 100 or share == pytest.approx(_share_of(rows, is_multi))
    # one copy fewer would stay below the level: it stops at the first copy that reaches it
    if len(out) > len(rows):
        shorter = out[:-1]
        assert _share_of(shorter, is_multi) < percent / 100


@settings(max_examples=25, deadline=None)
@given(percent=st.integers(10, 300), seed=st.integers(0, 10_000))
def test_cpu_scales_the_cpu_only_load(percent: int, seed: int) -> None:
    rows = _trace()
    out = generate(rows, f"cpu{percent}", seed=seed, cpu_reference=0.75)
    cpu_load = lambda rs: sum(int(r["cpu_milli"]) for r in rs if r["num_gpu"] == "0")  # noqa: E731
    target = cpu_load(rows) * 0.75 * percent / 100
    assert target - 32000 < cpu_load(out) <= target  # within one pod of the level, never above
    assert Counter(_shape(r) for r in out if r["num_gpu"] != "0") == Counter(
        _shape(r) for r in rows if r["num_gpu"] != "0")


@settings(max_examples=20, deadline=None)
@given(percent=st.integers(0, 30), seed=st.integers(0, 10_000))
def test_gpuspec_from_a_reference_keeps_real_constraints(percent: int, seed: int) -> None:
    rows = _trace()
    gpu_index = [i for i, r in enumerate(rows) if int(r["num_gpu"])]
    reference = [dict(r) for r in rows]
    for i in gpu_index[::3]:
        reference[i]["gpu_spec"] = "T4|V100M32" if i % 2 else "G2"
    out = generate(rows, f"gpuspec{percent}", seed=seed, gpuspec_reference=reference)
    constrained = [i for i, r in enumerate(out) if r["gpu_spec"]]
    assert len(constrained) == round(percent / 100 * len(gpu_index))
    assert all(out[i]["gpu_spec"] == reference[i]["gpu_spec"] for i in constrained)
    assert [_shape(r) for r in out] == [_shape(r) for r in rows]


def test_gpuspec_without_reference_names_a_model_that_can_hold_the_pod() -> None:
    rows = _trace()
    out = generate(rows, "gpuspec25", nodes=_nodes())
    specs = [r["gpu_spec"] for r in out if r["gpu_spec"]]
    assert specs and set(specs) <= {"G2", "T4", "V100M32"}


def test_same_seed_same_variant_other_seed_other_variant() -> None:
    rows = _trace()
    assert generate(rows, "gpushare60", seed=1) == generate(rows, "gpushare60", seed=1)
    assert generate(rows, "gpushare60", seed=1) != generate(rows, "gpushare60", seed=2)


def test_written_variant_loads_as_a_trace(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_rows(_trace(), data / "openb_pod_list_default.csv")
    (data / "openb_node_list_gpu_node.csv").write_text(
        "sn,cpu_milli,memory_mib,gpu,model\n" + "".join(f"{n['sn']},{n['cpu_milli']},{n['memory_mib']},{n['gpu']},"
                                                          f"{n['model']}\n" for n in _nodes()))
    path = write_variant(data, "multigpu30", tmp_path / "out")
    assert path.name == "openb_pod_list_multigpu30.csv"
    pods = load_pods(path)
    assert len(pods) == len(read_rows(path)) >= 600
    assert [p.name for p in pods[:2]] == ["openb-pod-0000", "openb-pod-0001"]
