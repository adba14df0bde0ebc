"""Pods the OME and KServe controllers create get the inference class and GPU placement wiring."""

from tests.podkit import pod
from webhook.pod.mutator import mutate_pod


def controller_pod(labels, gpus="2", **annotations):
    containers = [{"name": "kserve-container", "image": "kserve/vllm:1", "resources": {"limits": {"nvidia.com/gpu": gpus}}},
                  {"name": "queue-proxy", "image": "knative/qp:1"}]
    return pod(annotations or None, labels=labels, containers=containers)


def test_kserve_predictor_pod(policy):
    edited = controller_pod({"serving.kserve.io/inferenceservice": "llama"}, **{"infergate.io/gpu-product": "NVIDIA-H100-80GB-HBM3"})
    mutate_pod(edited, "ml", policy)
    spec = edited["spec"]
    assert spec["priorityClassName"] == "infergate-inference" and spec["schedulerName"] == "infergate-scheduler"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{"matchExpressions": [{"key": "nvidia.com/gpu.product", "operator": "In", "values": ["NVIDIA-H100-80GB-HBM3"]}]}]
    assert {"name": "dshm", "mountPath": "/dev/shm"} in spec["containers"][0]["volumeMounts"]
    assert "volumeMounts" not in spec["containers"][1], "only GPU containers get /dev/shm"
    assert edited["metadata"]["labels"]["infergate.io/workload"] == "inference"


def test_ome_lws_worker_gets_shm_with_one_gpu(policy):
    labels = {"ome.io/inferenceservice": "ds", "component": "engine", "leaderworkerset.sigs.k8s.io/name": "ds", "leaderworkerset.sigs.k8s.io/group-index": "0", "leaderworkerset.sigs.k8s.io/worker-index": "1"}
    edited = controller_pod(labels, gpus="1")
    mutate_pod(edited, "ml", policy)
    assert any(v["name"] == "dshm" for v in edited["spec"]["volumes"])


def test_plain_training_pod_gets_only_its_class(policy):
    edited = controller_pod({"training.kubeflow.org/job-name": "j"})
    mutate_pod(edited, "ml", policy)
    assert edited["spec"]["priorityClassName"] == "infergate-training"
    assert "tolerations" not in edited["spec"] and "volumes" not in edited["spec"]
