"""Runtime container injection: original pod to expected pod."""

import pytest

from tests.podkit import pod
from webhook.pod import runtime_container

MODEL = {"infergate.io/model": "llama-3.1-8b-instruct"}
VLLM_ARGS = ["--model", "/mnt/models", "--served-model-name", "llama-3.1-8b-instruct", "--tensor-parallel-size", "1", "--port", "8080"]
VLLM = {
    "name": "model-server",
    "image": "vllm/vllm-openai:v0.11.0",
    "command": ["python3", "-m", "vllm.entrypoints.openai.api_server"],
    "args": VLLM_ARGS,
    "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
    "resources": {"requests": {"cpu": "4", "memory": "16Gi"}},
    "readinessProbe": {"httpGet": {"path": "/health", "port": 8080}, "periodSeconds": 10, "failureThreshold": 60},
}

CASES = [
    pytest.param(pod(MODEL), [VLLM], id="no container: the runtime's is added"),
    pytest.param(
        pod(MODEL, containers=[{"name": "sidecar", "image": "busybox"}]),
        [{"name": "sidecar", "image": "busybox"}, VLLM],
        id="other containers are kept",
    ),
    pytest.param(
        pod(MODEL, containers=[{"name": "model-server", "image": "my/vllm:dev", "args": ["--port", "9000", "--enforce-eager"]}]),
        [{**{k: v for k, v in VLLM.items() if k not in ("ports", "readinessProbe")}, "image": "my/vllm:dev",
          "args": VLLM_ARGS[:-1] + ["9000", "--enforce-eager"]}],
        id="same-named container: user image and flags win; its own port gets no probe on the runtime's",
    ),
    pytest.param(
        pod(MODEL, containers=[{"name": "model-server", "resources": {"requests": {"cpu": "16"}}, "env": [{"name": "A", "value": "1"}]}]),
        [{**{k: v for k, v in VLLM.items() if k != "resources"}, "resources": {"requests": {"cpu": "16", "memory": "16Gi"}}, "env": [{"name": "A", "value": "1"}]}],
        id="user resources and env win entry by entry",
    ),
    pytest.param(
        pod(MODEL, resources={"requests": {"cpu": "2"}, "limits": {"cpu": "2"}}),
        [{**VLLM, "resources": {"requests": {"memory": "16Gi"}}}],
        id="pod-level CPU: no runtime CPU default (containers may not add up to more than the pod's budget)",
    ),
    pytest.param(
        pod(MODEL, resources={"limits": {"cpu": "8", "memory": "32Gi"}},
            containers=[{"name": "model-server", "resources": {"requests": {"cpu": "1"}}}]),
        [{**VLLM, "resources": {"requests": {"cpu": "1"}}}],
        id="pod-level CPU and memory: only the user's own container requests",
    ),
    pytest.param(
        pod({**MODEL, "infergate.io/gpus": "2"}),
        [{**VLLM, "args": VLLM_ARGS[:5] + ["2"] + VLLM_ARGS[6:]}],
        id="tensor parallel size from the GPU count",
    ),
    pytest.param(
        pod({**MODEL, "infergate.io/gpu-fraction": "0.25"}),
        [{**VLLM, "args": VLLM_ARGS + ["--gpu-memory-utilization", "0.25"]}],
        id="a fraction adds the runtime's fraction args",
    ),
]


@pytest.mark.parametrize(("original", "containers"), CASES)
def test_runtime_container(inject, original, containers):
    assert inject(original, runtime_container.inject)["spec"]["containers"] == containers


def test_sglang_group_ranks(inject):
    labels = {"leaderworkerset.sigs.k8s.io/name": "ds", "leaderworkerset.sigs.k8s.io/group-index": "0"}
    annotations = {"infergate.io/model": "deepseek-r1", "leaderworkerset.sigs.k8s.io/size": "2"}
    leader = inject(pod(annotations, labels={**labels, "leaderworkerset.sigs.k8s.io/worker-index": "0"}), runtime_container.inject)
    worker = inject(pod(annotations, labels={**labels, "leaderworkerset.sigs.k8s.io/worker-index": "1"}), runtime_container.inject)
    leader_args, worker_args = leader["spec"]["containers"][0]["args"], worker["spec"]["containers"][0]["args"]
    assert leader_args[leader_args.index("--node-rank") + 1] == "0"
    assert worker_args[worker_args.index("--node-rank") + 1] == "1"
    assert leader_args[leader_args.index("--tp-size") + 1] == "16"
    assert "--port" in leader_args and "--port" not in worker_args
