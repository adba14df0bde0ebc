"""Wrongly typed fields get a 4xx naming the object and the field, never a 5xx.

The API server runs the CRD's schema check after the mutating webhooks, so such objects do reach the webhook.
"""

from __future__ import annotations

import pytest

from tests.webhook.isvc.test_isvc import KSERVE, OME, admit, isvc

L8B = {"name": "llama-3.1-8b-instruct"}
HF = {"name": "huggingface"}

CASES = [
    # (object, field)
    pytest.param(isvc(KSERVE, {"predictor": {"model": {"modelFormat": HF, "storageUri": 5}}}), "spec.predictor.model.storageUri", id="storageUri: 5"),
    pytest.param(isvc(KSERVE, {"predictor": {"model": {"modelFormat": HF, "storageUris": "hf://x/y"}}}), "spec.predictor.model.storageUris", id="storageUris a string"),
    pytest.param(isvc(KSERVE, {"predictor": {"model": {"modelFormat": "huggingface", "storageUri": "hf://a/b"}}}), "spec.predictor.model.modelFormat", id="modelFormat a string"),
    pytest.param(isvc(KSERVE, {"predictor": {"model": {"modelFormat": {"name": 7}, "storageUri": "hf://a/b"}}}), "spec.predictor.model.modelFormat.name", id="format name a number"),
    pytest.param(isvc(KSERVE, {"predictor": {"model": {"modelFormat": HF, "storageUri": "hf://a/b", "runtime": ["vllm"]}}}), "spec.predictor.model.runtime", id="runtime a list"),
    pytest.param(isvc(KSERVE, {"predictor": {"model": {"modelFormat": HF, "storageUri": "hf://a/b", "resources": {"limits": "8"}}}}), "spec.predictor.model.resources.limits", id="limits a string"),
    pytest.param(isvc(KSERVE, {"predictor": {"model": {"modelFormat": HF, "storageUri": "hf://a/b", "resources": ["x"]}}}), "spec.predictor.model.resources", id="resources a list"),
    pytest.param(isvc(KSERVE, {"predictor": {"annotations": "x", "model": {"modelFormat": HF, "storageUri": "hf://deepseek-ai/DeepSeek-R1"}}}), "spec.predictor.annotations", id="kserve annotations a string"),
    pytest.param(isvc(KSERVE, {"predictor": "x"}), "spec.predictor", id="predictor a string"),
    pytest.param(isvc(OME, {"model": L8B, "engine": {"leader": {"runner": "x"}}}), "spec.engine.leader.runner", id="OME leader.runner: x"),
    pytest.param(isvc(OME, {"model": L8B, "engine": {"runner": "x"}}), "spec.engine.runner", id="OME runner a string"),
    pytest.param(isvc(OME, {"model": L8B, "engine": {"runner": {"resources": "x"}}}), "spec.engine.runner.resources", id="OME resources a string"),
    pytest.param(isvc(OME, {"model": L8B, "engine": {"worker": "x"}}), "spec.engine.worker", id="OME worker a string"),
    pytest.param(isvc(OME, {"model": L8B, "engine": {"worker": {"size": "2"}}}), "spec.engine.worker.size", id="OME worker size a string"),
    pytest.param(isvc(OME, {"model": L8B, "decoder": "x", "engine": {}}), "spec.decoder", id="OME decoder a string"),
    pytest.param(isvc(OME, {"model": {"name": 5}}), "spec.model.name", id="OME model name a number"),
    pytest.param(isvc(OME, {"model": L8B, "runtime": {"name": {"a": 1}}}), "spec.runtime.name", id="OME runtime name an object"),
    pytest.param(isvc(OME, {"predictor": {"model": "x"}}), "spec.predictor.model", id="OME legacy model a string"),
    pytest.param(isvc(OME, {"model": L8B, "engine": {"annotations": ["x"]}}), "spec.engine.annotations", id="OME engine annotations a list"),
    pytest.param(isvc(KSERVE, {"predictor": {"annotations": {"infergate.io/gpu-product": " H100"}, "sklearn": {}}}),
                 "spec.predictor.annotations[infergate.io/gpu-product]", id="KServe padded gpu-product"),
    pytest.param(isvc(OME, {"model": L8B, "engine": {"annotations": {"infergate.io/gpu-product": "H100\n"}}}),
                 "spec.engine.annotations[infergate.io/gpu-product]", id="OME padded gpu-product"),
]


@pytest.mark.parametrize(("obj", "field"), CASES)
def test_wrong_types_are_a_4xx_naming_the_field(policy, obj, field):
    for mutate in (True, False):
        decision, _ = admit(policy, obj, mutate=mutate)
        assert not decision.allowed and 400 <= decision.code < 500, decision
        assert decision.message.startswith("InferenceService ml/svc"), decision.message
        assert decision.field == field, decision.message
