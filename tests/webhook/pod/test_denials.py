"""Pods that cannot be served are denied before any edit, with a message naming the object and the field."""

import copy

import pytest

from tests.podkit import pod
from webhook.admission import decide
from webhook.errors import AdmissionDenied
from webhook.pod.mutator import mutate_pod
from webhook.review import AdmissionRequest, GroupVersionKind

M8B = {"infergate.io/model": "llama-3.1-8b-instruct"}
LWS = {"leaderworkerset.sigs.k8s.io/name": "ds", "leaderworkerset.sigs.k8s.io/group-index": "0", "leaderworkerset.sigs.k8s.io/worker-index": "1"}

CASES = [
    # (annotations, labels, spec, namespace, code, field, words in the message)
    pytest.param({"infergate.io/model": "gpt-9"}, {}, {}, "ml", 404, "metadata.annotations[infergate.io/model]", ["unknown model", "llama-3.1-8b-instruct"], id="unknown model"),
    pytest.param({**M8B, "infergate.io/runtime": "tgi"}, {}, {}, "ml", 404, "metadata.annotations[infergate.io/runtime]", ["unknown runtime", "vllm"], id="unknown runtime"),
    pytest.param({"infergate.io/model": "deepseek-r1", "infergate.io/runtime": "vllm"}, LWS, {}, "ml", 403, "metadata.annotations[infergate.io/runtime]", ["cannot serve", "multiNode"], id="runtime cannot serve the model"),
    pytest.param({**M8B, "infergate.io/gpus": "2", "infergate.io/gpu-fraction": "0.5"}, {}, {}, "ml", 400, "metadata.annotations[infergate.io/gpu-fraction]", ["not both"], id="gpus with gpu-fraction"),
    pytest.param({**M8B, "infergate.io/gpus": "two"}, {}, {}, "ml", 400, "metadata.annotations[infergate.io/gpus]", ["'two'"], id="malformed gpus"),
    pytest.param({**M8B, "infergate.io/gpus": "0"}, {}, {}, "ml", 400, "metadata.annotations[infergate.io/gpus]", ["whole number"], id="zero gpus"),
    pytest.param({**M8B, "infergate.io/gpus": "16"}, {}, {}, "ml", 403, "metadata.annotations[infergate.io/gpus]", ["more than the 8"], id="more gpus than allowed"),
    pytest.param({**M8B, "infergate.io/gpu-fraction": "1.5"}, {}, {}, "ml", 400, "metadata.annotations[infergate.io/gpu-fraction]", ["between 0 and 1"], id="fraction above one"),
    pytest.param({**M8B, "infergate.io/gpu-fraction": "0.0001"}, {}, {}, "ml", 400, "metadata.annotations[infergate.io/gpu-fraction]", ["3 decimals"], id="fraction too fine"),
    pytest.param({**M8B, "infergate.io/gpu-product": "H100 --privileged"}, {}, {}, "ml", 400, "metadata.annotations[infergate.io/gpu-product]", ["label value"], id="product with spaces"),
    pytest.param({**M8B, "infergate.io/workload": "batch"}, {}, {}, "ml", 400, "metadata.annotations[infergate.io/workload]", ["inference, training"], id="unknown workload class"),
    pytest.param({"infergate.io/model": "deepseek-r1"}, {}, {}, "ml", 403, "metadata.annotations[infergate.io/group]", ["group of 2 pods", "LeaderWorkerSet"], id="multi-node model without a group"),
    pytest.param({"infergate.io/model": "deepseek-r1", "leaderworkerset.sigs.k8s.io/size": "4"}, LWS, {}, "ml", 400, "metadata.annotations[infergate.io/group-size]", ["has size 4"], id="wrong group size"),
    pytest.param({"infergate.io/model": "deepseek-r1", "infergate.io/group": "g", "infergate.io/group-size": "2"}, {}, {}, "ml", 400, "metadata.labels[leaderworkerset.sigs.k8s.io/worker-index]", ["rank"], id="worker rank unknown"),
    pytest.param({"infergate.io/group": "g"}, {}, {}, "ml", 400, "metadata.annotations[infergate.io/group-size]", ["group-size"], id="group without size"),
    pytest.param(M8B, {}, {"containers": [{"name": "model-server", "resources": {"limits": {"nvidia.com/gpu": "x"}}}]}, "ml", 400, "spec.containers[0].resources.limits[nvidia.com/gpu]", ["not a whole number"], id="malformed container gpu limit"),
    pytest.param({**M8B, "infergate.io/gpus": "2"}, {}, {"containers": [{"name": "model-server", "resources": {"limits": {"nvidia.com/gpu": "4"}}}]}, "ml", 400, "metadata.annotations[infergate.io/gpus]", ["make them agree"], id="annotation and limit disagree"),
    pytest.param({"infergate.io/model": "Llama!"}, {}, {}, "ml", 400, "metadata.annotations[infergate.io/model]", ["not a valid name"], id="malformed model name"),
]


