"""Properties over the mutations real users make to real pod shapes: fields of the wrong type anywhere (strings
for lists, numbers for strings, null), unicode and huge strings, env valueFrom and envFrom, GPUs of several
vendors, sidecars, existing tolerations and node affinity, their own schedulerName and priorityClassName,
spec.nodeName, DaemonSet pods. Every answer is an admission or a 4xx naming the pod and a field; an admission
is idempotent, loses no user field, merges placement into what the user wrote (each required term keeps its
expressions and gains the product; tolerations kept) and overwrites no scheduler or class of the user's."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies import SHIPPED_POLICY_DIR, load_policy
import jsonpatch

from tests.hardening.test_fuzz import paths, replaced
from tests.webhook.test_realworld import assert_no_user_field_lost, assert_valid_pod
from webhook.admission import decide
from webhook.review import AdmissionRequest, GroupVersionKind
from tests.webhook.test_realworld_properties import kserve, ome, pods

POLICY = load_policy(SHIPPED_POLICY_DIR)
PRODUCT_LABEL = "nvidia.com/gpu.product"
TERMS = ("affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms")
OURS = {"infergate-inference", "infergate-training"}

texts = st.one_of(st.text(max_size=12), st.sampled_from(["ü-模型", "\u202e", "x" * 70_000, "", " padded ", "a\nb"]))
junk = st.one_of(st.none(), st.integers(-2**70, 2**70), st.floats(allow_nan=False), st.booleans(), texts,
                 st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
expressions = st.sampled_from([
    {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["a"]},
    {"key": PRODUCT_LABEL, "operator": "In", "values": ["NVIDIA-A100-SXM4-80GB"]},
    {"key": "infergate.io/rack", "operator": "Exists"},
])
terms = st.lists(st.one_of(
    st.builds(lambda e: {"matchExpressions": e}, st.lists(expressions, min_size=1, max_size=2)),
    st.just({"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["gpu-1"]}]}),
), min_size=1, max_size=3)
tolerations = st.lists(st.sampled_from([
    {"key": "nvidia.com/gpu", "operator": "Exists"}, {"operator": "Exists"}, {"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"},
    {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoExecute"},
]), max_size=2)


@st.composite
def user_pods(draw: st.DrawFn) -> dict[str, Any]:
    pod = copy.deepcopy(draw(pods()))
    spec, metadata = pod["spec"], pod["metadata"]
    server = spec["containers"][0]
    if draw(st.booleans()):
        server["env"] = [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}},
                         {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]
    if draw(st.booleans()):
        server["envFrom"] = [{"configMapRef": {"name": "vllm-config"}}]
    if draw(st.booleans()):
        spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": draw(terms)}}}
    if draw(st.booleans()):
        spec["tolerations"] = draw(tolerations)
    if draw(st.booleans()):
        spec["schedulerName"] = draw(st.sampled_from(["default-scheduler", "volcano", "infergate-scheduler"]))
    if draw(st.booleans()):
        spec["priorityClassName"] = draw(st.sampled_from(["team-high", "infergate-inference", "infergate-training"]))
    if draw(st.integers(0, 5)) == 0:
        spec["nodeName"] = "gpu-1"
    if draw(st.integers(0, 5)) == 0:
        metadata["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent", "uid": "u", "controller": True}]
    if draw(st.integers(0, 4)) == 0:
        spec.setdefault("initContainers", []).append(
            {"name": "proxy-sidecar", "image": "envoyproxy/envoy:v1", "restartPolicy": "Always"})
    if draw(st.booleans()):
        metadata["annotations"]["infergate.io/gpu-product"] = draw(st.sampled_from(["NVIDIA-H100-80GB-HBM3", "NVIDIA-A100-SXM4-80GB"]))
    return pod


def with_junk(draw: st.DrawFn, obj: dict[str, Any]) -> dict[str, Any]:
    """One or two fields anywhere in the metadata or spec replaced by a value of the wrong type."""
    for _ in range(draw(st.integers(1, 2))):
        where = [p for p in paths(obj) if p and p[0] in ("spec", "metadata") and p[:2] != ("metadata", "namespace")]
        obj = replaced(obj, draw(st.sampled_from(where)), draw(junk))
    return obj


@st.composite
def mutated(draw: st.DrawFn) -> tuple[dict[str, Any], bool]:
    pod = copy.deepcopy(draw(user_pods()))  # sampled values are shared between examples: never edit them
    if draw(st.booleans()):
        return pod, False
    return with_junk(draw, pod), True


def admit(policy, pod: dict[str, Any]):
    """As the API server sends it: the namespace is the request's, whatever the object's metadata holds."""
    request = AdmissionRequest(uid="u", kind=GroupVersionKind(group="", version="v1", kind="Pod"), operation="CREATE",
                               namespace="ml", object=copy.deepcopy(pod))
    decision = decide(request, policy, mutate=True)
    return decision, (jsonpatch.apply_patch(pod, decision.patch) if decision.patch else pod)


def _terms(pod: dict[str, Any]) -> list | None:
    node: Any = pod.get("spec") or {}
    for part in TERMS:
        node = node.get(part) if isinstance(node, dict) else None
    return node


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated())
def test_user_mutations(case):
    original, junked = case
    decision, admitted = admit(POLICY, copy.deepcopy(original))
    if not decision.allowed:
        assert 400 <= decision.code < 500, decision.message
        assert decision.message.startswith("pod ml/"), decision.message
        assert decision.field, f"a denial names the field: {decision.message}"
        return
    assert admit(POLICY, copy.deepcopy(admitted))[0].patch == [], "admitting the output again changes nothing"
    if junked or not decision.patch:
        return  # the API server validates what infergate neither reads nor writes (a DaemonSet's agent pod)
    assert_valid_pod(admitted)
    assert_no_user_field_lost(_without_api_server_defaults(original), admitted)
    spec, before = admitted["spec"], original["spec"]
    assert spec.get("tolerations", [])[: len(before.get("tolerations", []))] == before.get("tolerations", [])
    if before.get("schedulerName") not in (None, "default-scheduler"):
        assert spec["schedulerName"] == before["schedulerName"]
    if before.get("nodeName") or original["metadata"].get("ownerReferences"):
        assert spec.get("schedulerName") == before.get("schedulerName"), "a pod the scheduler does not place keeps its scheduler"
    if before.get("priorityClassName") not in (None, *OURS):
        assert spec["priorityClassName"] == before["priorityClassName"]
    old_terms, new_terms = _terms(original), _terms(admitted)
    if old_terms:
        assert len(new_terms) == len(old_terms), "terms are ORed: none added or removed"
        product = (admitted["metadata"].get("annotations") or {}).get("infergate.io/gpu-product")
        for old, new in zip(old_terms, new_terms):
            assert new.get("matchExpressions", [])[: len(old.get("matchExpressions", []))] == old.get("matchExpressions", [])
            assert new.get("matchFields") == old.get("matchFields")
            if product and new_terms != old_terms:
                assert any(e["key"] == PRODUCT_LABEL for e in new["matchExpressions"]), "the product is AND-ed into every term"


def _without_api_server_defaults(pod: dict[str, Any]) -> dict[str, Any]:
    pod = copy.deepcopy(pod)
    if pod["spec"].get("schedulerName") == "default-scheduler":
        del pod["spec"]["schedulerName"]
    return pod


@st.composite
def junked_inference_services(draw: st.DrawFn) -> dict[str, Any]:
    return with_junk(draw, copy.deepcopy(draw(st.one_of(kserve(), ome()))))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(junked_inference_services())
def test_inference_services_with_a_wrong_type_anywhere(obj):
    group = obj["apiVersion"].rpartition("/")[0]
    request = AdmissionRequest(uid="u", kind=GroupVersionKind(group=group, version="v1beta1", kind="InferenceService"),
                               operation="CREATE", namespace="ml", object=copy.deepcopy(obj))
    decision = decide(request, POLICY, mutate=True)
    if not decision.allowed:
        assert 400 <= decision.code < 500, decision.message
        assert decision.message.startswith("InferenceService ml/"), decision.message
        assert decision.field, f"a denial names the field: {decision.message}"
        return
    admitted = jsonpatch.apply_patch(obj, decision.patch) if decision.patch else obj
    again = decide(request.model_copy(update={"object": copy.deepcopy(admitted)}), POLICY, mutate=True)
    assert again.allowed and again.patch == [], "admitting the output again changes nothing"
