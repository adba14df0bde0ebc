"""Clusters with the ecosystem's real controllers (devcluster/controllers.py) and infergate wired in.

Each test module asks for the controllers it needs and shares one cluster among its tests; clusters of other
modules (and the session's `cluster`) never see these controllers, their CRDs or their webhooks.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from devcluster.cluster import LocalCluster
from devcluster.stack import InfergateStack
from tests.clusterkit import running_cluster

MANIFESTS = Path(__file__).resolve().parent / "manifests"
H100 = "NVIDIA-H100-80GB-HBM3"


def ecosystem_stack(tmp_path_factory: pytest.TempPathFactory, *controllers: str, namespace: str,
                    racks: tuple[str, ...] = ("rack-a",), node_labels: dict[str, str] | None = None) -> Iterator[InfergateStack]:
    """A cluster running these controllers, then infergate's webhook and extender (so that the controllers'
    real CRDs, not our stand-ins, serve the InferenceService APIs), two 8-GPU H100 nodes per rack and an
    opted-in namespace."""
    for cluster in running_cluster(tmp_path_factory.mktemp("eco-" + "-".join(controllers)), controllers=controllers):
        stack = InfergateStack(cluster)
        try:
            stack.start()
            for rack in racks:
                cluster.add_gpu_nodes(2, product=H100, labels={"infergate.io/rack": rack, **(node_labels or {})},
                                      name_prefix=f"h100-{rack}")
            opted_in_namespace(cluster, namespace)
            yield stack
        finally:
            stack.stop()


def opted_in_namespace(cluster: LocalCluster, name: str) -> str:
    cluster.apply({"apiVersion": "v1", "kind": "Namespace",
                   "metadata": {"name": name, "labels": {"infergate.io/injection": "enabled"}}})
    cluster.wait_for(f"the default ServiceAccount of {name}",
                     lambda: cluster.kubectl("get", "serviceaccount", "default", "-n", name).returncode == 0,
                     timeout=30)
    return name


def manifest(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((MANIFESTS / name).read_text()) if d]


def apply(cluster: LocalCluster, namespace: str, objects: list[dict[str, Any]]) -> None:
    """kubectl apply, as the user would, of the objects in this namespace."""
    for obj in objects:
        obj.setdefault("metadata", {})["namespace"] = namespace
    cluster.apply(objects)


def pods_of(cluster: LocalCluster, namespace: str, selector: str) -> list[dict[str, Any]]:
    return list(cluster.get_json("pods", "-n", namespace, "-l", selector)["items"])


def wait_bound(cluster: LocalCluster, namespace: str, selector: str, count: int, timeout: float = 120) -> list[dict[str, Any]]:
    cluster.wait_for(f"{count} pods {selector} in {namespace} to be bound",
                     lambda: len([p for p in pods_of(cluster, namespace, selector) if p["spec"].get("nodeName")]) >= count,
                     timeout=timeout, interval=0.5)
    return pods_of(cluster, namespace, selector)


def delete_and_wait(cluster: LocalCluster, namespace: str, kind: str, name: str, selector: str, timeout: float = 60) -> None:
    cluster.kubectl("delete", kind, name, "-n", namespace, "--ignore-not-found", "--wait=true", check=True,
                    timeout=timeout)
    cluster.wait_for(f"the pods {selector} to be gone", lambda: not pods_of(cluster, namespace, selector), timeout=timeout)


def gpus(pod: dict[str, Any]) -> int:
    return sum(int(c.get("resources", {}).get("limits", {}).get("nvidia.com/gpu", 0)) for c in pod["spec"]["containers"])


def node_labels(cluster: LocalCluster) -> dict[str, dict[str, str]]:
    return {n["metadata"]["name"]: n["metadata"].get("labels", {}) for n in cluster.get_json("nodes")["items"]}


def describe(cluster: LocalCluster, namespace: str, kind: str, name: str) -> str:
    """For failure messages: what the controller and the scheduler said."""
    return cluster.kubectl("describe", kind, name, "-n", namespace).stdout[-3000:]
