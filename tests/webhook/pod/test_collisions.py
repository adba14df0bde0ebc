"""The user's names and mounts are never overwritten or doubled by ours: original -> expected."""

from __future__ import annotations

import copy

import jsonpatch

from tests.podkit import pod
from webhook.pod.mutator import mutate_pod

M70B = {"infergate.io/model": "llama-3.1-70b-instruct"}  # hf:// weights, 4 GPUs: model-init and /dev/shm
SERVER = {"name": "model-server", "image": "vllm/vllm-openai:v0.11.0"}


def admit(policy, **spec):
    original = pod(M70B, **spec)
    edited = copy.deepcopy(original)
    mutation = mutate_pod(edited, "ml", policy)
    assert jsonpatch.apply_patch(original, mutation.patch) == edited
    again = copy.deepcopy(edited)
    assert mutate_pod(again, "ml", policy).patch == [], "re-admission changes nothing"
    return edited["spec"], mutation.warnings


def test_user_volume_named_model_store_is_kept(policy):
    mine = {"name": "model-store", "configMap": {"name": "prompts"}}
    spec, _ = admit(policy, containers=[{**SERVER, "volumeMounts": [{"name": "model-store", "mountPath": "/etc/prompts"}]}], volumes=[mine])
    assert spec["volumes"][0] == mine
    ours = next(v for v in spec["volumes"] if v["name"] == "infergate-model-store")
    assert ours == {"name": "infergate-model-store", "emptyDir": {}}
    mounts = spec["containers"][0]["volumeMounts"]
    assert {"name": "infergate-model-store", "mountPath": "/mnt/models", "readOnly": True} in mounts
    assert spec["initContainers"][0]["volumeMounts"] == [{"name": "infergate-model-store", "mountPath": "/mnt/models"}]


def test_user_volume_already_at_the_model_path_is_the_weights(policy):
    mounts = [{"name": "weights", "mountPath": "/mnt/models"}]
    volumes = [{"name": "weights", "persistentVolumeClaim": {"claimName": "llama-70b"}}]
    spec, warnings = admit(policy, containers=[{**SERVER, "volumeMounts": mounts}], volumes=volumes)
    assert [v["name"] for v in spec["volumes"]] == ["weights", "dshm"]
    assert "initContainers" not in spec
    assert [m for m in spec["containers"][0]["volumeMounts"] if m["mountPath"] == "/mnt/models"] == mounts
    assert any("already mounts volume weights at /mnt/models" in w for w in warnings)


def test_user_init_container_named_model_init_is_kept(policy):
    theirs = {"name": "model-init", "image": "busybox", "command": ["sh", "-c", "echo prepare"]}
    spec, _ = admit(policy, containers=[SERVER], initContainers=[theirs])
    assert spec["initContainers"][0] == theirs
    assert spec["initContainers"][1]["name"] == "infergate-model-init"
    assert spec["initContainers"][1]["args"] == ["hf://meta-llama/Llama-3.1-70B-Instruct", "/mnt/models"]


def test_user_dev_shm_under_another_name_is_not_doubled(policy):
    volumes = [{"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "64Gi"}}]
    spec, _ = admit(policy, containers=[{**SERVER, "volumeMounts": [{"name": "shm", "mountPath": "/dev/shm"}]}], volumes=volumes)
    assert not any(v["name"] == "dshm" for v in spec["volumes"])
    assert [m["name"] for m in spec["containers"][0]["volumeMounts"] if m["mountPath"] == "/dev/shm"] == ["shm"]


def test_user_volume_named_dshm_for_something_else(policy):
    volumes = [{"name": "dshm", "secret": {"secretName": "token"}}]
    spec, _ = admit(policy, containers=[{**SERVER, "volumeMounts": [{"name": "dshm", "mountPath": "/var/run/token"}]}], volumes=volumes)
    assert spec["volumes"][0] == volumes[0]
    shm = [m for m in spec["containers"][0]["volumeMounts"] if m["mountPath"] == "/dev/shm"]
    assert shm == [{"name": "infergate-dshm", "mountPath": "/dev/shm"}]


def test_sidecar_named_model_server_is_not_merged(policy):
    proxy = {"name": "model-server", "image": "envoyproxy/envoy:v1.31", "args": ["-c", "/etc/envoy.yaml"]}
    engine = {"name": "engine", "image": "registry.example/llm:1", "resources": {"limits": {"nvidia.com/gpu": "4"}}}
    spec, _ = admit(policy, containers=[proxy, engine])
    assert spec["containers"][0] == proxy
    assert [c["name"] for c in spec["containers"]] == ["model-server", "engine"]
    assert "--model" in spec["containers"][1]["args"]


def test_host_ipc_keeps_the_hosts_shm(policy):
    from tests.webhook.test_realworld import admit

    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "chat", "namespace": "ml", "annotations": {"infergate.io/model": "llama-3.1-70b-instruct"}},
           "spec": {"hostIPC": True, "containers": [{"name": "vllm", "image": "vllm/vllm-openai:v0.11.0", "resources": {"limits": {"nvidia.com/gpu": "4"}}}]}}
    decision, admitted = admit(policy, pod)
    assert decision.allowed, decision.message
    assert not any(m["mountPath"] == "/dev/shm" for m in admitted["spec"]["containers"][0].get("volumeMounts", []))
