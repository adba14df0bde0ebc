"""Node and Pod objects as the API server sends them, for extender tests and benchmarks."""

from __future__ import annotations

from typing import Any


def node(name: str, gpus: int = 8, product: str = "NVIDIA-H100-80GB-HBM3", cpu: str = "96", **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"nvidia.com/gpu.product": product, **labels}},
        "status": {"allocatable": {"cpu": cpu, "memory": "1Ti", "nvidia.com/gpu": str(gpus), "pods": "110"}},
    }


def pod(name: str, gpus: int = 0, share: int = 0, node_name: str | None = None, namespace: str = "ml", uid: str | None = None,
        annotations: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    limits: dict[str, str] = {}
    if gpus:
        limits["nvidia.com/gpu"] = str(gpus)
    if share:
        limits["infergate.io/gpu-milli"] = str(share)
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "x", "resources": {"requests": {"cpu": "1", **limits}, "limits": limits}}], **extra}
    if node_name:
        spec["nodeName"] = node_name
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace, "uid": uid or f"uid-{name}", "annotations": annotations or {}},
            "spec": spec, "status": {"phase": "Running" if node_name else "Pending"}}
