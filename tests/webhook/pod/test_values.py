"""Annotation values are read exactly as written: padded values are denied, never trimmed into an affinity."""

from __future__ import annotations

import copy

import pytest

from tests.podkit import pod
from webhook.admission import decide
from webhook.review import AdmissionRequest, GroupVersionKind

M8B = {"infergate.io/model": "llama-3.1-8b-instruct"}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("infergate.io/gpu-product", "NVIDIA-H100-80GB-HBM3\n"),  # `gpu-product: |` in YAML
        ("infergate.io/gpus", "2\n"),
        ("infergate.io/model", "llama-3.1-8b-instruct "),
        ("infergate.io/runtime", " vllm"),
        ("infergate.io/workload", "inference\n"),
        ("infergate.io/group-size", "2\n"),
        ("infergate.io/role", "leader\t"),
    ],
)
@pytest.mark.parametrize("with_model", [True, False])
def test_padded_values_are_denied(policy, key, value, with_model):
    annotations = {**(M8B if with_model else {}), key: value}
    if key == "infergate.io/group-size":
        annotations["infergate.io/group"] = "g"
    request = AdmissionRequest(uid="u", kind=GroupVersionKind(group="", version="v1", kind="Pod"), operation="CREATE",
                               namespace="ml", object=copy.deepcopy(pod(annotations)))
    decision = decide(request, policy, mutate=True)
    assert not decision.allowed and decision.code == 400
    assert decision.field == f"metadata.annotations[{key}]" and "whitespace" in decision.message
