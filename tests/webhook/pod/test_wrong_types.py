"""Fields of the wrong type anywhere infergate reads or writes in a pod: a 400 that names the field, never a
500 and never a message without a field. Null is absent in Kubernetes: a null where infergate writes is
replaced, not refused."""

from __future__ import annotations

import copy

import pytest

from tests.webhook.test_realworld import admit

MODEL = {"infergate.io/model": "llama-3.1-8b-instruct", "infergate.io/gpu-product": "NVIDIA-H100-80GB-HBM3"}
BASE = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "chat", "namespace": "ml", "annotations": MODEL},
        "spec": {"containers": [{"name": "vllm", "image": "vllm/vllm-openai:v0.11.0", "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}}
TERMS = ("spec", "affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms")
C0 = ("spec", "containers", 0)


def with_value(path, value):
    pod = copy.deepcopy(BASE)
    node = pod
    for part in path[:-1]:
        if isinstance(node, dict) and part not in node:
            node[part] = {} if not isinstance(part, int) else []
        node = node[part]
    node[path[-1]] = value
    return pod


DENIED = [
    # (path, value, the field the denial names)
    pytest.param(C0 + ("env",), [{"value": "x"}], "spec.containers.0.env.0.name", id="env-without-name"),
    pytest.param(C0 + ("env",), "HF_TOKEN=x", "spec.containers.0.env", id="env-string"),
    pytest.param(C0 + ("envFrom",), {"secretRef": {"name": "hf"}}, "spec.containers.0.envFrom", id="envFrom-object"),
    pytest.param(C0 + ("volumeMounts",), [{"name": "v", "mountPath": 5}], "spec.containers.0.volumeMounts.0.mountPath", id="mountPath-number"),
    pytest.param(C0 + ("args",), "--max-model-len 4096", "spec.containers.0.args", id="args-string"),
    pytest.param(C0 + ("restartPolicy",), 5, "spec.containers.0.restartPolicy", id="restartPolicy-number"),
    pytest.param(("spec", "volumes"), [{"emptyDir": {}}], "spec.volumes.0.name", id="volume-without-name"),
    pytest.param(("spec", "nodeSelector"), {"nvidia.com/gpu.product": 5}, "spec.nodeSelector.nvidia.com/gpu.product", id="nodeSelector-number"),
    pytest.param(("spec", "nodeName"), ["gpu-1"], "spec.nodeName", id="nodeName-list"),
    pytest.param(("spec", "affinity", "nodeAffinity"), "gpu", "spec.affinity.nodeAffinity", id="nodeAffinity-string"),
    pytest.param(TERMS, "x", ".".join(TERMS), id="terms-string"),
    pytest.param(TERMS, [None], ".".join(TERMS) + ".0", id="term-null"),
    pytest.param(TERMS, [{"matchExpressions": "x"}], ".".join(TERMS) + ".0.matchExpressions", id="expressions-string"),
    pytest.param(TERMS, [{"matchExpressions": [None]}], ".".join(TERMS) + ".0.matchExpressions.0", id="expression-null"),
    pytest.param(("metadata", "ownerReferences"), {"kind": "DaemonSet"}, "metadata.ownerReferences", id="owners-object"),
    pytest.param(("spec", "ephemeralContainers"), [{"name": "vllm", "image": "busybox"}], "spec.ephemeralContainers[0].name",
                 id="ephemeral-container-reusing-a-name"),
    pytest.param(("spec", "ephemeralContainers"), "debug", "spec.ephemeralContainers", id="ephemeral-containers-string"),
]


@pytest.mark.parametrize(("path", "value", "field"), DENIED)
def test_wrong_types_are_400s_naming_the_field(policy, path, value, field):
    decision, _ = admit(policy, with_value(path, value))
    assert not decision.allowed and decision.code == 400, decision.message
    assert decision.field == field and decision.message.startswith(f"pod ml/chat: {field}"), decision.message


NULLS = [
    pytest.param(("spec", "affinity"), None, id="affinity"),
    pytest.param(("spec", "affinity", "nodeAffinity"), None, id="nodeAffinity"),
    pytest.param(("spec", "affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution"), None, id="required"),
    pytest.param(("spec", "tolerations"), None, id="tolerations"),
    pytest.param(("spec", "volumes"), None, id="volumes"),
    pytest.param(C0 + ("env",), None, id="env"),
    pytest.param(C0 + ("resources", "requests"), None, id="requests"),
    pytest.param(("metadata", "labels"), None, id="labels"),
    pytest.param(C0 + ("image",), "", id="empty-image-is-unset"),
    pytest.param(C0 + ("command",), [], id="empty-command-is-unset"),
]


@pytest.mark.parametrize(("path", "value"), NULLS)
def test_null_and_empty_are_absent(policy, path, value):
    decision, admitted = admit(policy, with_value(path, value))
    assert decision.allowed, decision.message
    server = admitted["spec"]["containers"][0]
    assert server["image"] and server["command"]
    assert admitted["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert admit(policy, admitted)[0].patch == []


HUGE = "x" * 100_000
UNICODE = "llamä-模型\u202e"


@pytest.mark.parametrize("annotations", [
    pytest.param({"infergate.io/model": HUGE}, id="huge-model"),
    pytest.param({"infergate.io/model": "llama-3.1-8b-instruct", "infergate.io/gpu-product": HUGE}, id="huge-product"),
    pytest.param({"infergate.io/model": UNICODE}, id="unicode-model"),
    pytest.param({"infergate.io/model": "llama-3.1-8b-instruct", "infergate.io/gpus": "٣"}, id="unicode-digit"),
    pytest.param({"infergate.io/model": "llama-3.1-8b-instruct", f"infergate.io/{HUGE}": "1"}, id="huge-key"),
])
def test_huge_and_unicode_values_are_named_and_not_echoed_whole(policy, annotations):
    pod = copy.deepcopy(BASE)
    pod["metadata"]["annotations"] = annotations
    decision, _ = admit(policy, pod)
    if decision.allowed:
        assert all(len(w) <= 2100 for w in decision.warnings)
        return
    assert decision.code == 400 and decision.field and len(decision.message) <= 2100, decision.message[:200]
