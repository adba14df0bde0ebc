"""Placement wiring merged into what the user wrote, never replacing it: required node-affinity terms are ORed,
so the GPU product is AND-ed into each of them; a product in the user's nodeSelector or terms is theirs; the
user's tolerations are kept and ours added only where theirs do not already tolerate the taint. Pods the
scheduler does not place (spec.nodeName, DaemonSet pods) get no scheduler name and no product affinity."""

from __future__ import annotations

import copy

import pytest

from tests.webhook.test_realworld import admit, assert_no_user_field_lost, assert_valid_pod

H100 = "NVIDIA-H100-80GB-HBM3"
MODEL = {"infergate.io/model": "llama-3.1-8b-instruct", "infergate.io/gpu-product": H100}
PRODUCT = {"key": "nvidia.com/gpu.product", "operator": "In", "values": [H100]}
ZONE = {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["a"]}
NODE = {"key": "metadata.name", "operator": "In", "values": ["gpu-1"]}
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def pod(annotations=None, labels=None, owner=None, **spec):
    metadata = {"name": "chat", "namespace": "ml", "annotations": dict(MODEL if annotations is None else annotations)}
    if labels:
        metadata["labels"] = labels
    if owner:
        metadata["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": owner[0], "name": owner[1], "uid": "u", "controller": True}]
    containers = [{"name": "vllm", "image": "vllm/vllm-openai:v0.11.0", "resources": {"limits": {"nvidia.com/gpu": "1"}}}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": {"containers": containers, **spec}}


def required(*terms):
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": list(terms)}}}


def terms_of(admitted):
    return admitted["spec"].get("affinity", {}).get("nodeAffinity", {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution", {}).get("nodeSelectorTerms")


AFFINITY = [
    # (user's affinity, the terms after admission)
    pytest.param(None, [{"matchExpressions": [PRODUCT]}], id="no-affinity"),
    pytest.param(required({"matchExpressions": [ZONE]}), [{"matchExpressions": [ZONE, PRODUCT]}], id="one-term"),
    pytest.param(required({"matchExpressions": [ZONE]}, {"matchFields": [NODE]}),
                 [{"matchExpressions": [ZONE, PRODUCT]}, {"matchFields": [NODE], "matchExpressions": [PRODUCT]}], id="ORed-terms-each-ANDed"),
    pytest.param(required({"matchExpressions": [{**PRODUCT, "values": ["NVIDIA-A100"]}]}, {"matchExpressions": [ZONE]}),
                 [{"matchExpressions": [{**PRODUCT, "values": ["NVIDIA-A100"]}]}, {"matchExpressions": [ZONE, PRODUCT]}],
                 id="a-term-with-its-own-product-is-the-users"),
    pytest.param(required({}, {"matchExpressions": [ZONE]}), [{}, {"matchExpressions": [ZONE, PRODUCT]}],
                 id="an-empty-term-matches-no-node-and-stays-so"),
    pytest.param({"nodeAffinity": None, "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": []}},
                 [{"matchExpressions": [PRODUCT]}], id="null-is-absent"),
    pytest.param({"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "preference": {"matchExpressions": [ZONE]}}]}},
                 [{"matchExpressions": [PRODUCT]}], id="preferences-kept"),
]


@pytest.mark.parametrize(("affinity", "terms"), AFFINITY)
def test_product_is_anded_into_every_required_term(policy, affinity, terms):
    original = pod(**({"affinity": affinity} if affinity is not None else {}))
    decision, admitted = admit(policy, original)
    assert decision.allowed, decision.message
    assert terms_of(admitted) == terms
    assert_valid_pod(admitted)
    assert_no_user_field_lost(original, admitted)
    assert admit(policy, admitted)[0].patch == []


TOLERATIONS = [
    pytest.param([{"key": "nvidia.com/gpu", "operator": "Exists"}], 1, id="every-effect-covers-ours"),
    pytest.param([{"operator": "Exists"}], 1, id="tolerates-everything"),
    pytest.param([{"operator": "Exists", "effect": "NoExecute"}], 2, id="everything-of-another-effect"),
    pytest.param([{"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"}], 2, id="one-value-only"),
    pytest.param([{"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}], 2, id="another-taint"),
    pytest.param(None, 1, id="none"),
]


@pytest.mark.parametrize(("tolerations", "count"), TOLERATIONS)
def test_tolerations_are_merged(policy, tolerations, count):
    original = pod(**({"tolerations": tolerations} if tolerations is not None else {}))
    decision, admitted = admit(policy, original)
    assert decision.allowed, decision.message
    assert admitted["spec"]["tolerations"][: len(tolerations or [])] == (tolerations or [])
    assert len(admitted["spec"]["tolerations"]) == count


NODE_SELECTOR = [
    # (annotations, the product in nodeSelector, denied field or None, affinity added)
    pytest.param(MODEL, H100, None, False, id="same-product-no-second-requirement"),
    pytest.param(MODEL, "NVIDIA-A100", "spec.nodeSelector[nvidia.com/gpu.product]", False, id="annotation-contradicts-nodeSelector"),
    pytest.param({"infergate.io/model": "deepseek-r1", "infergate.io/group": "g", "infergate.io/group-size": "2",
                  "infergate.io/role": "leader"}, "NVIDIA-H200", None, False, id="model-default-yields-to-nodeSelector"),
]


@pytest.mark.parametrize(("annotations", "selected", "denied", "affinity"), NODE_SELECTOR)
def test_a_product_in_node_selector_is_the_users(policy, annotations, selected, denied, affinity):
    original = pod(annotations, nodeSelector={"nvidia.com/gpu.product": selected})
    if annotations.get("infergate.io/model") == "deepseek-r1":
        original["spec"]["containers"][0]["image"] = "lmsysorg/sglang:v0.5.2-cu126"  # its runtime's server
    decision, admitted = admit(policy, original)
    if denied:
        assert not decision.allowed and decision.field == denied and decision.code == 400, decision.message
        return
    assert decision.allowed, decision.message
    assert admitted["spec"]["nodeSelector"] == {"nvidia.com/gpu.product": selected}
    assert (terms_of(admitted) is not None) == affinity


UNSCHEDULED = [
    # (pod, what its warning names)
    pytest.param(pod(nodeName="gpu-1"), "spec.nodeName", id="nodeName-with-model"),
    pytest.param(pod({}, nodeName="gpu-1"), None, id="nodeName-plain"),
    pytest.param(pod(owner=("DaemonSet", "llm-per-node")), "DaemonSet llm-per-node", id="daemonset-with-model"),
]


@pytest.mark.parametrize(("original", "warning"), UNSCHEDULED)
def test_pods_the_scheduler_does_not_place_keep_their_scheduler(policy, original, warning):
    decision, admitted = admit(policy, copy.deepcopy(original))
    assert decision.allowed, decision.message
    assert "schedulerName" not in admitted["spec"]
    assert terms_of(admitted) is None, "no product affinity the node may not meet"
    assert admitted["spec"]["priorityClassName"].startswith("infergate-")
    if warning:
        assert any(warning in w and "places this pod" in w for w in decision.warnings), decision.warnings
    assert admit(policy, admitted)[0].patch == []


def test_daemonset_pods_without_a_model_are_left_alone(policy):
    original = pod({}, labels={"controller-revision-hash": "7b9c", "pod-template-generation": "1"}, owner=("DaemonSet", "dcgm-exporter"),
                   affinity=required({"matchFields": [NODE]}))
    decision, _ = admit(policy, original)
    assert decision.allowed and decision.patch == []


def test_a_replicaset_pod_is_not_a_daemonset_pod(policy):
    decision, admitted = admit(policy, pod(owner=("ReplicaSet", "chat-6d4cf56db6")))
    assert decision.allowed and admitted["spec"]["schedulerName"] == "infergate-scheduler"


@pytest.mark.parametrize("original", [
    pytest.param(pod({"infergate.io/model": "qwen2.5-0.5b-instruct", "infergate.io/gpu-fraction": "0.5"}, nodeName="gpu-1"), id="nodeName"),
])
def test_a_gpu_share_needs_the_scheduler(policy, original):
    original["spec"]["containers"][0].pop("resources")
    decision, _ = admit(policy, original)
    assert not decision.allowed and decision.code == 400 and decision.field == "spec.nodeName", decision.message
