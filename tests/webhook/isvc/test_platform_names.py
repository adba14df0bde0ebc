"""The platform's names in an InferenceService and infergate's catalogue behind them (webhook.isvc.platform):
a policy runtime is written as the platform's runtime it maps to (platformRuntimes) or left for the platform to
select; the platform's own runtime and model names are kept, with a warning, where the namespace may use any name;
OME's dashed spelling of a policy model is that model."""

from __future__ import annotations

import pytest

from tests.webhook.isvc.test_isvc import GPU1, GPU8, H100, KSERVE, OME, admit, isvc

HF = {"name": "huggingface"}
L8B_URI = "hf://meta-llama/Llama-3.1-8B-Instruct"


def kserve(model: dict, **predictor) -> dict:
    return isvc(KSERVE, {"predictor": {"model": {"modelFormat": HF, **model}, **predictor}})


ADMITTED = [
    # (object, path to check, value expected there (None: absent), labels expected, a warning expected)
    pytest.param(kserve({"storageUri": L8B_URI}), ("spec", "predictor", "model", "runtime"), "kserve-huggingfaceserver",
                 {"infergate.io/runtime": "vllm"}, "kserve-huggingfaceserver, KServe's runtime for infergate runtime vllm (selected",
                 id="kserve: selected policy runtime written as its KServe runtime"),
    pytest.param(kserve({"storageUri": L8B_URI, "runtime": "vllm"}), ("spec", "predictor", "model", "runtime"), "kserve-huggingfaceserver",
                 {"infergate.io/runtime": "vllm"}, "named as infergate's vllm", id="kserve: old input runtime: vllm mapped"),
    pytest.param(kserve({"storageUri": L8B_URI, "runtime": "vllm"}, workerSpec={}), ("spec", "predictor", "model", "runtime"),
                 "kserve-huggingfaceserver-multinode", {"infergate.io/runtime": "vllm"}, "platformRuntimes.kserveMultiNode",
                 id="kserve: workerSpec maps to the multi-node runtime"),
    pytest.param(kserve({"storageUri": "hf://deepseek-ai/DeepSeek-R1"}), ("spec", "predictor", "model", "runtime"), None,
                 {"infergate.io/runtime": "sglang"}, "left unset, KServe selects its runtime by model format",
                 id="kserve: selected runtime with no KServe runtime: left unset"),
    pytest.param(kserve({"storageUri": L8B_URI, "runtime": "kserve-huggingfaceserver"}), ("spec", "predictor", "model", "runtime"),
                 "kserve-huggingfaceserver", {"infergate.io/runtime": "vllm"}, "KServe's runtime for infergate runtime vllm",
                 id="kserve: a mapped KServe name is that policy runtime"),
    pytest.param(kserve({"storageUri": L8B_URI, "runtime": "my-vllm"}), ("spec", "predictor", "model", "runtime"), "my-vllm",
                 {"infergate.io/runtime": "my-vllm"}, "my-vllm is not an infergate runtime: kept as KServe's own",
                 id="kserve: the platform's own runtime kept"),
    pytest.param(kserve({"storageUri": L8B_URI, "runtime": "my-vllm"}), ("spec", "predictor", "model", "resources"), GPU1,
                 {}, "applied no runtime settings", id="kserve: the platform's own runtime still gets the model's GPUs"),
    pytest.param(isvc(OME, {"model": {"name": "llama-3-1-8b-instruct"}, "runtime": {"name": "srt-llama-3-1-8b-instruct"}}),
                 ("spec", "runtime", "name"), "srt-llama-3-1-8b-instruct", {"infergate.io/model": "llama-3.1-8b-instruct"},
                 "kept as OME's own", id="ome: OME's own model and runtime names"),
    pytest.param(isvc(OME, {"model": {"name": "llama-3-1-8b-instruct"}}), ("spec", "engine", "runner", "resources"), GPU1,
                 {"infergate.io/model": "llama-3.1-8b-instruct"}, "(OME's spelling, dots as dashes)", id="ome: dashed model name resolves"),
    pytest.param(isvc(OME, {"model": {"name": "deepseek-r1"}, "runtime": {"name": "srt-deepseek-rdma"}}), ("spec", "engine"),
                 {"minReplicas": 1, "maxReplicas": 1, "annotations": H100, "worker": {"size": 1, "runner": {"name": "ome-container", "resources": GPU8}},
                  "leader": {"runner": {"name": "ome-container", "resources": GPU8}}}, {"infergate.io/runtime": "srt-deepseek-rdma"}, "kept as OME's own",
                 id="ome: OME's multi-node runtime, the policy model's shape"),
    pytest.param(isvc(OME, {"model": {"name": "gpt-9"}}), ("spec", "engine"), {"minReplicas": 1, "maxReplicas": 1},
                 {}, "spec.model.name: gpt-9 is not an infergate model: kept as OME's own; infergate applied no catalogue settings",
                 id="ome: OME's own model: no GPUs, no runtime"),
    pytest.param(isvc(OME, {"model": {"name": "gpt-9"}, "engine": {"runner": {"resources": {"limits": {"nvidia.com/gpu": "2"}}}}}),
                 ("spec", "engine", "runner", "resources"), {"limits": {"nvidia.com/gpu": "2"}, "requests": {"nvidia.com/gpu": "2"}},
                 {}, "GPUs as the object asks", id="ome: OME's own model: GPUs as asked"),
]


