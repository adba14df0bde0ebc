"""infergate in a real control plane: kubectl apply of the samples through the real webhook configuration,
and kube-scheduler placing GPU pods through the extender."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from devcluster.cluster import LocalCluster
from devcluster.stack import SAMPLES, InfergateStack
from policies import SHIPPED_POLICY_DIR, load_policy
from tests.e2e.conftest import H100
from webhook.render import render_files

pytestmark = pytest.mark.e2e

def assert_subset(expected: Any, actual: Any, path: str = "") -> None:
    """Everything render predicted is in what the API server stored (which adds its own defaults)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: expected an object, got {actual!r}"
        for key, value in expected.items():
            assert key in actual, f"{path}.{key} is missing"
            assert_subset(value, actual[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) >= len(expected), f"{path}: {actual!r}"
        for index, item in enumerate(expected):
            if isinstance(item, dict) and "name" in item:
                match = [a for a in actual if isinstance(a, dict) and a.get("name") == item["name"]]
                assert match, f"{path}[name={item['name']}] is missing"
                assert_subset(item, match[0], f"{path}[name={item['name']}]")
            elif isinstance(item, dict):
                assert any(_is_subset(item, a) for a in actual), f"{path}: {item!r} is missing from {actual!r}"
            else:
                assert item == actual[index], f"{path}[{index}]: rendered {item!r}, stored {actual[index]!r}"
    else:
        assert expected == actual, f"{path}: rendered {expected!r}, stored {actual!r}"


def _is_subset(expected: Any, actual: Any) -> bool:
    try:
        assert_subset(expected, actual)
    except AssertionError:
        return False
    return True


def stored(cluster: LocalCluster, obj: dict[str, Any]) -> dict[str, Any]:
    kind = obj["kind"].lower()
    if obj["kind"] == "InferenceService":
        kind = f"inferenceservices.{obj['apiVersion'].split('/')[0]}"
    metadata = obj["metadata"]
    args = [kind, metadata["name"]] + (["-n", metadata["namespace"]] if metadata.get("namespace") else [])
    return cluster.get_json(*args)


def test_every_sample_is_stored_as_render_predicts(stack: InfergateStack) -> None:
    policy = load_policy(SHIPPED_POLICY_DIR)
    checked = 0
    for item in render_files([str(p) for p in sorted(SAMPLES.glob("*.yaml"))], policy):
        if item.admitted["kind"] not in ("Pod", "InferenceService"):
            continue
        assert item.decision.allowed, item.decision.message
        actual = stored(stack.cluster, item.admitted)
        assert_subset(item.admitted["metadata"].get("labels", {}), actual["metadata"].get("labels", {}), "metadata.labels")
        assert_subset(item.admitted["metadata"].get("annotations", {}), actual["metadata"].get("annotations", {}), "metadata.annotations")
        assert_subset(item.admitted["spec"], actual["spec"], f"{item.label}.spec")
        checked += 1
    assert checked >= 14


def pods(cluster: LocalCluster, namespace: str) -> dict[str, dict[str, Any]]:
    return {p["metadata"]["name"]: p for p in cluster.get_json("pods", "-n", namespace)["items"]}


def test_gpu_pods_are_placed_through_the_extender(stack: InfergateStack) -> None:
    cluster = stack.cluster
    serving = ["llama-8b-chat", "llama-70b-chat", "qwen-7b-half", "qwen-0-5b"]
    cluster.wait_for("the serving samples to be bound", lambda: all(pods(cluster, "ml-serving")[n]["spec"].get("nodeName") for n in serving), timeout=90)
    placed = pods(cluster, "ml-serving")
    nodes = {n["metadata"]["name"]: n for n in cluster.get_json("nodes")["items"]}
    assert nodes[placed["llama-70b-chat"]["spec"]["nodeName"]]["metadata"]["labels"]["nvidia.com/gpu.product"] == H100
    half = placed["qwen-7b-half"]
    assert half["metadata"]["annotations"]["infergate.io/gpu-index"].isdigit()
    metrics = stack_metrics(stack)
    assert 'infergate_extender_requests_total{result="ok",verb="bind"}' in metrics
    events = cluster.get_json("events", "-n", "ml-serving")["items"]
    scheduled = [e for e in events if e.get("reason") == "Scheduled" and e["involvedObject"]["name"] in serving]
    assert {e["involvedObject"]["name"] for e in scheduled} == set(serving)
    assert all(e.get("reportingComponent", e.get("source", {}).get("component")) == "infergate-scheduler" for e in scheduled)


def requested_gpu_milli(cluster: LocalCluster) -> dict[str, int]:
    """GPU milli that bound, live pods request, per node, as the API server reports them."""
    requested: dict[str, int] = {}
    for pod in cluster.get_json("pods", "-A")["items"]:
        node = pod["spec"].get("nodeName")
        if not node or pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            continue
        for container in pod["spec"]["containers"]:
            limits = container.get("resources", {}).get("limits", {})
            requested[node] = requested.get(node, 0) + 1000 * int(limits.get("nvidia.com/gpu", 0)) + int(limits.get("infergate.io/gpu-milli", 0))
    return requested


def allocated_metric(stack: InfergateStack) -> float:
    return float(next(line.split()[1] for line in stack_metrics(stack).splitlines() if line.startswith("infergate_gpu_allocated_milli ")))


def test_accounting_matches_the_cluster(stack: InfergateStack) -> None:
    """GPUs the extender holds equal what bound pods request; no node is overcommitted."""
    cluster = stack.cluster
    capacity = {n["metadata"]["name"]: 1000 * int(n["status"]["allocatable"].get("nvidia.com/gpu", 0)) for n in cluster.get_json("nodes")["items"]}
    cluster.wait_for("the extender's accounting to match the cluster", lambda: allocated_metric(stack) == sum(requested_gpu_milli(cluster).values()), timeout=30)
    for node, milli in requested_gpu_milli(cluster).items():
        assert milli <= capacity[node], f"node {node} is overcommitted: {milli} of {capacity[node]}"


def stack_metrics(stack: InfergateStack) -> str:
    import ssl
    import urllib.request

    context = ssl.create_default_context(cafile=str(stack.tls_dir / "ca.crt"))
    with urllib.request.urlopen(f"https://127.0.0.1:{stack.servers['extender'].port}/metrics", context=context) as response:
        return response.read().decode()


DENIED = [
    ("Pod", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bad-model", "namespace": "ml-serving", "annotations": {"infergate.io/model": "gpt-9"}}, "spec": {"containers": [{"name": "model-server", "image": "x"}]}},
     ["pods.infergate.io", "unknown model 'gpt-9'", "metadata.annotations[infergate.io/model]"]),
    ("Pod", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "both", "namespace": "ml-serving", "annotations": {"infergate.io/model": "llama-3.1-8b-instruct", "infergate.io/gpus": "2", "infergate.io/gpu-fraction": "0.5"}}, "spec": {"containers": [{"name": "model-server", "image": "x"}]}},
     ["not both"]),
    ("InferenceService", {"apiVersion": "ome.io/v1beta1", "kind": "InferenceService", "metadata": {"name": "pd", "namespace": "ml-serving"}, "spec": {"model": {"name": "llama-3.1-8b-instruct"}, "decoder": {}}},
     ["a decoder needs an engine", "spec.engine"]),
    ("InferenceService", {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "metadata": {"name": "bad-uri", "namespace": "ml-serving"}, "spec": {"predictor": {"model": {"modelFormat": {"name": "huggingface"}, "storageUri": "ftp://nope"}}}},
     ["spec.predictor.model.storageUri"]),
]


