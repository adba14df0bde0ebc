"""What only the Helm install does, against a real API server: `helm upgrade` with a changed policy rolls both
Deployments onto it, and `helm uninstall` leaves nothing behind. The checks every install gets (objects,
scope, RBAC, the scheduler pod) run on the chart in tests/deploy/test_install_e2e.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devcluster import LocalCluster
from tests.clusterkit import running_cluster
from tests.deploy.conftest import CHART, NAMESPACE, REPO, Manifest, SelfSigned, helm, helm_install

pytestmark = pytest.mark.e2e

DEPLOYMENTS = ("infergate-webhook", "infergate-scheduler")
# Every kind the chart installs, and the ReplicaSets and pods its Deployments make.
KINDS = ("namespaces,priorityclasses,clusterroles,clusterrolebindings,mutatingwebhookconfigurations,"
         "validatingwebhookconfigurations,serviceaccounts,roles,rolebindings,configmaps,secrets,services,"
         "deployments,replicasets,pods,poddisruptionbudgets")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    yield from running_cluster(tmp_path_factory.mktemp("helm-cluster"), scheduler_config=None)


@pytest.fixture(scope="module")
def installed(cluster: LocalCluster, self_signed: SelfSigned) -> Manifest:
    return helm_install(cluster, self_signed)


def _part_of_infergate(cluster: LocalCluster) -> list[str]:
    items = cluster.get_json(KINDS, "-A", "-l", "app.kubernetes.io/part-of=infergate")["items"]
    return [f"{i['kind']} {i['metadata'].get('namespace', '')}/{i['metadata']['name']}" for i in items]


def _replica_sets(cluster: LocalCluster, name: str) -> list[dict[str, object]]:
    return list(cluster.get_json("replicasets", "-n", NAMESPACE, "-l", f"app.kubernetes.io/name={name}")["items"])


def _template_annotations(cluster: LocalCluster, name: str) -> dict[str, str]:
    deployment = cluster.get_json("deployment", name, "-n", NAMESPACE)
    return dict(deployment["spec"]["template"]["metadata"].get("annotations", {}))


def test_upgrade_with_a_changed_policy(cluster: LocalCluster, installed: Manifest, self_signed: SelfSigned,
                                       tmp_path: Path) -> None:
    for name in DEPLOYMENTS:  # the first rollout is under way, so the upgrade is a second one
        cluster.wait_for(f"the first ReplicaSet of {name}", lambda n=name: len(_replica_sets(cluster, n)) == 1)
    before = {name: _template_annotations(cluster, name) for name in DEPLOYMENTS}
    models = tmp_path / "models.yaml"
    models.write_text((REPO / "policies" / "models.yaml").read_text().replace("gpus: 4", "gpus: 8", 1))
    result = helm("upgrade", "infergate", str(CHART), "--namespace", "default", "--reuse-values",
                  "--set-file", f"policy.files.models\\.yaml={models}", kubeconfig=cluster.kubeconfig)
    assert result.returncode == 0, result.stderr

    policy = cluster.get_json("configmap", "infergate-policy", "-n", NAMESPACE)["data"]
    assert policy["models.yaml"] == models.read_text()
    assert policy["runtimes.yaml"] == (REPO / "policies" / "runtimes.yaml").read_text()
    for name in DEPLOYMENTS:
        after = _template_annotations(cluster, name)
        assert after["checksum/policy"] != before[name]["checksum/policy"], name
        assert after["checksum/scheduler-config"] == before[name]["checksum/scheduler-config"], name
        # The rollout started: a second ReplicaSet for the new pod template.
        cluster.wait_for(f"a new ReplicaSet of {name}", lambda n=name: len(_replica_sets(cluster, n)) == 2)
    history = helm("history", "infergate", "--namespace", "default", kubeconfig=cluster.kubeconfig)
    assert history.returncode == 0 and "Upgrade complete" in history.stdout, history.stdout


def test_uninstall_leaves_nothing_behind(cluster: LocalCluster, installed: Manifest) -> None:
    assert _part_of_infergate(cluster), "the install labelled nothing app.kubernetes.io/part-of=infergate"
    result = helm("uninstall", "infergate", "--namespace", "default", "--wait", "--timeout", "2m",
                  kubeconfig=cluster.kubeconfig)
    assert result.returncode == 0, result.stderr

    # The namespace goes with everything in it, the Secret the user created included.
    cluster.wait_for(f"namespace {NAMESPACE} to be gone", lambda: cluster.kubectl(
        "get", "namespace", NAMESPACE).returncode != 0, timeout=120)
    for doc in installed:
        meta = doc["metadata"]
        args = ["get", doc["kind"], meta["name"], *(["-n", meta["namespace"]] if "namespace" in meta else [])]
        assert cluster.kubectl(*args).returncode != 0, f"{doc['kind']} {meta['name']} is left"
    assert _part_of_infergate(cluster) == []
    # Nor the release record.
    records = cluster.get_json("secrets", "-n", "default", "-l", "owner=helm")["items"]
    assert records == []