@pytest.mark.parametrize(("obj", "path", "expected", "labels", "warning"), ADMITTED)
def test_platform_names_admitted(policy, obj, path, expected, labels, warning):
    decision, admitted = admit(policy, obj)
    assert decision.allowed, decision.message
    node = admitted
    for part in path:
        node = node.get(part) if isinstance(node, dict) else None
    assert node == expected
    for key, value in labels.items():
        assert admitted["metadata"]["labels"][key] == value
    assert any(warning in w for w in decision.warnings), decision.warnings
    again, readmitted = admit(policy, admitted)
    assert again.allowed and again.patch == [], "admitting the output again changes nothing"


DENIED = [
    # In a namespace whose rule lists its models and runtimes, the platform's own names are denied as before.
    pytest.param(isvc(OME, {"model": {"name": "gpt-9"}}), "spec.model.name", "unknown model 'gpt-9'", id="ome: own model, restricted"),
    pytest.param(isvc(OME, {"model": {"name": "llama-3.1-8b-instruct"}, "runtime": {"name": "tgi"}}), "spec.runtime.name",
                 "unknown runtime 'tgi'", id="ome: own runtime, restricted"),
    pytest.param(isvc(OME, {"model": {"name": "llama-3-1-8b-instruct"}, "runtime": {"name": "sglang"}}), "spec.runtime.name",
                 "may not use runtime sglang", id="ome: policy runtime not allowed"),
    pytest.param(kserve({"storageUri": L8B_URI, "runtime": "kserve-huggingfaceserver-multinode"}), "spec.predictor.model.runtime",
                 "unknown runtime 'kserve-huggingfaceserver-multinode'", id="kserve: KServe's own runtime, restricted"),
]


@pytest.mark.parametrize(("obj", "field", "words"), DENIED)
def test_platform_names_denied_where_the_rule_lists_names(restricted_policy, obj, field, words):
    decision, _ = admit(restricted_policy, obj, namespace="team-small")
    assert not decision.allowed
    assert decision.field == field
    assert words in decision.message and "team-small" in decision.message


NAMED_WITH_NO_PLATFORM_RUNTIME = [
    # A policy runtime named where its platformRuntimes names no runtime of the platform: denied with what to write
    # (removing it would let the platform pick another engine; keeping it, the platform creates nothing).
    pytest.param(kserve({"storageUri": L8B_URI, "runtime": "sglang"}), "spec.predictor.model.runtime", "KServe", id="kserve"),
    pytest.param(isvc(OME, {"model": {"name": "llama-3.1-8b-instruct"}, "runtime": {"name": "vllm"}}), "spec.runtime.name", "OME", id="ome"),
    pytest.param(isvc(OME, {"model": {"name": "gpt-9"}, "runtime": {"name": "vllm"}}), "spec.runtime.name", "OME", id="ome, OME's own model"),
    pytest.param(isvc(OME, {"predictor": {"model": {"baseModel": "llama-3.1-8b-instruct", "runtime": "sglang"}}}),
                 "spec.predictor.model.runtime", "OME", id="ome legacy predictor"),
]


@pytest.mark.parametrize(("obj", "field", "platform"), NAMED_WITH_NO_PLATFORM_RUNTIME)
def test_policy_runtime_named_with_no_platform_runtime_is_denied(policy, obj, field, platform):
    decision, _ = admit(policy, obj)
    assert not decision.allowed and decision.field == field
    assert f"is infergate's runtime, not {platform}'s" in decision.message
    assert "leave the field out" in decision.message and "platformRuntimes" in decision.message


def test_own_model_gpus_still_capped(policy):
    obj = isvc(OME, {"model": {"name": "gpt-9"}, "engine": {"runner": {"resources": {"limits": {"nvidia.com/gpu": "16"}}}}})
    decision, _ = admit(policy, obj)
    assert not decision.allowed and "more than the 8" in decision.message


@pytest.mark.parametrize(("runner", "name"), [
    pytest.param(None, "ome-container", id="runner written by infergate: OME's container name"),
    pytest.param({"resources": {"limits": {"nvidia.com/gpu": "1"}}}, "ome-container", id="the user's nameless runner"),
    pytest.param({"name": "my-runner"}, "my-runner", id="the user's name wins"),
])
def test_ome_runner_carries_a_name(policy, runner, name):
    # OME v0.1.5 merges the runner over its runtime's with the name always sent: a nameless runner blanks it.
    spec = {"model": {"name": "llama-3-1-8b-instruct"}, "runtime": {"name": "srt-llama-3-1-8b-instruct"}}
    if runner is not None:
        spec["engine"] = {"runner": runner}
    decision, admitted = admit(policy, isvc(OME, spec))
    assert decision.allowed and admitted["spec"]["engine"]["runner"]["name"] == name