@pytest.mark.parametrize(("kind", "obj", "words"), DENIED, ids=[d[1]["metadata"]["name"] for d in DENIED])
def test_denials_reach_kubectl(stack: InfergateStack, kind: str, obj: dict[str, Any], words: list[str]) -> None:
    result = stack.cluster.kubectl("apply", "-f", "-", input=json.dumps(obj))
    assert result.returncode != 0
    for word in words:
        assert word in result.stderr, result.stderr


def test_a_pod_with_pod_level_resources_is_admitted_and_placed(stack: InfergateStack) -> None:
    """PodLevelResources (on by default since Kubernetes 1.34): the runtime's CPU and memory defaults would make
    the containers add up to more than the pod's budget, which the API server refuses."""
    cluster = stack.cluster
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "budgeted", "namespace": "ml-serving", "annotations": {"infergate.io/model": "qwen2.5-0.5b-instruct"}},
           "spec": {"containers": [{"name": "model-server"}],
                    "resources": {"requests": {"cpu": "2", "memory": "8Gi"}, "limits": {"cpu": "2", "memory": "8Gi"}}}}
    result = cluster.kubectl("apply", "-f", "-", input=json.dumps(pod))
    assert result.returncode == 0, result.stderr
    cluster.wait_for("the budgeted pod to be bound", lambda: cluster.get_json("pod", "budgeted", "-n", "ml-serving")["spec"].get("nodeName"), timeout=60)
    stored_pod = cluster.get_json("pod", "budgeted", "-n", "ml-serving")
    server = next(c for c in stored_pod["spec"]["containers"] if c["name"] == "model-server")
    assert "cpu" not in server["resources"].get("requests", {}) and "memory" not in server["resources"].get("requests", {})
    cluster.kubectl("delete", "pod", "budgeted", "-n", "ml-serving", "--timeout=60s")


