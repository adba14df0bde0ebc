"""Workload classes of the pods real controllers and manifests create (labels read from their source)."""

from __future__ import annotations

import pytest

from infergate.workloads import workload_class_of
from policies.schema import NamespaceRule
from tests.podkit import pod
from webhook.pod.mutator import mutate_pod

VLLM = {"name": "vllm", "image": "vllm/vllm-openai:v0.10.1", "command": ["vllm", "serve", "Qwen/Qwen2.5-1.5B-Instruct"]}
TRAINER = {"name": "trainer", "image": "nvcr.io/nvidia/pytorch:24.07-py3", "command": ["torchrun", "train.py"]}

CASES = [
    # (labels, containers, class)
    pytest.param({"ome.io/inferenceservice": "llama", "component": "engine", "serving-runtime": "srt", "base-model-name": "llama"},
                 [{"name": "ome-container", "image": "lmsysorg/sglang:v0.5"}], "inference", id="OME engine pod (ome.io/inferenceservice)"),
    pytest.param({"ome.io/inferenceservice": "llama", "component": "router"}, [{"name": "router", "image": "ome/router:1"}],
                 "inference", id="OME router pod"),
    pytest.param({"serving.kserve.io/inferenceservice": "sklearn-iris", "component": "predictor"},
                 [{"name": "kserve-container", "image": "kserve/sklearnserver:v0.15.2"}], "inference", id="KServe predictor pod"),
    pytest.param({"leaderworkerset.sigs.k8s.io/name": "vllm", "leaderworkerset.sigs.k8s.io/worker-index": "0"},
                 [{"name": "leader", "image": "registry.example/serving:1"}], "inference", id="LeaderWorkerSet leader without a model"),
    pytest.param({"llm-d.ai/inferenceServing": "true", "llm-d.ai/role": "decode"}, [{"name": "vllm", "image": "ghcr.io/llm-d/llm-d:v0.2.0"}],
                 "inference", id="llm-d decode pod"),
    pytest.param({"app": "qwen"}, [VLLM], "inference", id="vLLM Deployment from vLLM's docs"),
    pytest.param({"app": "qwen"}, [{"name": "server", "image": "python:3.11", "command": ["sh", "-c", "pip install vllm && vllm serve Qwen/Qwen2.5-1.5B"]}],
                 "inference", id="vllm serve inside a shell script"),
    pytest.param({"app": "tgi"}, [{"name": "tgi", "image": "ghcr.io/huggingface/text-generation-inference:2.4.1"}], "inference", id="TGI"),
    pytest.param({"jobset.sigs.k8s.io/jobset-name": "pretrain", "jobset.sigs.k8s.io/replicatedjob-name": "workers"}, [TRAINER],
                 "training", id="JobSet pod"),
    pytest.param({"training.kubeflow.org/job-name": "mnist", "training.kubeflow.org/replica-type": "worker"}, [TRAINER],
                 "training", id="Kubeflow PyTorchJob pod"),
    pytest.param({"training.kubeflow.org/replica-type": "master", "training.kubeflow.org/operator-name": "pytorchjob-controller"},
                 [TRAINER], "training", id="Kubeflow pod by replica type"),
    pytest.param({"ome.io/trainingjob": "ft"}, [TRAINER], "training", id="OME training job"),
    pytest.param({"jobset.sigs.k8s.io/jobset-name": "rl"}, [VLLM], "training", id="a training marker wins over a vLLM image"),
    pytest.param({"app": "batch"}, [TRAINER], "training", id="no model, no marker: the namespace's default"),
]


@pytest.mark.parametrize(("labels", "containers", "expected"), CASES)
def test_class_of_real_pods(policy, labels, containers, expected):
    edited = pod(None, labels=labels, containers=containers)
    mutate_pod(edited, "ml", policy)
    assert edited["metadata"]["labels"]["infergate.io/workload"] == expected
    assert edited["spec"]["priorityClassName"] == f"infergate-{expected}"


@pytest.mark.parametrize(("labels", "containers", "expected"), CASES)
def test_extender_reads_the_same_class_from_metadata_and_spec(labels, containers, expected):
    assert workload_class_of({"labels": labels}, has_model=False, spec={"containers": containers})[0] == expected


def test_the_annotation_overrides_everything():
    metadata = {"labels": {"ome.io/inferenceservice": "x"}, "annotations": {"infergate.io/workload": "training"}}
    assert workload_class_of(metadata, has_model=True) == ("training", "annotation")


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        pytest.param({"namespaces": ["*"]}, "training", id="unset: training where allowed"),
        pytest.param({"namespaces": ["*"], "defaultWorkloadClass": "inference"}, "inference", id="the rule's default"),
        pytest.param({"namespaces": ["*"], "workloadClasses": ["inference"]}, "inference", id="only inference allowed"),
    ],
)
def test_namespace_default_class(rule, expected):
    default = NamespaceRule.model_validate(rule).default_class
    assert workload_class_of({"labels": {"app": "x"}}, has_model=False, default=default)[0] == expected


def test_default_class_must_be_allowed():
    with pytest.raises(ValueError, match="defaultWorkloadClass"):
        NamespaceRule.model_validate({"namespaces": ["*"], "workloadClasses": ["training"], "defaultWorkloadClass": "inference"})


def test_serving_pod_with_gpus_gets_placement_wiring(policy):
    vllm = {**VLLM, "resources": {"limits": {"nvidia.com/gpu": "2"}}}
    edited = pod({"infergate.io/gpu-product": "NVIDIA-H100-80GB-HBM3"}, labels={"app": "qwen"}, containers=[vllm])
    mutate_pod(edited, "ml", policy)
    assert edited["spec"]["tolerations"] and edited["spec"]["affinity"]["nodeAffinity"]
    assert {"name": "dshm", "mountPath": "/dev/shm"} in edited["spec"]["containers"][0]["volumeMounts"]


def test_recognised_serving_pod_in_a_training_only_namespace_keeps_the_default(restricted_policy):
    edited = pod(None, labels={"app": "qwen"}, containers=[VLLM])
    mutation = mutate_pod(edited, "team-small", restricted_policy)
    assert edited["metadata"]["labels"]["infergate.io/workload"] == "training"
    assert any("may not run inference" in w for w in mutation.warnings)
