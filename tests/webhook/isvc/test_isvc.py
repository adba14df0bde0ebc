"""InferenceService admission: defaulting and validation, table-driven, through the same decide() as the server."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import jsonpatch
import pytest

from webhook.admission import decide
from webhook.review import AdmissionRequest, GroupVersionKind

OME = "ome.io"
KSERVE = "serving.kserve.io"


def isvc(group: str, spec: dict[str, Any], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "svc", "namespace": "ml"}
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": f"{group}/v1beta1", "kind": "InferenceService", "metadata": metadata, "spec": spec}


def admit(policy, obj: dict[str, Any], *, mutate: bool = True, operation: str = "CREATE", namespace: str = "ml"):
    group = obj["apiVersion"].split("/")[0]
    request = AdmissionRequest(
        uid=str(uuid.uuid4()), kind=GroupVersionKind(group=group, version="v1beta1", kind="InferenceService"),
        operation=operation, namespace=namespace, object=copy.deepcopy(obj),
    )
    decision = decide(request, policy, mutate=mutate)
    admitted = jsonpatch.apply_patch(obj, decision.patch) if decision.patch else obj
    return decision, admitted


GPU1 = {"limits": {"nvidia.com/gpu": "1"}, "requests": {"nvidia.com/gpu": "1"}}
GPU4 = {"limits": {"nvidia.com/gpu": "4"}, "requests": {"nvidia.com/gpu": "4"}}
GPU8 = {"limits": {"nvidia.com/gpu": "8"}, "requests": {"nvidia.com/gpu": "8"}}
H100 = {"infergate.io/gpu-product": "NVIDIA-H100-80GB-HBM3"}

DEFAULTING = [
    pytest.param(
        isvc(OME, {"model": {"name": "llama-3.1-8b-instruct"}}),
        {"model": {"name": "llama-3.1-8b-instruct"},
         "engine": {"minReplicas": 1, "maxReplicas": 1, "runner": {"name": "ome-container", "resources": GPU1}}},
        "RawDeployment", id="ome: runtime, engine, replicas and GPUs",
    ),
    pytest.param(
        isvc(OME, {"model": {"name": "llama-3.1-70b-instruct"}, "engine": {"maxReplicas": 3, "runner": {"resources": {"limits": {"nvidia.com/gpu": "8"}}}}}),
        {"model": {"name": "llama-3.1-70b-instruct"},
         "engine": {"minReplicas": 1, "maxReplicas": 3, "runner": {"name": "ome-container", "resources": GPU8}}},
        "RawDeployment", id="ome: the user's GPUs and bounds win",
    ),
    pytest.param(
        isvc(OME, {"model": {"name": "deepseek-r1"}}),
        {"model": {"name": "deepseek-r1"},
         "engine": {"minReplicas": 1, "maxReplicas": 1, "annotations": H100, "worker": {"size": 1, "runner": {"name": "ome-container", "resources": GPU8}},
                    "leader": {"runner": {"name": "ome-container", "resources": GPU8}}}},
        "MultiNode", id="ome: multi-node model gets leader and workers",
    ),
    pytest.param(
        isvc(OME, {"model": {"name": "llama-3.1-8b-instruct"}, "engine": {}, "decoder": {"minReplicas": 2}, "router": {}}),
        {"model": {"name": "llama-3.1-8b-instruct"},
         "engine": {"minReplicas": 1, "maxReplicas": 1, "runner": {"name": "ome-container", "resources": GPU1}},
         "decoder": {"minReplicas": 2, "maxReplicas": 2, "runner": {"name": "ome-container", "resources": GPU1}},
         "router": {"minReplicas": 1, "maxReplicas": 1}},
        "PDDisaggregated", id="ome: prefill/decode",
    ),
    pytest.param(
        isvc(OME, {"predictor": {"model": {"baseModel": "llama-3.1-8b-instruct"}}}),
        {"predictor": {"model": {"baseModel": "llama-3.1-8b-instruct"}, "minReplicas": 1, "maxReplicas": 1}},
        "RawDeployment", id="ome: legacy predictor",
    ),
]


@pytest.mark.parametrize(("obj", "spec", "mode"), DEFAULTING)
def test_ome_defaulting(policy, obj, spec, mode):
    decision, admitted = admit(policy, obj)
    assert decision.allowed, decision.message
    assert admitted["spec"] == spec
    assert admitted["metadata"]["annotations"]["ome.io/deploymentMode"] == mode
    assert admit(policy, admitted)[0].patch == [], "admitting the output again changes nothing"


def test_ome_user_deployment_mode_wins(policy):
    decision, admitted = admit(policy, isvc(OME, {"model": {"name": "llama-3.1-8b-instruct"}}, {"ome.io/deploymentMode": "Serverless"}))
    assert admitted["metadata"]["annotations"]["ome.io/deploymentMode"] == "Serverless"


def test_selection_warnings(policy):
    decision, _ = admit(policy, isvc(OME, {"model": {"name": "deepseek-r1"}}))
    assert decision.warnings[0] == "runtime sglang selected: the model's preferred runtime"
    assert "runtime vllm passed over: cannot run a model across 2 pods (no multiNode in the runtime)" in decision.warnings


KSERVE_DEFAULTING = [
    pytest.param(
        isvc(KSERVE, {"predictor": {"model": {"modelFormat": {"name": "huggingface"}, "storageUri": "hf://meta-llama/Llama-3.1-8B-Instruct"}}}),
        {"predictor": {"minReplicas": 1, "maxReplicas": 1, "model": {"modelFormat": {"name": "huggingface"}, "storageUri": "hf://meta-llama/Llama-3.1-8B-Instruct", "runtime": "kserve-huggingfaceserver", "resources": GPU1}}},
        id="kserve: policy model found by storageUri",
    ),
    pytest.param(
        isvc(KSERVE, {"predictor": {"model": {"modelFormat": {"name": "huggingface"}}}}, {"infergate.io/model": "llama-3.1-70b-instruct"}),
        {"predictor": {"minReplicas": 1, "maxReplicas": 1, "model": {"modelFormat": {"name": "huggingface"}, "runtime": "kserve-huggingfaceserver", "resources": GPU4}}},
        id="kserve: policy model named by annotation",
    ),
    pytest.param(
        isvc(KSERVE, {"predictor": {"model": {"modelFormat": {"name": "huggingface"}, "storageUri": "s3://bucket/my-model", "runtime": "vllm"}}}),
        {"predictor": {"minReplicas": 1, "maxReplicas": 1, "model": {"modelFormat": {"name": "huggingface"}, "storageUri": "s3://bucket/my-model", "runtime": "kserve-huggingfaceserver", "resources": GPU1}}},
        id="kserve: ad-hoc model with a named runtime",
    ),
    pytest.param(
        isvc(KSERVE, {"predictor": {"model": {"modelFormat": {"name": "huggingface"}, "storageUri": "hf://deepseek-ai/DeepSeek-R1"}}}),
        {"predictor": {"minReplicas": 1, "maxReplicas": 1, "annotations": H100, "workerSpec": {"pipelineParallelSize": 2, "tensorParallelSize": 8},
                       "model": {"modelFormat": {"name": "huggingface"}, "storageUri": "hf://deepseek-ai/DeepSeek-R1", "resources": GPU8}}},
        id="kserve: multi-node workerSpec",
    ),
]


@pytest.mark.parametrize(("obj", "spec"), KSERVE_DEFAULTING)
def test_kserve_defaulting(policy, obj, spec):
    decision, admitted = admit(policy, obj)
    assert decision.allowed, decision.message
    assert admitted["spec"] == spec
    assert admit(policy, admitted)[0].patch == []


DENIALS = [
    pytest.param(isvc(OME, {}), "spec.model.name", "needs the model", id="ome no model"),
    pytest.param(isvc(OME, {"model": {"name": "deepseek-r1"}, "runtime": {"name": "vllm"}}), "spec.runtime.name", "runtime vllm cannot serve model deepseek-r1", id="ome runtime cannot serve"),
    pytest.param(isvc(OME, {"model": {"name": "llama-3.1-8b-instruct"}, "decoder": {}}), "spec.engine", "a decoder needs an engine", id="decoder without engine"),
    pytest.param(isvc(OME, {"model": {"name": "llama-3.1-8b-instruct"}, "engine": {"minReplicas": 3, "maxReplicas": 2}}), "spec.engine.maxReplicas", "maxReplicas 2 is less than minReplicas 3", id="bounds reversed"),
    pytest.param(isvc(OME, {"model": {"name": "llama-3.1-8b-instruct"}, "engine": {"minReplicas": -1}}), "spec.engine.minReplicas", "negative", id="negative min"),
    pytest.param(isvc(OME, {"model": {"name": "llama-3.1-8b-instruct"}, "router": {"maxReplicas": "two"}}), "spec.router.maxReplicas", "not a whole number", id="malformed max"),
    pytest.param(isvc(OME, {"model": {"name": "llama-3.1-8b-instruct"}, "engine": {"runner": {"resources": {"limits": {"nvidia.com/gpu": "16"}}}}}), "spec.engine.runner.resources.limits.nvidia.com/gpu", "more than the 8", id="too many GPUs"),
    pytest.param(isvc(OME, {"model": "llama"}), "spec.model", "must be an object", id="ome model not an object"),
    pytest.param(isvc(KSERVE, {}), "spec.predictor", "needs a predictor", id="kserve no predictor"),
    pytest.param(isvc(KSERVE, {"predictor": {"model": {"modelFormat": {"name": "huggingface"}, "storageUri": "ftp://x"}}}), "spec.predictor.model.storageUri", "not a storage URI", id="kserve bad uri"),
    pytest.param(isvc(KSERVE, {"predictor": {"model": {"storageUri": "s3://bucket/m"}}}), "spec.predictor.model.modelFormat.name", "format", id="kserve no format"),
    pytest.param(isvc(KSERVE, {"predictor": {"model": {"modelFormat": {"name": "onnx"}, "storageUri": "s3://bucket/m", "runtime": "vllm"}}}), "spec.predictor.model.runtime", "runtime vllm cannot serve model svc: format onnx", id="kserve named runtime cannot serve the format"),
]


@pytest.mark.parametrize(("obj", "field", "words"), DENIALS)
def test_denials(policy, obj, field, words):
    for mutate in (True, False):
        decision, _ = admit(policy, obj, mutate=mutate)
        assert not decision.allowed
        assert decision.field == field
        assert decision.message.startswith("InferenceService ml/svc: ")
        assert words in decision.message


def test_namespace_rules_apply(restricted_policy):
    obj = isvc(OME, {"model": {"name": "llama-3.1-70b-instruct"}})
    decision, _ = admit(restricted_policy, obj, namespace="team-small")
    assert not decision.allowed and "may not use model llama-3.1-70b-instruct" in decision.message
    adhoc = isvc(KSERVE, {"predictor": {"model": {"modelFormat": {"name": "huggingface"}, "storageUri": "s3://bucket/m"}}})
    decision, _ = admit(restricted_policy, adhoc, namespace="team-small")
    assert not decision.allowed and "may only use the policy's models" in decision.message


def test_update_is_admitted_too(policy):
    decision, admitted = admit(policy, isvc(OME, {"model": {"name": "llama-3.1-8b-instruct"}}), operation="UPDATE")
    assert decision.allowed and "runtime" not in admitted["spec"]
    assert admitted["metadata"]["labels"]["infergate.io/runtime"] == "vllm"


def test_validate_does_not_patch(policy):
    decision, _ = admit(policy, isvc(OME, {"model": {"name": "llama-3.1-8b-instruct"}}), mutate=False)
    assert decision.allowed and decision.patch == []
