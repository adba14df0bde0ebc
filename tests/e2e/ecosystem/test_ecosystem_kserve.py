"""KServe's own controller manager (RawDeployment mode, no Knative) and webhooks in the loop: InferenceServices
as KServe's docs write them become Deployments whose pods infergate classes, wires and places."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devcluster.stack import InfergateStack
from tests.e2e.ecosystem.conftest import (
    apply, delete_and_wait, describe, ecosystem_stack, gpus, manifest, wait_bound,
)

pytestmark = pytest.mark.e2e

NAMESPACE = "eco-kserve"
ISVC = "inferenceservices.serving.kserve.io"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfergateStack]:
    yield from ecosystem_stack(tmp_path_factory, "kserve", namespace=NAMESPACE)


def _serve(stack: InfergateStack, name: str, file: str) -> list[dict]:
    cluster = stack.cluster
    apply(cluster, NAMESPACE, manifest(file))
    selector = f"serving.kserve.io/inferenceservice={name}"
    try:
        return wait_bound(cluster, NAMESPACE, selector, 1, timeout=120)
    except Exception as exc:
        raise AssertionError(f"{exc}\n{describe(cluster, NAMESPACE, ISVC, name)}") from exc


def test_llm_by_storage_uri_runs_as_a_raw_deployment_with_its_gpu(stack: InfergateStack) -> None:
    cluster = stack.cluster
    try:
        [pod] = _serve(stack, "huggingface-llama3", "kserve-huggingface-llm.yaml")
        assert cluster.get_json("deployment", "huggingface-llama3-predictor", "-n", NAMESPACE), "RawDeployment: a Deployment"
        assert pod["metadata"]["labels"].get("infergate.io/workload") == "inference"
        assert pod["spec"]["schedulerName"] == "infergate-scheduler"
        assert pod["spec"].get("priorityClassName") == "infergate-inference"
        assert gpus(pod) == 1, pod["spec"]["containers"]
        assert [c["name"] for c in pod["spec"]["containers"]].count("kserve-container") == 1
    finally:
        delete_and_wait(cluster, NAMESPACE, ISVC, "huggingface-llama3", "serving.kserve.io/inferenceservice=huggingface-llama3")


def test_cpu_sklearn_predictor_gets_no_gpu(stack: InfergateStack) -> None:
    cluster = stack.cluster
    try:
        [pod] = _serve(stack, "sklearn-iris", "kserve-sklearn-iris.yaml")
        assert gpus(pod) == 0, pod["spec"]["containers"]
        assert not any("nvidia.com/gpu" in c.get("resources", {}).get("requests", {}) for c in pod["spec"]["containers"])
        assert pod["metadata"]["labels"].get("infergate.io/workload") == "inference"
        stored = cluster.get_json(ISVC, "sklearn-iris", "-n", NAMESPACE)
        assert "nvidia.com/gpu" not in str(stored["spec"]), stored["spec"]
    finally:
        delete_and_wait(cluster, NAMESPACE, ISVC, "sklearn-iris", "serving.kserve.io/inferenceservice=sklearn-iris")
