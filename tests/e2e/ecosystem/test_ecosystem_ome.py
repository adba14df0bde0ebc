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
    H100, apply, delete_and_wait, describe, ecosystem_stack, gpus, manifest, node_labels, pods_of, wait_bound,
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
    # The nodes hold every model's weights, as OME's model agent would label them.
    ready = {k: v for name in BASE_MODELS for k, v in controllers.ome_model_ready_label(name).items()}
    for stack in ecosystem_stack(tmp_path_factory, "lws", "ome", namespace=NAMESPACE, racks=("rack-a", "rack-b"),
                                 node_labels=ready):
        stack.cluster.apply([controllers.ome_base_model(path) for path in BASE_MODELS.values()])
        stack.cluster.apply(leader_with_its_volumes("srt/deepseek-rdma-rt.yaml"))
        yield stack


def leader_with_its_volumes(path: str) -> dict[str, Any]:
    """OME v0.1.5's srt-deepseek-rdma mounts dshm and devinf into the leader's runner without declaring them for
    the leader (only the worker has them), so LeaderWorkerSet's StatefulSet for it is invalid whoever admits it.
    Declare the worker's volumes for the leader too, as OME's fix would."""
    runtime = yaml.safe_load((controllers.source_dir("ome") / "config" / "runtimes" / path).read_text())
    engine = runtime["spec"]["engineConfig"]
    engine["leader"].setdefault("volumes", engine["worker"]["volumes"])
    return runtime


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


def test_ome_alone_makes_the_workloads_of_its_samples(stack: InfergateStack) -> None:
    """The baseline, in a namespace that did not opt in to infergate: OME's controller and webhooks, as they run
    here, turn each InferenceService into its workload (so a failure elsewhere is infergate's)."""
    cluster = stack.cluster
    namespace = "eco-ome-plain"
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    expected = {"llama-3-1-8b-instruct": 2, "llama-3-1-70b-instruct-pd": 3, "deepseek-r1": 2}
    apply(cluster, namespace, [isvc(name) for name in expected])
    try:
        for name, count in expected.items():
            selector = f"ome.io/inferenceservice={name}"
            cluster.wait_for(f"OME to create the {count} pods of {name}",
                             lambda: len(pods_of(cluster, namespace, selector)) >= count, timeout=120)
            assert all(p["spec"]["schedulerName"] == "default-scheduler" for p in pods_of(cluster, namespace, selector))
    finally:
        for name in expected:
            delete_and_wait(cluster, namespace, ISVC, name, f"ome.io/inferenceservice={name}", timeout=90)


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
