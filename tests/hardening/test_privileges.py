"""The webhook adds no privileges of its own: whatever model, runtime and annotations, the output carries a
securityContext, capabilities or a hostPath only where the runtime's policy or an admin's local:// model says."""

from __future__ import annotations

import copy
import itertools

import pytest

from policies.loader import Policy
from policies.schema import Model, Runtime
from tests.podkit import pod
from webhook.errors import AdmissionDenied
from webhook.pod.mutator import mutate_pod

ANNOTATION_SETS = [{}, {"infergate.io/gpus": "2"}, {"infergate.io/gpu-fraction": "0.5"}, {"infergate.io/gpu-product": "NVIDIA-A100"}]


def privileged_bits(obj: dict) -> list[str]:
    found = []
    spec = obj["spec"]
    for container in spec.get("containers", []) + spec.get("initContainers", []):
        if "securityContext" in container:
            found.append(f"{container['name']}.securityContext")
    if "securityContext" in spec or spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC"):
        found.append("pod-level privileges")
    found += [f"volume {v['name']} hostPath" for v in spec.get("volumes", []) if "hostPath" in v]
    return found


@pytest.mark.parametrize("annotations", ANNOTATION_SETS)
def test_no_privileges_from_the_shipped_policy(policy, annotations):
    for model, runtime in itertools.product(policy.models, policy.runtimes):
        edited = pod({"infergate.io/model": model, "infergate.io/runtime": runtime, **annotations})
        try:
            mutate_pod(edited, "ml", policy)
        except AdmissionDenied:
            continue
        assert privileged_bits(edited) == [], (model, runtime)


def test_only_what_the_policy_grants(policy):
    vllm = policy.runtimes["vllm"]
    granted = Runtime.model_validate({**vllm.model_dump(by_alias=True), "spec": {**vllm.spec.model_dump(by_alias=True), "securityContext": {"capabilities": {"add": ["IPC_LOCK"]}}}})
    base = policy.models["llama-3.1-8b-instruct"]
    local = Model.model_validate({**base.model_dump(by_alias=True), "spec": {**base.spec.model_dump(by_alias=True), "storageUri": "local:///data/llama"}})
    custom = Policy({**policy.models, "llama-3.1-8b-instruct": local}, {**policy.runtimes, "vllm": granted}, policy.cluster, "test")
    edited = pod({"infergate.io/model": "llama-3.1-8b-instruct", "infergate.io/runtime": "vllm"})
    mutate_pod(edited, "ml", custom)
    assert privileged_bits(edited) == ["model-server.securityContext", "volume model-store hostPath"]
    mount = edited["spec"]["containers"][0]["volumeMounts"][0]
    assert mount["readOnly"] is True


def test_user_privileges_are_the_users_not_ours(policy):
    original = pod({"infergate.io/model": "llama-3.1-8b-instruct"}, containers=[{"name": "model-server", "securityContext": {"runAsUser": 1000}}])
    edited = copy.deepcopy(original)
    mutate_pod(edited, "ml", policy)
    assert edited["spec"]["containers"][0]["securityContext"] == {"runAsUser": 1000}
