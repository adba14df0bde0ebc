"""The session's local control plane for end-to-end tests.

When the binaries are missing the e2e tests are skipped with a message saying how to build them; with
INFERGATE_E2E_REQUIRED=1 (which CI sets) they fail instead, so a broken build can never pass as green.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devcluster import LocalCluster
from devcluster.stack import InfergateStack
from tests.clusterkit import running_cluster


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    yield from running_cluster(tmp_path_factory.mktemp("cluster"))


H100 = "NVIDIA-H100-80GB-HBM3"


@pytest.fixture(scope="session")
def stack(cluster: LocalCluster) -> Iterator[InfergateStack]:
    """infergate wired into the cluster, with GPU nodes in three racks and every sample applied."""
    infergate = InfergateStack(cluster)
    try:
        yield _started(infergate, cluster)
    finally:
        infergate.stop()


def _started(infergate: InfergateStack, cluster: LocalCluster) -> InfergateStack:
    infergate.start()
    cluster.add_gpu_nodes(2, product=H100, labels={"infergate.io/rack": "rack-a"}, name_prefix="h100-a")
    cluster.add_gpu_nodes(2, product=H100, labels={"infergate.io/rack": "rack-b"}, name_prefix="h100-b")
    cluster.add_gpu_nodes(2, gpus_per_node=4, product="NVIDIA-A10", labels={"infergate.io/rack": "rack-c"}, name_prefix="a10")
    result = infergate.apply_samples()
    assert result.returncode == 0, result.stderr
    again = infergate.apply_samples()
    assert again.returncode == 0, f"re-applying the samples must be a no-op: {again.stderr}"
    return infergate
