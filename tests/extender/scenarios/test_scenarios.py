"""Scenario simulation: gangs never partial, inference never evicted for training, and waiting less than
member-by-member placement on the same arrivals."""

from __future__ import annotations

from pathlib import Path

import pytest

from extender.scenarios import compare, load_scenario

SCENARIOS = Path(__file__).resolve().parents[3] / "bench" / "scenarios"


@pytest.mark.parametrize("name", ["deadlock-pairs", "fractional-mix"])
async def test_shipped_scenarios(policy, name):
    report = await compare(load_scenario(SCENARIOS / f"{name}.yaml"), policy)
    ours, baseline = report["results"]
    assert (ours["placer"], baseline["placer"]) == ("infergate", "default")
    assert ours["partial_groups"] == 0
    assert ours["inference_gpus_evicted"] == 0
    assert ours["inference_wait_s_p99"] <= baseline["inference_wait_s_p99"]
    assert ours["gpu_working_pct"] >= baseline["gpu_working_pct"]


async def test_deadlock_is_shown_by_the_baseline(policy):
    ours, baseline = (await compare(load_scenario(SCENARIOS / "deadlock-pairs.yaml"), policy))["results"]
    assert baseline["partial_groups"] > 0 and baseline["groups_placed"] == 0
    assert ours["groups_placed"] > 0


def test_bad_scenario_names_the_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nnodes: [{count: 0}]\nworkloads: []\n")
    with pytest.raises(ValueError, match=r"bad.yaml: nodes.0.count: Input should be greater than or equal to 1"):
        load_scenario(bad)


def test_cli(capsys):
    from infergate.cli import main

    assert main(["simulate", "--scenario", str(SCENARIOS / "deadlock-pairs.yaml"), "--json"]) == 0
    import json

    report = json.loads(capsys.readouterr().out)
    assert [r["placer"] for r in report["results"]] == ["infergate", "default"]
    assert main(["simulate"]) == 2