def test_opted_out_namespace_is_untouched(stack: InfergateStack) -> None:
    cluster = stack.cluster
    cluster.kubectl("create", "namespace", "plain", check=False)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "plain", "annotations": {"infergate.io/model": "llama-3.1-8b-instruct"}},
           "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    cluster.apply(pod)
    stored_pod = cluster.get_json("pod", "p", "-n", "plain")
    assert stored_pod["spec"]["schedulerName"] == "default-scheduler"
    assert "infergate.io/injected" not in stored_pod["metadata"].get("annotations", {})


def test_webhook_down_fails_closed_in_opted_in_namespaces(stack: InfergateStack) -> None:
    """failurePolicy Fail: with the webhook down, opted-in pods are refused with a message; others are not."""
    cluster = stack.cluster
    stack.stop_server("webhook", crash=True)
    try:
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "while-down", "namespace": "ml-serving", "annotations": {"infergate.io/model": "llama-3.1-8b-instruct"}},
               "spec": {"containers": [{"name": "model-server", "image": "x"}]}}
        result = cluster.kubectl("create", "-f", "-", input=json.dumps(pod))
        assert result.returncode != 0 and "pods.infergate.io" in result.stderr, result.stderr
        cluster.kubectl("create", "namespace", "plain-down", check=False)
        other = {**pod, "metadata": {"name": "while-down", "namespace": "plain-down"}}
        assert cluster.kubectl("create", "-f", "-", input=json.dumps(other)).returncode == 0
    finally:
        stack.start_server("webhook")
    created = cluster.kubectl("create", "-f", "-", input=json.dumps(pod))
    assert created.returncode == 0, created.stderr


def test_extender_restart_rebuilds_accounting(stack: InfergateStack) -> None:
    cluster = stack.cluster
    stack.stop_server("extender", crash=True)
    stack.start_server("extender")
    cluster.wait_for("the restarted extender's accounting to match the cluster", lambda: allocated_metric(stack) == sum(requested_gpu_milli(cluster).values()), timeout=30)
    # And it keeps placing: a new single-GPU pod is bound.
    pod = yaml.safe_load((SAMPLES / "llama-8b-pod.yaml").read_text())
    pod["metadata"]["name"] = "after-restart"
    cluster.apply(pod)
    cluster.wait_for("the pod after the restart to be bound", lambda: bool(cluster.get_json("pod", "after-restart", "-n", "ml-serving")["spec"].get("nodeName")), timeout=60)
