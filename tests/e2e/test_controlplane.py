"""The local control plane itself: RBAC is enforced, fake GPU nodes come up, the default scheduler places a
GPU pod, kwok runs it, and deletion completes."""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from devcluster import LocalCluster
from devcluster.cluster import free_port

pytestmark = pytest.mark.e2e

NAMESPACE = "controlplane-test"


def _pod(name: str, gpus: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "containers": [{
                "name": "main",
                "image": "registry.invalid/never-pulled:1",
                "resources": {"limits": {"nvidia.com/gpu": str(gpus)}},
            }],
        },
    }


# The cluster is shared by the whole session: everything made here is removed again, so that other tests'
# placement decisions never see these nodes.


@pytest.fixture(scope="module")
def gpu_nodes(cluster: LocalCluster) -> Iterator[list[str]]:
    names = cluster.add_gpu_nodes(3, gpus_per_node=8, labels={"infergate.io/rack": "controlplane-test"},
                                  name_prefix="controlplane-test")
    yield names
    cluster.kubectl("delete", "node", *names, "--wait=false")


@pytest.fixture(scope="module")
def namespace(cluster: LocalCluster) -> Iterator[str]:
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    # Pods need the namespace's default ServiceAccount, which kube-controller-manager creates.
    cluster.wait_for("the default ServiceAccount",
                     lambda: cluster.kubectl("-n", NAMESPACE, "get", "serviceaccount", "default").returncode == 0)
    yield NAMESPACE
    cluster.kubectl("delete", "namespace", NAMESPACE, "--wait=false")
    cluster.kubectl("delete", "priorityclass", "controlplane-test-high", "--ignore-not-found")


def test_anonymous_requests_are_forbidden(cluster: LocalCluster) -> None:
    ctx = ssl.create_default_context(cafile=str(cluster.ca_file))
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(f"{cluster.server}/api/v1/pods", context=ctx, timeout=10)
    assert exc.value.code == 403
    assert "system:anonymous" in exc.value.read().decode()


def test_rbac_forbids_a_user_without_permissions(cluster: LocalCluster) -> None:
    kubeconfig = cluster.write_kubeconfig(cluster.dir / "nobody.kubeconfig", "nobody", ["example:team"])
    result = cluster.kubectl("get", "pods", "-A", kubeconfig=kubeconfig)
    assert result.returncode != 0
    assert "forbidden" in result.stderr and 'User "nobody"' in result.stderr
    # Authorization is really RBAC: granting a role makes the same request pass.
    cluster.kubectl("create", "clusterrolebinding", "nobody-view", "--clusterrole=view", "--user=nobody", check=True)
    try:
        cluster.wait_for("the view binding to take effect",
                         lambda: cluster.kubectl("get", "pods", "-A", kubeconfig=kubeconfig).returncode == 0)
    finally:
        cluster.kubectl("delete", "clusterrolebinding", "nobody-view")


def test_admission_webhooks_are_called(cluster: LocalCluster, namespace: str) -> None:
    # A webhook nobody listens on, with failurePolicy Fail: if the API server calls admission webhooks at all,
    # creating a matching object must fail naming the webhook. Scoped by a label that only this test uses.
    port = free_port()
    webhook = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "devcluster-probe"},
        "webhooks": [{
            "name": "probe.devcluster.infergate.io",
            "clientConfig": {"url": f"https://127.0.0.1:{port}/validate",
                             "caBundle": base64.b64encode(cluster.ca_file.read_bytes()).decode()},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                       "resources": ["configmaps"]}],
            "objectSelector": {"matchLabels": {"devcluster-probe": "yes"}},
            "failurePolicy": "Fail",
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "timeoutSeconds": 2,
        }],
    }
    cluster.apply(webhook)
    try:
        def rejected() -> bool:
            result = cluster.kubectl("-n", namespace, "create", "-f", "-", input=json.dumps({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "probe", "labels": {"devcluster-probe": "yes"}},
            }))
            if result.returncode == 0:  # the configuration was not active yet; try again
                cluster.kubectl("-n", namespace, "delete", "configmap", "probe")
                return False
            assert "probe.devcluster.infergate.io" in result.stderr, result.stderr
            return True

        cluster.wait_for("the webhook to be called", rejected, timeout=30)
    finally:
        cluster.kubectl("delete", "validatingwebhookconfiguration", "devcluster-probe")


