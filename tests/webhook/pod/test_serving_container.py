"""Which container serves the model, and how the runtime's flags reach a shell script: original -> expected."""

from __future__ import annotations

import copy

import jsonpatch
import pytest

from tests.podkit import pod
from webhook.errors import AdmissionDenied
from webhook.pod.mutator import mutate_pod

M8B = {"infergate.io/model": "llama-3.1-8b-instruct"}
RUNTIME_FLAGS = ["--model", "/mnt/models", "--served-model-name", "llama-3.1-8b-instruct", "--tensor-parallel-size", "1", "--port", "8080"]
VLLM_DOCS = {  # vLLM's Kubernetes docs: the server in a shell, the container named after the app
    "name": "mistral-7b", "image": "vllm/vllm-openai:latest", "command": ["/bin/sh", "-c"],
    "args": ["vllm serve mistralai/Mistral-7B-Instruct-v0.3 --trust-remote-code --enable-chunked-prefill"],
    "resources": {"limits": {"cpu": "10", "memory": "20G", "nvidia.com/gpu": "1"}, "requests": {"cpu": "2", "memory": "6G", "nvidia.com/gpu": "1"}},
}
SIDECAR = {"name": "log-shipper", "image": "fluent/fluent-bit:3.0"}


def admit(policy, containers, annotations=M8B):
    original = pod(annotations, containers=containers)
    edited = copy.deepcopy(original)
    mutation = mutate_pod(edited, "ml", policy)
    assert jsonpatch.apply_patch(original, mutation.patch) == edited
    again = copy.deepcopy(edited)
    assert mutate_pod(again, "ml", policy).patch == [], "re-admission changes nothing"
    return edited["spec"]["containers"], mutation.warnings


CHOICES = [
    # (containers, the container served from, how many containers after, a word in the warnings or None)
    pytest.param([VLLM_DOCS], "mistral-7b", 1, "shell script", id="vLLM docs Deployment: merged into its container"),
    pytest.param([SIDECAR, {"name": "main", "image": "registry.example/llm:1", "resources": {"limits": {"nvidia.com/gpu": "2"}}}],
                 "main", 2, None, id="the container with the GPU"),
    pytest.param([{"name": "model-server", "image": "envoyproxy/envoy:v1.31"}, {"name": "engine", "image": "registry.example/llm:1",
                  "resources": {"limits": {"nvidia.com/gpu": "1"}}}], "engine", 2, None, id="a sidecar named model-server is not the server"),
    pytest.param([SIDECAR, {"name": "srv", "image": "lmsysorg/sglang:v0.5.2"}], "srv", 2, None, id="the model server image"),
    pytest.param([SIDECAR, {"name": "srv", "image": "registry.example/x:1", "args": ["--model", "m"]}], "srv", 2, None, id="the --model flag"),
    pytest.param([SIDECAR], "model-server", 2, "added container model-server", id="no server among them: added, with a warning"),
    pytest.param([], "model-server", 1, None, id="no containers: the runtime's"),
]


@pytest.mark.parametrize(("containers", "served_by", "count", "warning"), CHOICES)
def test_serving_container(policy, containers, served_by, count, warning):
    after, warnings = admit(policy, containers)
    assert len(after) == count, "never a second server"
    server = next(c for c in after if c["name"] == served_by)
    assert {"name": "MODEL_PATH", "value": "/mnt/models"} in server["env"]
    assert sum("nvidia.com/gpu" in (c.get("resources") or {}).get("limits", {}) for c in after) == 1
    if warning:
        assert any(warning in w for w in warnings), warnings


def test_two_gpu_containers_are_ambiguous(policy):
    gpu = {"resources": {"limits": {"nvidia.com/gpu": "1"}}}
    with pytest.raises(AdmissionDenied) as denied:
        admit(policy, [{"name": "a", **gpu}, {"name": "b", **gpu}])
    assert denied.value.field == "spec.containers" and "a asks for GPUs; b asks for GPUs" in denied.value.message


SHELL = [
    # (command, args, expected command + args)
    pytest.param(["sh", "-c"], ["vllm serve $MODEL_PATH"], ["sh", "-c", "vllm serve $MODEL_PATH"], id="script without parameters: as written"),
    pytest.param(["sh", "-c", "vllm serve $MODEL_PATH"], None, ["sh", "-c", "vllm serve $MODEL_PATH"], id="script in command: as written"),
    pytest.param(["/bin/bash", "-c"], ['exec vllm serve "$@"'], ["/bin/bash", "-c", 'exec vllm serve "$@"', "srv", *RUNTIME_FLAGS],
                 id='script with "$@": flags after a $0 filler'),
    pytest.param(["bash", "-ec"], ["python -m vllm.entrypoints.openai.api_server $0 $@"],
                 ["bash", "-ec", "python -m vllm.entrypoints.openai.api_server $0 $@", *RUNTIME_FLAGS], id="KServe style $0 $@"),
    pytest.param(["bash", "-o", "pipefail", "-c"], ['vllm serve "$@"'], ["bash", "-o", "pipefail", "-c", 'vllm serve "$@"', "srv", *RUNTIME_FLAGS],
                 id="shell options before -c"),
    pytest.param(["sh", "-c", 'vllm serve "$@"', "srv", "--port", "9000"], None, ["sh", "-c", 'vllm serve "$@"', "srv", "--port", "9000"],
                 id="the user's own parameters: kept"),
]


@pytest.mark.parametrize(("command", "args", "expected"), SHELL)
def test_shell_script_never_gets_flags_between_c_and_the_script(policy, command, args, expected):
    container = {"name": "srv", "image": "vllm/vllm-openai:v0.11.0", "command": command}
    if args is not None:
        container["args"] = args
    after, warnings = admit(policy, [container])
    assert after[0]["command"] + after[0].get("args", []) == expected
    assert after[0]["command"] == command
    if expected == command + (args or []):
        assert not any("$@" in w and "passed as" in w for w in warnings)
