"""A local Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok) for
tests and demos. Build the binaries with devcluster/build.sh; see docs/devcluster.md."""

from devcluster.cluster import (
    DEFAULT_SCHEDULER_CONFIG,
    ClusterError,
    LocalCluster,
    default_bin_dir,
    find_kubectl,
    missing_binaries,
)

__all__ = [
    "DEFAULT_SCHEDULER_CONFIG",
    "ClusterError",
    "LocalCluster",
    "default_bin_dir",
    "find_kubectl",
    "missing_binaries",
]
