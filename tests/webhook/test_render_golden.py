"""`infergate render` of every sample matches its golden file. Regenerate with UPDATE_GOLDEN=1."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from infergate.cli import main
from tests.conftest import SAMPLES

GOLDEN = Path(__file__).parent / "golden"
SAMPLE_FILES = sorted(SAMPLES.glob("*.yaml"))


@pytest.mark.parametrize("sample", SAMPLE_FILES, ids=lambda p: p.stem)
def test_render_matches_golden(sample: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "-f", str(sample)]) == 0
    rendered = capsys.readouterr().out
    golden = GOLDEN / sample.name
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.mkdir(exist_ok=True)
        golden.write_text(rendered)
    assert list(yaml.safe_load_all(rendered)) == list(yaml.safe_load_all(golden.read_text()))


def test_render_patch_and_denial(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: x, annotations: {infergate.io/model: nope}}\nspec: {containers: []}\n"
    )
    assert main(["render", "-f", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"denied: {bad} document 1 Pod x (field metadata.annotations[infergate.io/model])" in err
    assert "unknown model 'nope'" in err

    assert main(["render", "--patch", "-f", str(SAMPLES / "llama-8b-pod.yaml")]) == 0
    out = capsys.readouterr().out
    assert '"op": "add"' in out and "llama-8b-chat" in out


def test_render_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("kind: [unclosed\n")
    assert main(["render", "-f", str(broken)]) == 2
    assert f"{broken}: not valid YAML" in capsys.readouterr().err
    assert main(["render", "-f", str(tmp_path / "missing.yaml")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_render_unpacks_lists(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pods = list(yaml.safe_load_all((SAMPLES / "deepseek-r1-group.yaml").read_text()))
    listed = tmp_path / "list.yaml"
    listed.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": pods}))
    assert main(["render", "-f", str(listed)]) == 0
    assert len(list(yaml.safe_load_all(capsys.readouterr().out))) == 2
