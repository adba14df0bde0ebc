"""Properties over pods shaped like real ones: serving containers named anything, GPUs on any container (and
of other vendors), shell scripts, sidecars and init containers, LeaderWorkerSet labels before and after LWS's
webhook, and the user's volumes under our names. Every answer is an admission or a 4xx naming the field; an
admitted pod is valid, admitting it again changes nothing, and no user field is lost."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies import SHIPPED_POLICY_DIR, load_policy
from tests.webhook.test_realworld import admit, assert_no_user_field_lost, assert_valid_pod

POLICY = load_policy(SHIPPED_POLICY_DIR)
LWS = "leaderworkerset.sigs.k8s.io"
names = st.sampled_from(["vllm", "main", "server", "model-server", "sidecar", "proxy", "kserve-container", "ome-container"])
images = st.sampled_from(["vllm/vllm-openai:v0.11.0", "lmsysorg/sglang:v0.5", "busybox", "envoyproxy/envoy:v1", "registry.example/llm:1", "rocm/vllm:latest"])
gpu_resources = st.sampled_from(["nvidia.com/gpu", "nvidia.com/gpu", "amd.com/gpu"])
commands = st.sampled_from([
    None,
    ["sh", "-c", "vllm serve $MODEL_PATH"],
    ["/bin/bash", "-c", 'exec vllm serve "$@"'],
    ["python3", "-m", "sglang.launch_server", "--port", "40000"],
    ["vllm", "serve", "Qwen/Qwen2.5-1.5B"],
])


@st.composite
def containers(draw: st.DrawFn, name: str) -> dict[str, Any]:
    container: dict[str, Any] = {"name": name, "image": draw(images)}
    command = draw(commands)
    if command:
        container["command"] = command
    if draw(st.booleans()):
        container["args"] = draw(st.sampled_from([["--max-model-len", "4096"], ["--port", "8000"], ["--enforce-eager"]]))
    if draw(st.booleans()):
        count = str(draw(st.integers(1, 8)))
        resource = draw(gpu_resources)
        resources: dict[str, Any] = {"limits": {resource: count}}
        if draw(st.booleans()):
            resources["requests"] = {resource: draw(st.sampled_from([count, "1"]))}
        if draw(st.booleans()):
            resources["limits"]["memory"] = draw(st.sampled_from(["8Gi", "64Gi"]))
        container["resources"] = resources
    if draw(st.booleans()):
        container["ports"] = [{"containerPort": draw(st.sampled_from([8000, 8080, 40000]))}]
    mounts = draw(st.lists(st.sampled_from([("model-store", "/data"), ("shm", "/dev/shm"), ("weights", "/mnt/models")]), unique_by=lambda m: m[1], max_size=2))
    if mounts:
        container["volumeMounts"] = [{"name": n, "mountPath": p} for n, p in mounts]
    return container


@st.composite
def pods(draw: st.DrawFn) -> dict[str, Any]:
    container_names = draw(st.lists(names, min_size=1, max_size=3, unique=True))
    spec: dict[str, Any] = {"containers": [draw(containers(n)) for n in container_names]}
    used = {m["name"] for c in spec["containers"] for m in c.get("volumeMounts", [])}
    volumes = {"model-store": {"configMap": {"name": "prompts"}}, "shm": {"emptyDir": {"medium": "Memory"}},
               "weights": {"persistentVolumeClaim": {"claimName": "w"}}, "dshm": {"secret": {"secretName": "s"}}}
    extra = draw(st.sets(st.sampled_from(sorted(volumes)), max_size=2))
    spec["volumes"] = [{"name": n, **volumes[n]} for n in sorted(used | extra)]
    if draw(st.booleans()):
        spec["initContainers"] = [{"name": draw(st.sampled_from(["model-init", "setup"])), "image": "busybox"}]
    annotations = {}
    if draw(st.booleans()):
        annotations["infergate.io/model"] = draw(st.sampled_from(["llama-3.1-8b-instruct", "llama-3.1-70b-instruct", "deepseek-r1", "qwen2.5-7b-instruct"]))
    labels: dict[str, str] = {}
    name = "p"
    shape = draw(st.sampled_from(["plain", "lws-leader", "lws-worker", "ome", "kserve"]))
    if shape.startswith("lws"):
        group = draw(st.integers(0, 3))
        after_lws_webhook = draw(st.booleans())
        annotations[f"{LWS}/size"] = "2"
        labels[f"{LWS}/name"] = "ds"
        if shape == "lws-leader":
            name = f"ds-{group}"
            labels[f"{LWS}/worker-index"] = "0"
            if after_lws_webhook:
                labels[f"{LWS}/group-index"] = str(group)
        else:
            name = f"ds-{group}-1"
            labels[f"{LWS}/group-index"] = str(group)
            annotations[f"{LWS}/leader-name"] = f"ds-{group}"
            if after_lws_webhook:
                labels[f"{LWS}/worker-index"] = "1"
    elif shape == "ome":
        labels.update({"ome.io/inferenceservice": "llama", "component": "engine"})
    elif shape == "kserve":
        labels.update({"serving.kserve.io/inferenceservice": "llama", "component": "predictor"})
    metadata = {"name": name, "namespace": "ml", "labels": labels, "annotations": annotations}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pods())
def test_realworld_shapes(original):
    decision, admitted = admit(POLICY, copy.deepcopy(original))
    if not decision.allowed:
        assert 400 <= decision.code < 500 and decision.message.startswith("pod ml/"), decision.message
        assert decision.field, decision.message
        return
    assert_valid_pod(admitted)
    assert_no_user_field_lost(original, admitted)
    assert admit(POLICY, admitted)[0].patch == [], "admitting the output again changes nothing"
    labels = admitted["metadata"]["labels"]
    if original["metadata"]["annotations"].get("infergate.io/model") or set(original["metadata"]["labels"]) - {"component"}:
        assert labels["infergate.io/workload"] == "inference", "a serving pod is never training by default"


junk = st.sampled_from([5, "x", ["x"], {"a": 1}, None, True])
formats = st.sampled_from(["huggingface", "sklearn", "xgboost", "tensorflow", "triton", "onnx", "safetensors"])
uris = st.sampled_from(["hf://meta-llama/Llama-3.1-8B-Instruct", "hf://Qwen/Qwen2.5-0.5B:main", "s3://bucket/m", "gs://kfserving-examples/models/x",
                        "pvc://llama/model", "https://example.com/m.tar.gz", "oci://quay.io/x/m:1", "oci+native://quay.io/x/m:1", "ftp://x"])
runtimes = st.sampled_from([None, "vllm", "sglang", "kserve-huggingfaceserver", "kserve-sklearnserver", "tgi"])


def maybe_junk(draw: st.DrawFn, value: Any) -> Any:
    return draw(junk) if draw(st.integers(0, 9)) == 0 else value


@st.composite
def kserve(draw: st.DrawFn) -> dict[str, Any]:
    model: dict[str, Any] = {"modelFormat": maybe_junk(draw, {"name": draw(formats)})}
    where = draw(st.sampled_from(["storageUri", "storageUris", "model_id", "none"]))
    if where == "storageUri":
        model["storageUri"] = maybe_junk(draw, draw(uris))
    elif where == "storageUris":
        model["storageUris"] = maybe_junk(draw, [{"uri": draw(uris), "mountPath": "/mnt/models"}])
    elif where == "model_id":
        model["args"] = ["--model_name=m", "--model_id=meta-llama/Llama-3.1-8B-Instruct"]
    runtime = draw(runtimes)
    if runtime:
        model["runtime"] = maybe_junk(draw, runtime)
    if draw(st.booleans()):
        limits = draw(st.sampled_from([{"cpu": "1", "memory": "2Gi"}, {"nvidia.com/gpu": "2"}, {"amd.com/gpu": "1"}, {"nvidia.com/gpu": "16"}]))
        model["resources"] = maybe_junk(draw, {"limits": limits})
    predictor: dict[str, Any] = {"model": model}
    if draw(st.integers(0, 5)) == 0:
        predictor = draw(st.sampled_from([{"sklearn": {"storageUri": "gs://x/y"}}, {"containers": [{"name": "c", "image": "i"}]}]))
    annotations = {}
    if draw(st.booleans()):
        annotations["infergate.io/model"] = maybe_junk(draw, draw(st.sampled_from(["llama-3.1-8b-instruct", "deepseek-r1", "gpt-9"])))
    metadata = {"name": "svc", "namespace": "ml", "annotations": annotations}
    return {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "metadata": metadata, "spec": {"predictor": predictor}}


@st.composite
def ome(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if draw(st.booleans()):
        spec["model"] = {"name": maybe_junk(draw, draw(st.sampled_from(["llama-3.1-8b-instruct", "llama-3.1-70b-instruct", "deepseek-r1"])))}
    else:
        legacy: dict[str, Any] = {"baseModel": "llama-3.1-8b-instruct"}
        if draw(st.booleans()):
            legacy["runtime"] = draw(st.sampled_from(["vllm", "sglang"]))
        spec["predictor"] = {"model": legacy}
    for component in draw(st.sets(st.sampled_from(["engine", "decoder", "router"]))):
        part: dict[str, Any] = {}
        if draw(st.booleans()):
            part["runner"] = maybe_junk(draw, {"resources": {"limits": {"nvidia.com/gpu": draw(st.sampled_from(["1", "4", "8"]))}}})
        if draw(st.booleans()):
            part["leader"] = maybe_junk(draw, {"runner": maybe_junk(draw, {})})
        if draw(st.booleans()):
            part["minReplicas"] = maybe_junk(draw, 1)
        spec[component] = maybe_junk(draw, part)
    return {"apiVersion": "ome.io/v1beta1", "kind": "InferenceService", "metadata": {"name": "svc", "namespace": "ml"}, "spec": spec}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(kserve(), ome()))
def test_realworld_inference_services(original):
    decision, admitted = admit(POLICY, copy.deepcopy(original))
    if not decision.allowed:
        assert 400 <= decision.code < 500 and decision.message.startswith("InferenceService ml/svc"), decision.message
        return
    assert_no_user_field_lost(original, admitted)
    assert admit(POLICY, admitted)[0].patch == [], "admitting the output again changes nothing"
