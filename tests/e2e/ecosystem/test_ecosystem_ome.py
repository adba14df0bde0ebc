"""OME's own InferenceService controller and webhooks in the loop (and LeaderWorkerSet's, which OME uses for
multi-node models): OME InferenceServices for OME's ClusterBaseModels and ClusterServingRuntimes, as OME ships
them, become workloads whose pods infergate classes, wires and places."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from devcluster import controllers
from devcluster.stack import InfergateStack
from tests.e2e.ecosystem.conftest import (
    H100, apply, delete_and_wait, describe, ecosystem_stack, gpus, manifest, node_labels, opted_in_namespace,
    pods_of, wait_bound,
)

pytestmark = pytest.mark.e2e

NAMESPACE = "eco-ome"
ISVC = "inferenceservices.ome.io"
# OME's ClusterBaseModels (config/models) the InferenceServices of manifests/ome-isvcs.yaml serve.
BASE_MODELS = {"llama-3-1-8b-instruct": "meta/Llama-3.1-8B-Instruct.yaml",
               "llama-3-1-70b-instruct": "meta/Llama-3.1-70B-Instruct.yaml",
               "deepseek-r1": "deepseek-ai/DeepSeek-R1.yaml"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfergateStack]:
    for stack in ecosystem_stack(tmp_path_factory, "lws", "ome"):
        cluster = stack.cluster
        source = controllers.source_dir("ome") / "config" / "models"
        cluster.apply([yaml.safe_load((source / path).read_text()) for path in BASE_MODELS.values()])
        # OME's model agent (which cannot run here) labels the nodes that hold a model's weights; OME's pods
        # select those nodes. These nodes hold every model.
        ready = {f"models.ome.io/clusterbasemodel.{name}": "Ready" for name in BASE_MODELS}
        for rack in ("rack-a", "rack-b"):
            cluster.add_gpu_nodes(2, product=H100, labels={"infergate.io/rack": rack, **ready}, name_prefix=f"h100-{rack[-1]}")
        opted_in_namespace(cluster, NAMESPACE)
        yield stack


def isvc(name: str) -> dict[str, Any]:
    return next(d for d in manifest("ome-isvcs.yaml") if d["metadata"]["name"] == name)


def serve(stack: InfergateStack, name: str, count: int) -> list[dict[str, Any]]:
    cluster = stack.cluster
    apply(cluster, NAMESPACE, [isvc(name)])
    try:
        return wait_bound(cluster, NAMESPACE, f"ome.io/inferenceservice={name}", count, timeout=150)
    except Exception as exc:
        raise AssertionError(f"{exc}\n{describe(cluster, NAMESPACE, ISVC, name)}\n"
                             f"{cluster.kubectl('get', 'pods,deploy,lws', '-n', NAMESPACE, '-o', 'wide').stdout}") from exc


def gpu_pods(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for p in pods if gpus(p)]


def assert_wired(pod: dict[str, Any], gpu_count: int) -> None:
    where = f"pod {pod['metadata']['name']}"
    assert pod["metadata"]["labels"].get("infergate.io/workload") == "inference", where
    assert pod["spec"]["schedulerName"] == "infergate-scheduler", where
    assert pod["spec"].get("priorityClassName") == "infergate-inference", where
    assert gpus(pod) == gpu_count, f"{where}: {pod['spec']['containers']}"


def product_terms(pod: dict[str, Any]) -> list[str]:
    required = pod["spec"].get("affinity", {}).get("nodeAffinity", {}).get("requiredDuringSchedulingIgnoredDuringExecution", {})
    return [v for term in required.get("nodeSelectorTerms", []) for e in term.get("matchExpressions", [])
            if e["key"] == "nvidia.com/gpu.product" for v in e.get("values", [])]


def cleanup(stack: InfergateStack, name: str) -> None:
    delete_and_wait(stack.cluster, NAMESPACE, ISVC, name, f"ome.io/inferenceservice={name}", timeout=90)


def test_single_gpu_model_and_router(stack: InfergateStack) -> None:
    name = "llama-3-1-8b-instruct"
    try:
        pods = serve(stack, name, 2)
        [engine] = gpu_pods(pods)
        assert_wired(engine, 1)
        routers = [p for p in pods if not gpus(p)]
        assert routers and all(p["metadata"]["labels"].get("infergate.io/workload") == "inference" for p in routers)
    finally:
        cleanup(stack, name)


def test_prefill_decode_disaggregated(stack: InfergateStack) -> None:
    name = "llama-3-1-70b-instruct-pd"
    try:
        pods = serve(stack, name, 3)
        engines = gpu_pods(pods)
        assert len(engines) == 2, [p["metadata"]["name"] for p in pods]
        for pod in engines:
            assert_wired(pod, 4)
        stored = stack.cluster.get_json(ISVC, name, "-n", NAMESPACE)
        assert stored["metadata"].get("annotations", {}).get("ome.io/deploymentMode") in (None, "PDDisaggregated")
    finally:
        cleanup(stack, name)


def test_multi_node_model_is_one_gang_on_its_product_in_one_rack(stack: InfergateStack) -> None:
    cluster = stack.cluster
    name = "deepseek-r1"
    try:
        pods = serve(stack, name, 2)
        members = gpu_pods(pods)
        assert len(members) == 2
        nodes = node_labels(cluster)
        for pod in members:
            assert_wired(pod, 8)
            assert H100 in product_terms(pod), f"pod {pod['metadata']['name']} requires the model's GPU product"
        placed = [p["spec"]["nodeName"] for p in members]
        assert len(set(placed)) == 2 and len({nodes[n]["infergate.io/rack"] for n in placed}) == 1, placed
        assert cluster.get_json("leaderworkersets", "-n", NAMESPACE)["items"], "OME runs a multi-node model as a LeaderWorkerSet"
    finally:
        cleanup(stack, name)
        cluster.wait_for("the LeaderWorkerSet's pods to be gone",
                         lambda: not pods_of(cluster, NAMESPACE, "leaderworkerset.sigs.k8s.io/name"), timeout=60)
