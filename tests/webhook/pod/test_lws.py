"""LeaderWorkerSet pods as the LWS v0.8.0 controller creates them, before and after LWS's own pod webhook.

The controller's leader StatefulSet `<lws>` labels its pods worker-index "0" and no group-index; the worker
StatefulSet `<lws>-<group>` labels its pods group-index and no worker-index. LWS's pod webhook adds the missing
index from the pod's name, a group-key label on the leader and the LWS_* variables in every container. Mutating
webhooks run in name order, so infergate must admit both shapes, and the same way.
"""

from __future__ import annotations

import copy
import hashlib

import jsonpatch
import pytest

from infergate.workloads import group_identity
from webhook.admission import decide
from webhook.review import AdmissionRequest, GroupVersionKind

LWS = "leaderworkerset.sigs.k8s.io"
SGLANG_LEADER = {
    "name": "sglang-leader",
    "image": "lmsysorg/sglang:v0.5.2-cu126",
    "env": [{"name": "LWS_WORKER_INDEX", "valueFrom": {"fieldRef": {"fieldPath": f"metadata.labels['{LWS}/worker-index']"}}}],
    "command": ["python3", "-m", "sglang.launch_server", "--model-path", "deepseek-ai/DeepSeek-R1", "--tp", "16",
                "--dist-init-addr", "$(LWS_LEADER_ADDRESS):20000", "--nnodes", "$(LWS_GROUP_SIZE)",
                "--node-rank", "$(LWS_WORKER_INDEX)", "--trust-remote-code", "--host", "0.0.0.0", "--port", "40000"],
    "resources": {"limits": {"nvidia.com/gpu": "8"}},
    "ports": [{"containerPort": 40000}],
}
VLLM_LEADER = {
    "name": "vllm-leader",
    "image": "vllm/vllm-openai:v0.11.0",
    "command": ["sh", "-c", "bash /vllm-workspace/examples/online_serving/multi-node-serving.sh leader "
                "--ray_cluster_size=$(LWS_GROUP_SIZE); python3 -m vllm.entrypoints.openai.api_server --port 8080 "
                "--model deepseek-ai/DeepSeek-R1 --tensor-parallel-size 8 --pipeline_parallel_size 2"],
    "resources": {"limits": {"nvidia.com/gpu": "8"}},
}


def controller_pod(name: str, group: int, worker: int, container: dict, model: str = "deepseek-r1") -> dict:
    """A pod as LWS's controller has its StatefulSet create it (LWS's webhook not yet run)."""
    labels = {f"{LWS}/name": name, f"{LWS}/template-revision-hash": "5c7d9", "statefulset.kubernetes.io/pod-name": ""}
    annotations = {f"{LWS}/size": "2", "infergate.io/model": model}
    if worker == 0:
        pod_name = f"{name}-{group}"
        labels[f"{LWS}/worker-index"] = "0"
    else:
        pod_name = f"{name}-{group}-{worker}"
        labels[f"{LWS}/group-index"] = str(group)
        labels[f"{LWS}/group-key"] = hashlib.sha1(f"ml/{name}-{group}".encode()).hexdigest()
        annotations[f"{LWS}/leader-name"] = f"{name}-{group}"
    labels["statefulset.kubernetes.io/pod-name"] = pod_name
    labels["apps.kubernetes.io/pod-index"] = str(group if worker == 0 else worker)
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": pod_name, "namespace": "ml", "labels": labels, "annotations": annotations},
        "spec": {"containers": [copy.deepcopy(container)], "subdomain": name},
    }


def lws_webhook(pod: dict) -> dict:
    """What LWS v0.8.0's pod webhook does (pkg/webhooks/pod_webhook.go), for the fields infergate reads."""
    pod = copy.deepcopy(pod)
    labels, annotations = pod["metadata"]["labels"], pod["metadata"]["annotations"]
    name = pod["metadata"]["name"]
    if labels.get(f"{LWS}/worker-index") == "0":
        labels.setdefault(f"{LWS}/group-index", name.rsplit("-", 1)[1])
        labels.setdefault(f"{LWS}/group-key", hashlib.sha1(f"ml/{name}".encode()).hexdigest())
    else:
        labels[f"{LWS}/worker-index"] = name.rsplit("-", 1)[1]
    env = [
        {"name": "LWS_LEADER_ADDRESS", "value": f"{labels[f'{LWS}/name']}-{labels[f'{LWS}/group-index']}.{pod['spec']['subdomain']}.ml"},
        {"name": "LWS_GROUP_SIZE", "value": annotations[f"{LWS}/size"]},
        {"name": "LWS_WORKER_INDEX", "value": labels[f"{LWS}/worker-index"]},
    ]
    for container in pod["spec"]["containers"]:
        have = {e["name"] for e in container.get("env") or []}
        container.setdefault("env", []).extend(e for e in env if e["name"] not in have)
    return pod


