"""The extender's policy knobs (issue 12, 7): an unknown scorer is refused by check-policy, at start and at
reload (the last good policy keeps serving), a failing maintenance pass never ends the loop, and gpuResource
is the resource the extender counts."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from extender.binder import SnapshotBinder
from extender.server import ExtenderServer
from extender.view import ClusterView
from infergate.cli import main
from policies import SHIPPED_POLICY_DIR, PolicyError, load_policy
from tests.kube_objects import node, pod


def policy_copy(tmp_path: Path) -> Path:
    directory = tmp_path / "policy"
    shutil.copytree(SHIPPED_POLICY_DIR, directory, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return directory


def edit(directory: Path, old: str, new: str) -> None:
    cluster = directory / "clusterpolicy.yaml"
    assert old in cluster.read_text()
    cluster.write_text(cluster.read_text().replace(old, new))


def test_check_policy_refuses_an_unknown_scorer(tmp_path, capsys):
    directory = policy_copy(tmp_path)
    edit(directory, "scorer: infergate", "scorer: infergat")
    with pytest.raises(PolicyError, match="unknown scorer 'infergat'"):
        load_policy(directory)
    assert main(["check-policy", str(directory)]) != 0
    printed = capsys.readouterr()
    assert "unknown scorer 'infergat'" in printed.out + printed.err


async def test_a_reload_with_an_unknown_scorer_keeps_the_last_good_policy(tmp_path):
    directory = policy_copy(tmp_path)
    view = ClusterView()
    view.replace_all([], [])
    server = ExtenderServer(load_policy(directory), view, SnapshotBinder({}), policy_dir=directory)
    before = server.scheduler.scorer
    edit(directory, "scorer: infergate", "scorer: infergat")
    assert not server.scaffold.check_policy()
    assert server.scheduler.scorer is before and server.policy.cluster.spec.scheduling.scorer == "infergate"
    assert server.scaffold.policy_loads.labels("error")._value.get() == 1


async def test_a_failing_maintenance_pass_never_ends_the_loop(policy):
    view = ClusterView()
    view.replace_all([node("n1")], [])
    server = ExtenderServer(policy, view, SnapshotBinder({}), maintain_interval=0.01)
    passes = []

    async def expire(now=None):
        passes.append(1)
        if len(passes) <= 2:
            raise RuntimeError("a bug in one pass")
        return []

    server.scheduler.expire = expire
    task = asyncio.create_task(server.maintain())
    await asyncio.sleep(0.3)
    assert len(passes) > 3 and not task.done()
    task.cancel()


async def test_the_scaffold_restarts_a_background_task_that_dies(policy):
    view = ClusterView()
    server = ExtenderServer(policy, view, SnapshotBinder({}))
    server.scaffold.restart_delay = 0.01
    runs = []

    async def dies() -> None:
        runs.append(1)
        raise RuntimeError("boom")

    server.scaffold.companions = {"dies": dies}
    await server.scaffold._start(None)
    await asyncio.sleep(0.2)
    await server.scaffold._stop(None)
    assert len(runs) > 2 and server.scaffold.restarts.labels("dies")._value.get() >= 2


async def test_gpu_resource_is_the_resource_the_extender_counts(tmp_path):
    directory = policy_copy(tmp_path)
    edit(directory, "gpuResource: nvidia.com/gpu", "gpuResource: amd.com/gpu")
    policy = load_policy(directory)
    assert policy.cluster.spec.defaults.gpu_resource == "amd.com/gpu"
    amd = node("amd-1", gpus=0)
    amd["status"]["allocatable"]["amd.com/gpu"] = "8"
    worker = pod("w")
    worker["spec"]["containers"][0]["resources"] = {"limits": {"amd.com/gpu": "4"}, "requests": {"amd.com/gpu": "4"}}
    view = ClusterView()
    server = ExtenderServer(policy, view, SnapshotBinder({"ml/w": worker}))
    view.replace_all([amd], [worker])
    assert view.state.gpu_capacity_milli() == 8000
    answer = await server.scheduler.filter(worker, ["amd-1"])
    assert answer.fits == ["amd-1"] and view.requests["ml/w"].gpus == 4
