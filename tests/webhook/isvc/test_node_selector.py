"""A component whose own nodeSelector names a GPU product keeps it: infergate writes no product annotation
that its pods would carry next to another product (they would be denied for asking for two)."""

from __future__ import annotations

import pytest

from tests.webhook.isvc.test_isvc import KSERVE, OME, admit, isvc

A100 = {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
KSERVE_SPEC = {"predictor": {"nodeSelector": A100, "model": {"modelFormat": {"name": "huggingface"},
                                                             "storageUri": "hf://deepseek-ai/DeepSeek-R1"}}}
CASES = [
    pytest.param(isvc(KSERVE, KSERVE_SPEC, {"infergate.io/model": "deepseek-r1"}), ("spec", "predictor"), id="kserve-predictor"),
    pytest.param(isvc(OME, {"model": {"name": "deepseek-r1"}, "engine": {"nodeSelector": A100}}), ("spec", "engine"), id="ome-engine"),
]


@pytest.mark.parametrize(("obj", "component"), CASES)
def test_own_product_selector_wins(policy, obj, component):
    decision, admitted = admit(policy, obj)
    assert decision.allowed, decision.message
    node = admitted
    for part in component:
        node = node[part]
    assert "infergate.io/gpu-product" not in (node.get("annotations") or {})
    assert node["nodeSelector"] == A100
    assert admit(policy, admitted)[0].patch == []


def test_without_a_selector_the_models_product_is_written(policy):
    decision, admitted = admit(policy, isvc(OME, {"model": {"name": "deepseek-r1"}}))
    assert decision.allowed and admitted["spec"]["engine"]["annotations"]["infergate.io/gpu-product"] == "NVIDIA-H100-80GB-HBM3"


def test_an_annotation_contradicting_the_selector_is_denied_on_the_inference_service(policy):
    spec = {"model": {"name": "deepseek-r1"}, "engine": {"nodeSelector": A100,
                                                         "annotations": {"infergate.io/gpu-product": "NVIDIA-H100-80GB-HBM3"}}}
    decision, _ = admit(policy, isvc(OME, spec))
    assert not decision.allowed and decision.code == 400
    assert decision.field == "spec.engine.nodeSelector[nvidia.com/gpu.product]", decision.message
