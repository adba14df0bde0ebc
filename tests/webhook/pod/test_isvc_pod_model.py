"""KServe copies an InferenceService's annotations onto its predictor pods (and OME onto its component pods),
so `infergate.io/model`, which users put on KServe InferenceServices, reaches pods whose serving container the
controller built from its own runtime (kserve-container running KServe's Hugging Face server, storage from
KServe's storage initializer). The pod webhook never merges a runtime into those: the model only classes the
pod, and its GPUs get the placement wiring, whichever of KServe's pod webhook and ours runs first."""

from __future__ import annotations

import copy

import pytest

from tests.webhook.test_realworld import admit, assert_no_user_field_lost, assert_valid_pod

MODEL = "llama-3.1-8b-instruct"
GPU = {"limits": {"nvidia.com/gpu": "1", "cpu": "4", "memory": "16Gi"}, "requests": {"nvidia.com/gpu": "1", "cpu": "4", "memory": "16Gi"}}


def kserve_pod(after_kserve_webhook: bool) -> dict:
    annotations = {"infergate.io/model": MODEL, "serving.kserve.io/deploymentMode": "RawDeployment",
                   "internal.serving.kserve.io/storage-initializer-sourceuri": "hf://meta-llama/Llama-3.1-8B-Instruct"}
    labels = {"serving.kserve.io/inferenceservice": "llama", "component": "predictor", "app": "isvc.llama-predictor"}
    container = {"name": "kserve-container", "image": "kserve/huggingfaceserver:v0.15.2",
                 "args": ["--model_name=llama", "--model_dir=/mnt/models"], "resources": GPU}
    spec = {"containers": [container]}
    if after_kserve_webhook:  # what KServe's storage-initializer injector adds
        spec["initContainers"] = [{"name": "storage-initializer", "image": "kserve/storage-initializer:v0.15.2",
                                   "args": ["hf://meta-llama/Llama-3.1-8B-Instruct", "/mnt/models"],
                                   "volumeMounts": [{"name": "kserve-provision-location", "mountPath": "/mnt/models"}]}]
        spec["volumes"] = [{"name": "kserve-provision-location", "emptyDir": {}}]
        container["volumeMounts"] = [{"name": "kserve-provision-location", "mountPath": "/mnt/models", "readOnly": True}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "llama-predictor-6d4cf56db6-x7k2p", "namespace": "ml",
                                                            "labels": labels, "annotations": annotations}, "spec": spec}


def ome_pod() -> dict:
    labels = {"ome.io/inferenceservice": "llama", "component": "engine"}
    annotations = {"infergate.io/model": MODEL, "infergate.io/gpu-product": "NVIDIA-H100-80GB-HBM3"}
    container = {"name": "ome-container", "image": "docker.io/lmsysorg/sglang:v0.4.8", "resources": GPU,
                 "command": ["python3", "-m", "sglang.launch_server", "--model-path", "/mnt/models", "--port", "8080"]}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "llama-engine-5f7d9-abcde", "namespace": "ml",
                                                            "labels": labels, "annotations": annotations},
            "spec": {"containers": [container]}}


CASES = [
    pytest.param(kserve_pod(False), None, id="kserve-before-kserve-webhook"),
    pytest.param(kserve_pod(True), None, id="kserve-after-kserve-webhook"),
    pytest.param(ome_pod(), "NVIDIA-H100-80GB-HBM3", id="ome-engine"),
]


@pytest.mark.parametrize(("original", "product"), CASES)
def test_controller_built_containers_are_not_merged(policy, original, product):
    decision, admitted = admit(policy, copy.deepcopy(original))
    assert decision.allowed, decision.message
    assert admitted["spec"]["containers"] == original["spec"]["containers"], "the controller's serving container is untouched"
    assert admitted["spec"].get("initContainers") == original["spec"].get("initContainers")
    assert admitted["spec"].get("volumes") == original["spec"].get("volumes"), "no second volume at /mnt/models"
    assert admitted["metadata"]["labels"]["infergate.io/workload"] == "inference"
    assert admitted["spec"]["priorityClassName"] == "infergate-inference"
    assert any(t["key"] == "nvidia.com/gpu" for t in admitted["spec"]["tolerations"])
    terms = admitted["spec"].get("affinity", {}).get("nodeAffinity", {}).get("requiredDuringSchedulingIgnoredDuringExecution", {}).get("nodeSelectorTerms")
    assert (terms is not None) == (product is not None)
    assert any("came from the InferenceService" in w for w in decision.warnings)
    assert_valid_pod(admitted)
    assert_no_user_field_lost(original, admitted)
    assert admit(policy, admitted)[0].patch == []


def test_a_pod_of_neither_controller_with_the_model_is_injected(policy):
    original = kserve_pod(False)
    del original["metadata"]["labels"]["serving.kserve.io/inferenceservice"]
    decision, admitted = admit(policy, original)
    assert decision.allowed and admitted["spec"]["containers"] != original["spec"]["containers"]
