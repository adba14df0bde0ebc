"""GPUs from Dynamic Resource Allocation: a serving container with `resources.claims` (NVIDIA's DRA driver)
gets no device-plugin nvidia.com/gpu beside its claim, which would ask for the GPUs twice."""

from __future__ import annotations

import pytest

from tests.webhook.test_realworld import admit, assert_no_user_field_lost

CLAIMS = {"resourceClaims": [{"name": "gpus", "resourceClaimTemplateName": "eight-h100"}]}


def pod(annotations, resources):
    container = {"name": "vllm", "image": "vllm/vllm-openai:v0.11.0", "resources": resources}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "chat", "namespace": "ml", "annotations": annotations},
            "spec": {"containers": [container], **CLAIMS}}


CASES = [
    # (annotations, resources, nvidia.com/gpu after admission, denied field)
    pytest.param({"infergate.io/model": "llama-3.1-8b-instruct"}, {"claims": [{"name": "gpus"}]}, None, None, id="claims-only"),
    pytest.param({"infergate.io/model": "llama-3.1-8b-instruct"}, {"claims": [{"name": "gpus"}], "limits": {"nvidia.com/gpu": "2"}}, "2", None,
                 id="claims-and-device-plugin-limit-kept"),
    pytest.param({"infergate.io/model": "qwen2.5-0.5b-instruct", "infergate.io/gpu-fraction": "0.5"}, {"claims": [{"name": "gpus"}]}, None,
                 "metadata.annotations[infergate.io/gpu-fraction]", id="claims-and-a-share"),
    pytest.param({"infergate.io/model": "llama-3.1-8b-instruct"}, {}, "1", None, id="no-claims"),
]


@pytest.mark.parametrize(("annotations", "resources", "gpus", "denied"), CASES)
def test_dra_claims(policy, annotations, resources, gpus, denied):
    original = pod(annotations, resources)
    decision, admitted = admit(policy, original)
    if denied:
        assert not decision.allowed and decision.field == denied and decision.code == 400, decision.message
        return
    assert decision.allowed, decision.message
    limits = (admitted["spec"]["containers"][0].get("resources") or {}).get("limits") or {}
    assert limits.get("nvidia.com/gpu") == gpus
    assert_no_user_field_lost(original, admitted)
    assert admit(policy, admitted)[0].patch == []