def test_gpu_nodes_become_ready(cluster: LocalCluster, gpu_nodes: list[str]) -> None:
    nodes = {n["metadata"]["name"]: n for n in cluster.get_json("nodes", *gpu_nodes)["items"]}
    assert sorted(nodes) == sorted(gpu_nodes)
    for node in nodes.values():
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        assert ready and ready[0]["status"] == "True"
        assert node["status"]["allocatable"]["nvidia.com/gpu"] == "8"
        assert node["metadata"]["labels"]["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
        assert node["metadata"]["labels"]["infergate.io/rack"] == "controlplane-test"
        assert not node["spec"].get("taints")


def test_gpu_pod_is_scheduled_runs_and_is_deleted(
    cluster: LocalCluster, gpu_nodes: list[str], namespace: str
) -> None:
    cluster.apply({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                   "metadata": {"name": "controlplane-test-high"}, "value": 1000})
    pod = _pod("gpu-pod", gpus=1)
    pod["spec"]["priorityClassName"] = "controlplane-test-high"
    cluster.apply(pod)

    def running() -> bool:
        pod = cluster.get_json("pod", "-n", namespace, "gpu-pod")
        return bool(pod["status"].get("phase") == "Running")

    cluster.wait_for("gpu-pod to run", running, timeout=60)
    pod = cluster.get_json("pod", "-n", namespace, "gpu-pod")
    assert pod["spec"]["nodeName"] in gpu_nodes
    assert pod["spec"]["schedulerName"] == "default-scheduler"
    assert pod["spec"]["priority"] == 1000  # filled in by the Priority admission plugin
    conditions = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
    assert conditions["PodScheduled"] == "True" and conditions["Ready"] == "True"
    assert pod["status"]["podIP"]

    # The scheduler counts GPUs: a pod wanting more than any node has stays Pending, and says why.
    cluster.apply(_pod("too-big", gpus=9))
    cluster.wait_for("too-big to be reported unschedulable", lambda: any(
        c.get("reason") == "Unschedulable" and "nvidia.com/gpu" in c.get("message", "")
        for c in cluster.get_json("pod", "-n", namespace, "too-big")["status"].get("conditions", [])
    ))

    result = cluster.kubectl("delete", "pod", "-n", namespace, "gpu-pod", "too-big", "--wait=true", "--timeout=60s")
    assert result.returncode == 0, result.stderr
    remaining = cluster.get_json("pods", "-n", namespace)["items"]
    assert [p["metadata"]["name"] for p in remaining] == []


def test_pod_with_run_for_annotation_completes(
    cluster: LocalCluster, gpu_nodes: list[str], namespace: str
) -> None:
    pod = _pod("short-job", gpus=2)
    pod["metadata"]["annotations"] = {"devcluster.infergate.io/run-for": "1s"}
    pod["spec"]["restartPolicy"] = "Never"
    cluster.apply(pod)
    cluster.wait_for("short-job to succeed", lambda: cluster.get_json("pod", "-n", namespace, "short-job")
                     ["status"].get("phase") == "Succeeded", timeout=60)
    cluster.kubectl("delete", "pod", "-n", namespace, "short-job", "--wait=true", "--timeout=60s", check=True)


def test_scheduler_restarts_with_a_new_configuration(
    cluster: LocalCluster, gpu_nodes: list[str], namespace: str
) -> None:
    config = """\
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: default-scheduler
- schedulerName: second-scheduler
"""
    previous = cluster.scheduler_config
    cluster.restart_scheduler(config)
    try:
        pod = _pod("second", gpus=1)
        pod["spec"]["schedulerName"] = "second-scheduler"
        cluster.apply(pod)
        cluster.wait_for("the second profile to place a pod", lambda: bool(
            cluster.get_json("pod", "-n", namespace, "second")["spec"].get("nodeName")))
        events = json.dumps(cluster.get_json("events", "-n", namespace,
                                             "--field-selector=involvedObject.name=second"))
        assert "second-scheduler" in events
        cluster.kubectl("delete", "pod", "-n", namespace, "second", "--wait=true", "--timeout=60s", check=True)
    finally:
        cluster.restart_scheduler(previous)  # the cluster is shared: leave the scheduler as we found it
