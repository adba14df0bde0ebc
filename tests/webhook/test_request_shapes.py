"""Requests the API server never sends but a client can: an object whose metadata is not an object and no
request namespace, an UPDATE whose oldObject has the wrong shape. A 400 naming the field, never a 5xx."""

from __future__ import annotations

import pytest

from webhook.admission import decide
from webhook.review import AdmissionRequest, GroupVersionKind

POD = {"metadata": {"name": "p", "annotations": {"infergate.io/injected": "{}"}},
       "spec": {"containers": [{"name": "vllm", "image": "vllm/vllm-openai:v0.11.0", "args": ["--port", "8000"]}]}}

CASES = [
    # (group, kind, operation, object, oldObject, field)
    pytest.param("", "Pod", "CREATE", {"metadata": "x", "spec": {"containers": []}}, None, "metadata", id="pod-metadata-string"),
    pytest.param("", "Pod", "UPDATE", {"metadata": ["x"], "spec": {"containers": []}}, None, "metadata", id="pod-update-metadata-list"),
    pytest.param("", "Pod", "CREATE", {"metadata": {"namespace": 5}, "spec": "x"}, None, "spec", id="pod-namespace-number"),
    pytest.param("", "Pod", "UPDATE", POD, {"metadata": {}, "spec": ["x"]}, "oldObject.spec", id="old-spec-list"),
    pytest.param("", "Pod", "UPDATE", POD, {"metadata": "x", "spec": {"containers": []}}, "oldObject.metadata", id="old-metadata-string"),
    pytest.param("ome.io", "InferenceService", "CREATE", {"metadata": "x", "spec": {}}, None, "metadata", id="ome-metadata-string"),
    pytest.param("serving.kserve.io", "InferenceService", "UPDATE", {"metadata": 5, "spec": {}}, None, "metadata", id="kserve-metadata-number"),
]


@pytest.mark.parametrize(("group", "kind", "operation", "obj", "old", "field"), CASES)
def test_never_a_5xx(policy, group, kind, operation, obj, old, field):
    request = AdmissionRequest(uid="u", kind=GroupVersionKind(group=group, version="v1beta1" if group else "v1", kind=kind),
                               operation=operation, namespace=None, object=obj, oldObject=old)
    decision = decide(request, policy, mutate=True)
    assert not decision.allowed and decision.code == 400 and decision.field == field, decision.message
    assert decision.message.startswith(("pod default/", "InferenceService default/")), decision.message
