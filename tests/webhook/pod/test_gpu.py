"""GPU wiring: resources, fractional shares, toleration, product affinity, shared memory."""

import pytest

from tests.podkit import pod
from webhook.pod import gpu, runtime_container

TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
H100 = {"key": "nvidia.com/gpu.product", "operator": "In", "values": ["NVIDIA-H100-80GB-HBM3"]}
SHM_VOLUME = {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}}


def run(inject, annotations, **spec):
    return inject(pod(annotations, **spec), runtime_container.inject, gpu.inject)["spec"]


def test_whole_gpus(inject):
    spec = run(inject, {"infergate.io/model": "llama-3.1-8b-instruct"})
    resources = spec["containers"][0]["resources"]
    assert resources["limits"] == {"nvidia.com/gpu": "1"} and resources["requests"]["nvidia.com/gpu"] == "1"
    assert spec["tolerations"] == [TOLERATION]
    assert "affinity" not in spec and "volumes" not in spec


def test_multi_gpu_gets_shm(inject):
    spec = run(inject, {"infergate.io/model": "llama-3.1-70b-instruct"})
    assert spec["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": "4"}
    assert spec["volumes"] == [SHM_VOLUME]
    assert {"name": "dshm", "mountPath": "/dev/shm"} in spec["containers"][0]["volumeMounts"]


def test_fraction(inject):
    spec = run(inject, {"infergate.io/model": "qwen2.5-7b-instruct", "infergate.io/gpu-fraction": "0.5"})
    container = spec["containers"][0]
    assert container["resources"]["limits"] == {"infergate.io/gpu-milli": "500"}
    assert "nvidia.com/gpu" not in container["resources"]["requests"]
    assert {
        "name": "NVIDIA_VISIBLE_DEVICES",
        "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['infergate.io/gpu-index']"}},
    } in container["env"]


@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        pytest.param(None, [{"matchExpressions": [H100]}], id="no affinity"),
        pytest.param(
            [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}, {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}],
            [
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}, H100]},
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}], "matchExpressions": [H100]},
            ],
            id="ANDed into every existing term",
        ),
        pytest.param(
            [{"matchExpressions": [{"key": "nvidia.com/gpu.product", "operator": "In", "values": ["A100"]}]}],
            [{"matchExpressions": [{"key": "nvidia.com/gpu.product", "operator": "In", "values": ["A100"]}]}],
            id="the user's own product requirement wins",
        ),
    ],
)
def test_product_affinity(inject, existing, expected):
    extra = {}
    if existing is not None:
        extra["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": existing}}}
    spec = run(inject, {"infergate.io/model": "llama-3.1-8b-instruct", "infergate.io/gpu-product": "NVIDIA-H100-80GB-HBM3"}, **extra)
    assert spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"] == expected


@pytest.mark.parametrize(
    "tolerations",
    [
        [{"operator": "Exists"}],
        [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        [{"key": "nvidia.com/gpu", "operator": "Exists"} | {"effect": "NoSchedule"}],
    ],
)
def test_existing_toleration_is_kept(inject, tolerations):
    spec = run(inject, {"infergate.io/model": "llama-3.1-8b-instruct"}, tolerations=tolerations)
    assert spec["tolerations"] == tolerations


def test_user_gpu_limit_is_the_gpu_count(inject):
    containers = [{"name": "model-server", "resources": {"limits": {"nvidia.com/gpu": "2"}}}]
    spec = run(inject, {"infergate.io/model": "llama-3.1-8b-instruct"}, containers=containers)
    container = spec["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert container["resources"]["requests"]["nvidia.com/gpu"] == "2"
    assert container["args"][container["args"].index("--tensor-parallel-size") + 1] == "2"
