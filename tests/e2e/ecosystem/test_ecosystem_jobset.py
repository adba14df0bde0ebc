"""JobSet's own controller and webhooks in the loop: a training JobSet whose pod template carries infergate's group
annotations (JobSet declares no gang of its own) becomes a gang of training-class pods, and an inference
LeaderWorkerSet that needs their GPUs preempts the whole gang."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devcluster.stack import InfergateStack
from tests.e2e.ecosystem.conftest import (
    apply, delete_and_wait, ecosystem_stack, gpus, manifest, pods_of, wait_bound,
)

pytestmark = pytest.mark.e2e

NAMESPACE = "eco-jobset"
JOBSET = "jobset.sigs.k8s.io/jobset-name=pytorch"
LWS = "leaderworkerset.sigs.k8s.io/name=sglang"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfergateStack]:
    # Exactly the GPUs the inference group needs: it can only run where the training gang runs.
    yield from ecosystem_stack(tmp_path_factory, "lws", "jobset", namespace=NAMESPACE)


def test_training_jobset_is_one_training_gang_and_inference_preempts_all_of_it(stack: InfergateStack) -> None:
    cluster = stack.cluster
    apply(cluster, NAMESPACE, manifest("jobset-pytorch.yaml"))
    try:
        trainers = wait_bound(cluster, NAMESPACE, JOBSET, 2, timeout=120)
        assert len(trainers) == 2
        for pod in trainers:
            where = f"pod {pod['metadata']['name']}"
            assert pod["metadata"]["labels"].get("infergate.io/workload") == "training", where
            assert pod["spec"].get("priorityClassName") == "infergate-training", where
            assert pod["spec"]["schedulerName"] == "infergate-scheduler", where
            assert gpus(pod) == 4, where
        training_uids = {p["metadata"]["uid"] for p in trainers}

        [lws] = manifest("lws-sglang.yaml")
        apply(cluster, NAMESPACE, [lws])
        serving = wait_bound(cluster, NAMESPACE, LWS, 2, timeout=180)
        assert all(p["metadata"]["labels"].get("infergate.io/workload") == "inference" for p in serving)
        cluster.wait_for("every pod of the training gang to be gone", lambda: not training_uids & {
            p["metadata"]["uid"] for p in pods_of(cluster, NAMESPACE, JOBSET)}, timeout=60)
        # Whatever JobSet does next (restart or fail the set), no training pod holds GPUs beside the group.
        bound = [p["metadata"]["name"] for p in pods_of(cluster, NAMESPACE, JOBSET)
                 if p["spec"].get("nodeName") and p.get("status", {}).get("phase") not in ("Succeeded", "Failed")]
        assert not bound, f"training pods bound while inference holds every GPU: {bound}"
    finally:
        delete_and_wait(cluster, NAMESPACE, "leaderworkerset", "sglang", LWS)
        delete_and_wait(cluster, NAMESPACE, "jobset", "pytorch", JOBSET)