@pytest.mark.parametrize(("annotations", "labels", "spec", "namespace", "code", "field", "words"), CASES)
def test_denied(policy, annotations, labels, spec, namespace, code, field, words):
    original = pod(annotations, labels=labels, **spec)
    edited = copy.deepcopy(original)
    with pytest.raises(AdmissionDenied) as denied:
        mutate_pod(edited, namespace, policy)
    assert denied.value.code == code
    assert denied.value.field == field
    assert f"pod {namespace}/p" in denied.value.message
    for word in words:
        assert word in denied.value.message
    assert edited == original, "nothing is half-applied"


RESTRICTED = [
    pytest.param({"infergate.io/model": "llama-3.1-70b-instruct"}, "may not use model", id="model not allowed"),
    pytest.param({**M8B, "infergate.io/runtime": "sglang"}, "may not use runtime sglang", id="runtime not allowed"),
    pytest.param({**M8B, "infergate.io/gpus": "4"}, "more than the 2", id="more GPUs than the namespace may use"),
    pytest.param({**M8B, "infergate.io/workload": "inference"}, "may not run inference", id="inference class not allowed"),
]


@pytest.mark.parametrize(("annotations", "words"), RESTRICTED)
def test_namespace_permissions(restricted_policy, annotations, words):
    annotations = {"infergate.io/workload": "training", **annotations}
    with pytest.raises(AdmissionDenied) as denied:
        mutate_pod(pod(annotations), "team-small", restricted_policy)
    assert words in denied.value.message


def test_namespace_without_a_rule(restricted_policy, policy):
    from policies.loader import Policy
    from policies.schema import ClusterPolicy

    cluster = ClusterPolicy.model_validate({"apiVersion": "infergate.io/v1alpha1", "kind": "ClusterPolicy", "metadata": {"name": "none"}})
    bare = Policy(policy.models, policy.runtimes, cluster, "test")
    with pytest.raises(AdmissionDenied) as denied:
        mutate_pod(pod(M8B), "ml", bare)
    assert "no namespace rule" in denied.value.message
    # A plain GPU-less pod there still gets the training class.
    assert mutate_pod(pod({}), "ml", bare).patch


def test_allowed_within_restrictions(restricted_policy):
    mutation = mutate_pod(pod({**M8B, "infergate.io/workload": "training", "infergate.io/gpus": "2"}), "team-small", restricted_policy)
    assert mutation.patch


NAMED = [
    pytest.param({"name": "llama-0"}, "pod ml/llama-0: ", id="name"),
    pytest.param({"generateName": "llama-"}, "pod ml/llama-*: ", id="generateName"),
    # Regression: the planner named such a pod `ml/*` and admission, not finding its own name, named it twice.
    pytest.param({}, "pod ml/(unnamed): metadata.annotations", id="neither"),
]


@pytest.mark.parametrize(("metadata", "start"), NAMED)
def test_a_denial_names_the_pod_once(policy, metadata, start):
    original = {"apiVersion": "v1", "kind": "Pod", "metadata": {**metadata, "annotations": {"infergate.io/model": "gpt-9"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    request = AdmissionRequest(uid="u", kind=GroupVersionKind(group="", version="v1", kind="Pod"), operation="CREATE",
                               namespace="ml", object=original)
    decision = decide(request, policy, mutate=True)
    assert decision.message.startswith(start) and decision.message.count("pod ml/") == 1, decision.message
