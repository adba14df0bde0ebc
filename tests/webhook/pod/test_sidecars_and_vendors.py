"""Sidecars (init containers with restartPolicy: Always) and GPUs of several vendors in one pod."""

from __future__ import annotations

import pytest

from tests.webhook.test_realworld import admit, assert_valid_pod

MODEL = {"infergate.io/model": "llama-3.1-8b-instruct"}
VLLM = {"name": "vllm", "image": "vllm/vllm-openai:v0.11.0"}
ROCM = {"name": "rocm", "image": "rocm/vllm:latest"}


def gpus(container, **amounts):
    return {**container, "resources": {"limits": {k.replace("_", ".").replace(".gpu", "/gpu"): str(v) for k, v in amounts.items()}}}


def pod(containers, init=None):
    spec = {"containers": containers}
    if init:
        spec["initContainers"] = init
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "chat", "namespace": "ml", "annotations": MODEL}, "spec": spec}


DENIED = [
    # (pod, field)
    pytest.param(pod([gpus(VLLM, nvidia_com_gpu=1, amd_com_gpu=1)]), "spec.containers[0].resources.limits", id="two-vendors-one-container"),
    pytest.param(pod([{"name": "app", "image": "registry.example/app:1"}],
                     [{**gpus(VLLM, nvidia_com_gpu=1), "restartPolicy": "Always"}]), "spec.initContainers[0]", id="gpu-sidecar-server"),
    pytest.param(pod([{"name": "app", "image": "registry.example/app:1"}],
                     [{**VLLM, "restartPolicy": "Always", "command": ["vllm", "serve", "m"]}]), "spec.initContainers[0]", id="sidecar-runs-vllm"),
    pytest.param(pod([gpus(VLLM, nvidia_com_gpu=1)], [{**gpus({"name": "side", "image": "x"}, nvidia_com_gpu=8), "restartPolicy": "Always"}]),
                 "spec.containers[0].resources.limits[nvidia.com/gpu]", id="sidecar-gpus-count-against-the-cap"),
]


@pytest.mark.parametrize(("original", "field"), DENIED)
def test_denied(policy, original, field):
    decision, _ = admit(policy, original)
    assert not decision.allowed and 400 <= decision.code < 500 and decision.field == field, decision.message
    assert decision.message.startswith("pod ml/chat: ")


ADMITTED = [
    # (pod, the serving container, whether the NVIDIA toleration is added)
    pytest.param(pod([gpus(ROCM, amd_com_gpu=2), gpus({"name": "embed", "image": "registry.example/embed:1"}, nvidia_com_gpu=1)]),
                 "rocm", True, id="amd-server-beside-an-nvidia-container"),
    pytest.param(pod([gpus(ROCM, amd_com_gpu=2)]), "rocm", False, id="amd-only"),
    pytest.param(pod([gpus(VLLM, nvidia_com_gpu=1)], [{"name": "istio-proxy", "image": "istio/proxyv2:1.27", "restartPolicy": "Always"}]),
                 "vllm", True, id="mesh-sidecar"),
]


@pytest.mark.parametrize(("original", "serving", "toleration"), ADMITTED)
def test_admitted(policy, original, serving, toleration):
    decision, admitted = admit(policy, original)
    assert decision.allowed, decision.message
    assert_valid_pod(admitted)
    names = [c["name"] for c in admitted["spec"]["containers"]]
    assert names == [c["name"] for c in original["spec"]["containers"]], "no second server"
    server = next(c for c in admitted["spec"]["containers"] if c["name"] == serving)
    assert "--model" in server.get("args", [])
    assert any(t.get("key") == "nvidia.com/gpu" for t in admitted["spec"].get("tolerations", [])) == toleration
    assert admit(policy, admitted)[0].patch == []


@pytest.mark.parametrize("resource", ["amd.com/gpu", "gpu.intel.com/i915", "habana.ai/gaudi", "aws.amazon.com/neuron", "google.com/tpu"])
def test_every_vendors_accelerators_count_against_the_cap(policy, resource):
    other = {"name": "helper", "image": "registry.example/helper:1", "resources": {"limits": {resource: "4"}}}
    decision, _ = admit(policy, pod([gpus(VLLM, nvidia_com_gpu=8), other]))
    assert not decision.allowed and decision.code == 403 and f"4 {resource}" in decision.message, decision.message