def admit(pod: dict):
    request = AdmissionRequest(uid="u", kind=GroupVersionKind(group="", version="v1", kind="Pod"), operation="CREATE",
                               namespace="ml", object=copy.deepcopy(pod))
    return decide(request, POLICY, mutate=True)


def ours(pod: dict) -> dict:
    decision = admit(pod)
    assert decision.allowed, decision.message
    return jsonpatch.apply_patch(pod, decision.patch)


def normalised(pod: dict) -> dict:
    pod = copy.deepcopy(pod)
    for container in pod["spec"]["containers"]:
        container["env"] = sorted(container.get("env") or [], key=lambda e: e["name"])
    return pod


@pytest.fixture(autouse=True)
def _policy(policy):
    global POLICY
    POLICY = policy


@pytest.mark.parametrize("container", [SGLANG_LEADER, VLLM_LEADER], ids=["sglang", "vllm"])
@pytest.mark.parametrize("group", [0, 3])
@pytest.mark.parametrize("worker", [0, 1])
def test_either_webhook_order_gives_the_same_pod(container, group, worker):
    created = controller_pod("ds", group, worker, container)
    lws_first = ours(lws_webhook(created))
    # infergate first; LWS's webhook changes the pod, so infergate (reinvocationPolicy: IfNeeded) runs again.
    infergate_first = ours(lws_webhook(ours(created)))
    assert normalised(lws_first) == normalised(infergate_first)
    assert admit(lws_first).patch == [], "re-admission changes nothing"
    identity = group_identity({**lws_first["metadata"], "namespace": "ml"})
    assert identity is not None and identity.key == f"ml/ds-{group}" and identity.rank == worker and identity.size == 2


@pytest.mark.parametrize("worker", [0, 1])
def test_identity_before_lws_webhook_equals_identity_after(worker):
    created = controller_pod("ds", 2, worker, SGLANG_LEADER)
    before = group_identity({**created["metadata"], "namespace": "ml"})
    after = group_identity({**lws_webhook(created)["metadata"], "namespace": "ml"})
    assert before == after and before.role == ("leader" if worker == 0 else "worker")


def test_sglang_leader_keeps_its_own_flags_and_gets_the_weights():
    admitted = ours(controller_pod("ds", 0, 0, SGLANG_LEADER))
    containers = admitted["spec"]["containers"]
    assert [c["name"] for c in containers] == ["sglang-leader"], "merged into the user's container, no second server"
    container = containers[0]
    assert container["command"] == SGLANG_LEADER["command"]
    words = container["command"] + container.get("args", [])
    for flag in ("--model-path", "--nnodes", "--node-rank", "--dist-init-addr", "--port", "--host"):
        assert words.count(flag) == 1, f"{flag} given twice"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "8"
    assert {"name": "MODEL_PATH", "value": "/mnt/models"} in container["env"]
    assert admitted["metadata"]["labels"]["infergate.io/workload"] == "inference"


def test_worker_without_worker_index_is_not_denied():
    decision = admit(controller_pod("ds", 0, 1, {**SGLANG_LEADER, "name": "sglang-worker"}))
    assert decision.allowed, decision.message


def test_worker_of_a_pod_named_unlike_lws_still_needs_a_rank():
    pod = controller_pod("ds", 0, 1, SGLANG_LEADER)
    pod["metadata"]["name"] = "renamed"
    pod["metadata"]["labels"].pop("apps.kubernetes.io/pod-index")
    decision = admit(pod)
    assert not decision.allowed and decision.code == 400 and "rank" in decision.message


def test_a_single_pod_model_in_a_group_says_so(policy):
    from tests.webhook.test_realworld import admit

    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "vllm-0", "namespace": "ml", "annotations": {"infergate.io/model": "llama-3.1-8b-instruct",
                                                                              "leaderworkerset.sigs.k8s.io/size": "2"},
                        "labels": {"leaderworkerset.sigs.k8s.io/name": "vllm", "leaderworkerset.sigs.k8s.io/worker-index": "0"}},
           "spec": {"containers": [{"name": "vllm-leader", "image": "vllm/vllm-openai:v0.11.0", "resources": {"limits": {"nvidia.com/gpu": "8"}}}]}}
    decision, _ = admit(policy, pod)
    assert decision.allowed, decision.message
    assert any("runs in one pod, but group ml/vllm-0 has 2 pods" in w for w in decision.warnings), decision.warnings
