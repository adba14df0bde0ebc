"""KServe InferenceServices the way KServe's users write them: original -> expected."""

from __future__ import annotations

import pytest

from tests.webhook.isvc.test_isvc import GPU1, KSERVE, admit, isvc

SKLEARN = {"predictor": {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": "gs://kfserving-examples/models/sklearn/1.0/model"}}}

PASS_THROUGH = [
    # (spec, a word of the warning)
    pytest.param(SKLEARN, "sklearn is not a format infergate serves", id="sklearn (KServe's first example)"),
    pytest.param({"predictor": {"model": {"modelFormat": {"name": "xgboost"}, "protocolVersion": "v2", "runtime": "kserve-mlserver",
                                           "storageUri": "gs://kfserving-examples/models/xgboost/iris"}}}, "xgboost", id="xgboost on mlserver"),
    pytest.param({"predictor": {"model": {"modelFormat": {"name": "tensorflow"}, "storageUri": "gs://kfserving-examples/models/tensorflow/flowers"}}},
                 "tensorflow", id="tensorflow"),
    pytest.param({"predictor": {"model": {"modelFormat": {"name": "triton"}, "runtimeVersion": "23.05-py3",
                                           "storageUri": "gs://kfserving-examples/models/torchscript"}}}, "triton", id="triton"),
    pytest.param({"predictor": {"model": {"modelFormat": {"name": "pmml"}, "storageUri": "gs://kfserving-examples/models/pmml"}}}, "pmml", id="pmml"),
    pytest.param({"predictor": {"sklearn": {"storageUri": "gs://kfserving-examples/models/sklearn/1.0/model"}}},
                 "spec.predictor.sklearn", id="old per-framework field"),
    pytest.param({"predictor": {"containers": [{"name": "kserve-container", "image": "kserve/custom-model-grpc:latest",
                                                "ports": [{"name": "h2c", "containerPort": 8081}]}]}}, "custom containers", id="custom containers"),
    pytest.param({"predictor": {"model": {"modelFormat": {"name": "huggingface"}, "args": ["--model_name=bert"]}}},
                 "cannot tell which model", id="huggingface without weights named anywhere"),
]


@pytest.mark.parametrize(("spec", "word"), PASS_THROUGH)
def test_non_llm_predictors_pass_through_untouched(policy, spec, word):
    decision, admitted = admit(policy, isvc(KSERVE, spec))
    assert decision.allowed and decision.patch == [], decision.message
    assert any(word in w for w in decision.warnings), decision.warnings


HF = {"name": "huggingface"}

HANDLED = [
    # (spec, annotations, expected model (without runtime/resources), expected runtime, GPUs or None for CPU)
    pytest.param({"predictor": {"model": {"modelFormat": HF, "args": ["--model_name=llama3", "--model_id=meta-llama/Llama-3.1-8B-Instruct"]}}},
                 None, "kserve-huggingfaceserver", GPU1, id="KServe docs: --model_id, no storageUri"),
    pytest.param({"predictor": {"model": {"modelFormat": HF, "storageUris": [{"uri": "hf://meta-llama/Llama-3.1-8B-Instruct", "mountPath": "/mnt/models"}]}}},
                 None, "kserve-huggingfaceserver", GPU1, id="storageUris"),
    pytest.param({"predictor": {"model": {"modelFormat": HF, "storageUri": "https://example.com/models/tiny-llama.tar.gz"}}},
                 None, "kserve-huggingfaceserver", GPU1, id="https://"),
    pytest.param({"predictor": {"model": {"modelFormat": HF, "storageUri": "oci://quay.io/example/llama-3-8b:v1"}}},
                 None, "kserve-huggingfaceserver", GPU1, id="oci:// image (modelcar)"),
    pytest.param({"predictor": {"model": {"modelFormat": HF, "storageUri": "oci+native://quay.io/example/llama-3-8b:v1"}}},
                 None, "kserve-huggingfaceserver", GPU1, id="oci+native://"),
    pytest.param({"predictor": {"model": {"modelFormat": HF, "runtime": "kserve-huggingfaceserver", "storageUri": "hf://Qwen/Qwen2.5-0.5B-Instruct"}}},
                 None, "kserve-huggingfaceserver", GPU1, id="KServe's own runtime name"),
    pytest.param({"predictor": {"model": {"modelFormat": HF, "runtime": "kserve-huggingfaceserver-multinode", "storageUri": "pvc://llama-70b/model"}}},
                 None, "kserve-huggingfaceserver-multinode", GPU1, id="KServe's multi-node runtime"),
    pytest.param({"predictor": {"model": {"modelFormat": HF, "runtime": "kserve-vllm", "storageUri": "hf://Qwen/Qwen2.5-0.5B-Instruct"}}},
                 None, "kserve-vllm", GPU1, id="an older KServe runtime name"),
    pytest.param({"predictor": {"model": {"modelFormat": HF, "storageUri": "hf://distilbert/distilbert-base-uncased",
                                           "resources": {"limits": {"cpu": "1", "memory": "2Gi"}, "requests": {"cpu": "1", "memory": "2Gi"}}}}},
                 None, "kserve-huggingfaceserver", None, id="CPU resources: no GPU added"),
    pytest.param({"predictor": {"model": {"modelFormat": HF, "storageUri": "hf://meta-llama/Llama-3.1-8B-Instruct",
                                           "resources": {"limits": {"amd.com/gpu": "1"}}}}},
                 None, "kserve-huggingfaceserver", {"limits": {"amd.com/gpu": "1"}}, id="AMD GPU: no nvidia.com/gpu"),
]


@pytest.mark.parametrize(("spec", "annotations", "runtime", "resources"), HANDLED)
def test_llm_predictors_are_defaulted(policy, spec, annotations, runtime, resources):
    decision, admitted = admit(policy, isvc(KSERVE, spec, annotations))
    assert decision.allowed, decision.message
    model = admitted["spec"]["predictor"]["model"]
    assert model.get("runtime") == runtime
    if resources is None:
        assert "nvidia.com/gpu" not in str(model.get("resources"))
        assert any("runs on CPU" in w for w in decision.warnings)
    else:
        assert model["resources"] == resources
    for key, value in spec["predictor"]["model"].items():
        assert model[key] == value or key == "resources", f"user field {key} changed"
    assert admit(policy, admitted)[0].patch == [], "re-admission changes nothing"


def test_model_annotation_with_another_storage_uri_warns(policy):
    spec = {"predictor": {"model": {"modelFormat": HF, "storageUri": "hf://meta-llama/Llama-3.2-1B"}}}
    decision, admitted = admit(policy, isvc(KSERVE, spec, {"infergate.io/model": "llama-3.1-8b-instruct"}))
    assert decision.allowed
    assert any("hf://meta-llama/Llama-3.2-1B is not the weights of model llama-3.1-8b-instruct" in w for w in decision.warnings)
    assert admitted["spec"]["predictor"]["model"]["storageUri"] == "hf://meta-llama/Llama-3.2-1B"


def test_kserve_gpu_requests_must_equal_limits(policy):
    spec = {"predictor": {"model": {"modelFormat": HF, "storageUri": "hf://meta-llama/Llama-3.1-8B-Instruct",
                                     "resources": {"limits": {"nvidia.com/gpu": "2"}, "requests": {"nvidia.com/gpu": "1"}}}}}
    decision, _ = admit(policy, isvc(KSERVE, spec))
    assert not decision.allowed and decision.code == 400
    assert decision.field == "spec.predictor.model.resources.requests.nvidia.com/gpu"
