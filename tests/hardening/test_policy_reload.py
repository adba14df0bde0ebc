"""Policy hot reload from a ConfigMap-style directory: atomic swaps, bad policies rejected, last good kept."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from policies import SHIPPED_POLICY_DIR, load_policy
from policies.reload import PolicyWatcher


def configmap_volume(root: Path, files: dict[str, str], version: int) -> None:
    """Write files the way the kubelet updates a ConfigMap volume: a new directory, then one symlink swap."""
    data = root / f"..2026_11_25_{version:02d}"
    data.mkdir()
    for name, text in files.items():
        (data / name).write_text(text)
    tmp = root / "..data_tmp"
    tmp.symlink_to(data.name)
    os.replace(tmp, root / "..data")
    for name in files:
        link = root / name
        if not link.is_symlink():
            link.symlink_to(f"..data/{name}")


def shipped() -> dict[str, str]:
    return {p.name: p.read_text() for p in SHIPPED_POLICY_DIR.glob("*.yaml")}


def test_reload_good_then_bad_then_good(tmp_path):
    configmap_volume(tmp_path, shipped(), 1)
    results: list[str] = []
    watcher = PolicyWatcher(tmp_path, load_policy(tmp_path), results.append)
    assert not watcher.check(), "nothing changed"

    narrowed = shipped()
    narrowed["clusterpolicy.yaml"] = narrowed["clusterpolicy.yaml"].replace("maxGpusPerPod: 8", "maxGpusPerPod: 2")
    configmap_volume(tmp_path, narrowed, 2)
    assert watcher.check()
    assert watcher.policy.cluster.rule_for("x").max_gpus_per_pod == 2

    broken = dict(narrowed)
    broken["models.yaml"] += "\n---\napiVersion: infergate.io/v1alpha1\nkind: Model\nmetadata: {name: bad}\nspec: {storageUri: 'nope', format: {name: x}}\n"
    configmap_volume(tmp_path, broken, 3)
    good = watcher.policy
    assert not watcher.check()
    assert watcher.policy is good, "the last good policy keeps serving"
    assert "models.yaml" in watcher.last_error and "spec.storageUri" in watcher.last_error

    configmap_volume(tmp_path, shipped(), 4)
    assert watcher.check() and watcher.policy.cluster.rule_for("x").max_gpus_per_pod == 8
    assert results == ["ok", "error", "ok"]


def test_a_vanished_directory_keeps_the_policy(tmp_path):
    target = tmp_path / "policy"
    shutil.copytree(SHIPPED_POLICY_DIR, target, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    watcher = PolicyWatcher(target, load_policy(target))
    shutil.rmtree(target)
    before = watcher.policy
    assert not watcher.check() and watcher.policy is before
