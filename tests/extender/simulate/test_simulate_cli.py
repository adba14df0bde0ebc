"""`infergate simulate` as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infergate.cli import main


def test_json_output_for_several_scorers(tiny_trace: tuple[Path, Path], tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    nodes, pods = tiny_trace
    plot = tmp_path / "curve.png"
    code = main(["simulate", "--nodes", str(nodes), "--pods", str(pods), "--scorer", "infergate,bestfit",
                 "--scorer", "spread", "--seeds", "1-3", "--json", "--plot", str(plot), "--policy", "policies"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["scorer"] == "infergate"
    assert [r["scorer"] for r in out["results"]] == ["infergate", "bestfit", "spread"]
    assert {"allocation_pct", "per_seed", "failed_pods", "early_failed_pods", "scorer", "curve"} <= set(out)
    assert [s["seed"] for s in out["per_seed"]] == [1, 2, 3]
    assert all(0 <= s["early_failed_pods"] <= s["failed_pods"] for r in out["results"] for s in r["per_seed"])
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_table_output(tiny_trace: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    nodes, pods = tiny_trace
    assert main(["simulate", "--nodes", str(nodes), "--pods", str(pods), "--seeds", "5"]) == 0
    out = capsys.readouterr().out
    assert "infergate" in out and "allocation %" in out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--scorer", "bogus"], "unknown scorer bogus"),
        (["--pods", "/nonexistent/pods.csv"], "/nonexistent/pods.csv: no such file"),
    ],
)
def test_errors_exit_non_zero_with_a_message(tiny_trace: tuple[Path, Path], extra: list[str], message: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    nodes, pods = tiny_trace
    argv = ["simulate", "--nodes", str(nodes), "--pods", str(pods), "--seeds", "1", *extra]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_bad_seeds_are_a_usage_error(tiny_trace: tuple[Path, Path]) -> None:
    nodes, pods = tiny_trace
    with pytest.raises(SystemExit) as info:
        main(["simulate", "--nodes", str(nodes), "--pods", str(pods), "--seeds", "9-3"])
    assert info.value.code == 2


def test_malformed_csv_names_the_row(tiny_trace: tuple[Path, Path], tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    nodes, _ = tiny_trace
    bad = tmp_path / "pods.csv"
    bad.write_text("name,cpu_milli,memory_mib,num_gpu,gpu_milli\nok,1,1,1,1000\nbad,1,x,1,1000\n")
    assert main(["simulate", "--nodes", str(nodes), "--pods", str(bad), "--seeds", "1"]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "line 3: memory_mib" in err
