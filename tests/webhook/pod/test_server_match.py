"""The runtime's flags go only to a server that understands them. A user's container that runs SGLang gets the
sglang runtime when infergate chooses, a named runtime that runs another server than the container is a 400,
a server no policy runtime runs (TGI) is a 400; a shell script that runs as written is left to itself. The
model `vllm serve MODEL` names is the user's --model: vLLM refuses both."""

from __future__ import annotations

import pytest

from tests.webhook.test_realworld import admit, assert_no_user_field_lost

LLAMA = {"infergate.io/model": "llama-3.1-8b-instruct"}
GPU = {"limits": {"nvidia.com/gpu": "1"}}


def pod(annotations, image, command=None, args=None):
    container = {"name": "server", "image": image, "resources": GPU}
    if command:
        container["command"] = command
    if args:
        container["args"] = args
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "chat", "namespace": "ml", "annotations": annotations},
            "spec": {"containers": [container]}}


SGLANG = ("lmsysorg/sglang:v0.5.2-cu126", ["python3", "-m", "sglang.launch_server"], ["--model-path", "Qwen/Qwen2.5-7B", "--port", "30000"])
CASES = [
    # (pod, runtime label, denied field, words that must (not) be there)
    pytest.param(pod(LLAMA, *SGLANG), "sglang", None, ["--tp-size"], ["--tensor-parallel-size", "--model"], id="sglang-container-gets-sglang"),
    pytest.param(pod({**LLAMA, "infergate.io/runtime": "vllm"}, *SGLANG), None, "metadata.annotations[infergate.io/runtime]", [], [],
                 id="named-runtime-of-another-server"),
    pytest.param(pod(LLAMA, "ghcr.io/huggingface/text-generation-inference:3.0", None, ["--model-id", "x"]), None, "spec.containers[0]",
                 [], [], id="tgi-has-no-runtime"),
    pytest.param(pod({"infergate.io/model": "deepseek-r1", "infergate.io/group": "g", "infergate.io/group-size": "2",
                      "infergate.io/role": "leader"}, "vllm/vllm-openai:v0.11.0"), None, "spec.containers[0]", [], [],
                 id="vllm-image-for-an-sglang-only-model"),
    pytest.param(pod({"infergate.io/model": "deepseek-r1", "infergate.io/group": "g", "infergate.io/group-size": "2",
                      "infergate.io/role": "leader"}, "vllm/vllm-openai:v0.11.0", ["sh", "-c"], ["vllm serve /mnt/models --port 8000"]),
                 "sglang", None, [], ["--tp-size"], id="script-as-written-is-left-alone"),
    pytest.param(pod(LLAMA, "vllm/vllm-openai:v0.11.0", ["vllm", "serve", "meta-llama/Llama-3.1-8B-Instruct"]), "vllm", None,
                 ["--served-model-name"], ["--model"], id="vllm-serve-positional-in-command"),
    pytest.param(pod(LLAMA, "vllm/vllm-openai:v0.11.0", ["vllm", "serve"], ["meta-llama/Llama-3.1-8B-Instruct", "--max-model-len", "4096"]),
                 "vllm", None, ["--served-model-name"], ["--model"], id="vllm-serve-positional-in-args"),
    pytest.param(pod(LLAMA, "vllm/vllm-openai:v0.11.0", ["vllm", "serve"], ["--max-model-len", "4096"]), "vllm", None, ["--model"], [],
                 id="vllm-serve-without-positional"),
]


@pytest.mark.parametrize(("original", "runtime", "denied", "present", "absent"), CASES)
def test_flags_reach_only_their_server(policy, original, runtime, denied, present, absent):
    decision, admitted = admit(policy, original)
    if denied:
        assert not decision.allowed and decision.code == 400 and decision.field == denied, decision.message
        return
    assert decision.allowed, decision.message
    assert admitted["metadata"]["labels"]["infergate.io/runtime"] == runtime
    server = admitted["spec"]["containers"][0]
    words = (server.get("command") or []) + (server.get("args") or [])
    assert all(w in words for w in present) and not any(w in words for w in absent), words
    assert server["image"] == original["spec"]["containers"][0]["image"]
    assert_no_user_field_lost(original, admitted)
    assert admit(policy, admitted)[0].patch == []
