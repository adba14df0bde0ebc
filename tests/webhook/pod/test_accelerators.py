"""GPUs per pod counted the Kubernetes way over every container; requests equal limits; other vendors alone."""

from __future__ import annotations

import copy

import pytest

from tests.podkit import pod
from webhook.admission import decide
from webhook.pod.mutator import mutate_pod
from webhook.review import AdmissionRequest, GroupVersionKind

M70B = {"infergate.io/model": "llama-3.1-70b-instruct"}  # 4 GPUs by default
M8B = {"infergate.io/model": "llama-3.1-8b-instruct"}


def gpus(n, request=None):
    resources = {"limits": {"nvidia.com/gpu": str(n)}}
    if request is not None:
        resources["requests"] = {"nvidia.com/gpu": str(request)}
    return {"resources": resources}


def denial(policy, obj):
    request = AdmissionRequest(uid="u", kind=GroupVersionKind(group="", version="v1", kind="Pod"), operation="CREATE",
                               namespace="ml", object=copy.deepcopy(obj))
    decision = decide(request, policy, mutate=True)
    assert not decision.allowed and 400 <= decision.code < 500
    return decision


DENIED = [
    # (annotations, spec, field, words)
    pytest.param(M70B, {"containers": [{"name": "other", "image": "x", **gpus(8)}, {"name": "model-server", "image": "vllm/vllm-openai:v1"}]},
                 "metadata.annotations[infergate.io/model]", ["12 GPUs", "other: 8", "model-server: 4"],
                 id="70B in model-server plus another 8-GPU container: 12 GPUs, over the cap"),
    pytest.param(M70B, {"containers": [{"name": "model-server", "image": "v"}, {"name": "a", **gpus(1)}, {"name": "b", **gpus(1)}]},
                 "spec.containers", ["cannot tell which", "a asks for GPUs; b asks for GPUs"], id="two GPU containers: ambiguous"),
    pytest.param(M70B, {"containers": [{"name": "model-server", "image": "v", **gpus(4)}],
                        "initContainers": [{"name": "warmup-sidecar", "image": "x", "restartPolicy": "Always", **gpus(6)}]},
                 "spec.containers[0].resources.limits[nvidia.com/gpu]", ["10 GPUs", "warmup-sidecar: 6"], id="a sidecar init container adds up"),
    pytest.param(M8B, {"containers": [{"name": "model-server", "image": "v", **gpus(2, 1)}]},
                 "spec.containers[0].resources.requests[nvidia.com/gpu]", ["requests must equal limits"], id="requests differ from limits"),
    pytest.param(M8B, {"containers": [{"name": "model-server", "image": "v", "resources": {"requests": {"nvidia.com/gpu": "1"}}}]},
                 "spec.containers[0].resources.limits[nvidia.com/gpu]", ["without a limit"], id="a request without a limit"),
    pytest.param(None, {"containers": [{"name": "a", "image": "x", **gpus(2, 4)}]},
                 "spec.containers[0].resources.requests[nvidia.com/gpu]", ["requests must equal limits"], id="plain pod: requests differ"),
    pytest.param(None, {"containers": [{"name": "a", "image": "x", **gpus(6)}, {"name": "b", "image": "x", **gpus(6)}]},
                 "spec.containers[].resources", ["12 GPUs"], id="plain pod: 12 GPUs over two containers"),
    pytest.param(M8B, {"containers": [{"name": "a", "image": "x"}, {"name": "a", "image": "y"}]},
                 "spec.containers[1].name", ["used twice"], id="duplicate container names"),
    pytest.param(M8B, {"containers": [{"name": "a", "image": "x"}], "initContainers": [{"name": "a", "image": "y"}]},
                 "spec.containers[0].name", ["used twice"], id="a container and an init container with one name"),
]


@pytest.mark.parametrize(("annotations", "spec", "field", "words"), DENIED)
def test_denied(policy, annotations, spec, field, words):
    decision = denial(policy, pod(annotations, **spec))
    if field is not None:
        assert decision.field == field, decision.message
    for word in words:
        assert word in decision.message
    assert decision.message.startswith("pod ml/p: ")


def test_serving_container_with_sidecar_gpus_is_capped(policy):
    spec = {"containers": [{"name": "model-server", "image": "vllm/vllm-openai:v1"}, {"name": "cuda-sidecar", "image": "x", **gpus(8)}]}
    decision = denial(policy, pod(M70B, **spec))
    assert decision.code == 403 and "12 GPUs" in decision.message and "cuda-sidecar: 8" in decision.message


def test_init_container_gpus_count_as_the_largest_not_the_sum(policy):
    spec = {"containers": [{"name": "model-server", "image": "v", **gpus(4)}],
            "initContainers": [{"name": "check", "image": "x", **gpus(8)}]}
    edited = pod(M70B, **spec)
    mutate_pod(edited, "ml", policy)  # max(4, 8) = 8 is within the cap


@pytest.mark.parametrize("resource", ["amd.com/gpu", "gpu.intel.com/i915", "habana.ai/gaudi"])
def test_other_vendors_gpus_pass_through(policy, resource):
    container = {"name": "vllm", "image": "rocm/vllm:latest", "resources": {"limits": {resource: "2"}}}
    edited = pod(M8B, containers=[container])
    mutate_pod(edited, "ml", policy)
    server = edited["spec"]["containers"][0]
    assert server["resources"]["limits"] == {resource: "2"}
    assert "nvidia.com/gpu" not in server["resources"].get("requests", {})
    assert "tolerations" not in edited["spec"] and "affinity" not in edited["spec"]
    assert server["args"][server["args"].index("--tensor-parallel-size") + 1] == "2"
    assert {"name": "dshm", "mountPath": "/dev/shm"} in server["volumeMounts"]


def test_amd_plain_pod_gets_no_nvidia_wiring(policy):
    container = {"name": "vllm", "image": "rocm/vllm:latest", "resources": {"limits": {"amd.com/gpu": "1"}}}
    edited = pod(None, labels={"app": "x"}, containers=[container])
    mutate_pod(edited, "ml", policy)
    assert edited["metadata"]["labels"]["infergate.io/workload"] == "inference"
    assert "tolerations" not in edited["spec"] and edited["spec"]["containers"][0]["resources"] == container["resources"]
