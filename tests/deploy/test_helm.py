"""The Helm chart deploy/helm/infergate, rendered (no cluster): it lints, and with its default values it renders
the same objects as the kustomize overlays, object by object, so the two installs cannot drift apart unnoticed.

What may differ, and nothing else:
- kustomize names generated ConfigMaps and Secrets NAME-<content hash>; the chart names them NAME and rolls the
  pods with checksum/* annotations on the pod templates instead;
- the chart adds the labels Helm charts carry (app.kubernetes.io/managed-by, helm.sh/chart);
- in self-signed mode the Secret infergate-tls is created by the user (from `infergate certs`), not rendered.
"""

from __future__ import annotations

import base64
import difflib
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import CHART, Manifest, SelfSigned, find, helm, helm_template, one

HELM_ONLY_LABELS = {"app.kubernetes.io/managed-by", "helm.sh/chart"}
GENERATED = re.compile(r'"(infergate-(?:policy|scheduler-config|tls))-[a-z0-9]{10}"')

Key = tuple[str, str, str]


def _normalized(doc: dict[str, Any]) -> dict[str, Any]:
    doc = json.loads(GENERATED.sub(r'"\1"', json.dumps(doc)))

    def strip(meta: dict[str, Any]) -> None:
        for label in HELM_ONLY_LABELS:
            meta.get("labels", {}).pop(label, None)
        annotations = meta.get("annotations", {})
        for key in [k for k in annotations if k.startswith("checksum/")]:
            del annotations[key]
        if "annotations" in meta and not annotations:
            del meta["annotations"]

    strip(doc["metadata"])
    # kustomize copies the Secret's base64 with its line breaks, Helm writes it on one line: the same bytes.
    for hook in doc.get("webhooks", []):
        if "caBundle" in hook["clientConfig"]:
            hook["clientConfig"]["caBundle"] = base64.b64decode(hook["clientConfig"]["caBundle"]).decode()
    template = doc.get("spec", {}).get("template", {}).get("metadata")
    if template is not None:
        strip(template)
    return doc


def _by_key(docs: Manifest) -> dict[Key, dict[str, Any]]:
    keyed = {}
    for doc in map(_normalized, docs):
        key = (doc["kind"], doc["metadata"].get("namespace", ""), doc["metadata"]["name"])
        assert key not in keyed, f"{key} rendered twice"
        keyed[key] = doc
    return keyed


def assert_same_objects(chart: Manifest, kustomized: Manifest) -> None:
    ours, theirs = _by_key(chart), _by_key(kustomized)
    assert sorted(ours) == sorted(theirs), (
        f"only in the chart: {sorted(set(ours) - set(theirs))}; only in kustomize: {sorted(set(theirs) - set(ours))}")
    for key, expected in theirs.items():
        if ours[key] != expected:
            diff = difflib.unified_diff(yaml.safe_dump(expected, sort_keys=True).splitlines(),
                                        yaml.safe_dump(ours[key], sort_keys=True).splitlines(),
                                        "kustomize", "helm", lineterm="")
            raise AssertionError(f"{key} differs:\n" + "\n".join(diff))


def _ca(self_signed: SelfSigned) -> list[str]:
    return ["--set-file", f"tls.caCert={self_signed.tls / 'ca.crt'}"]


@pytest.mark.parametrize("mode", ["self-signed", "cert-manager"])
def test_helm_lint(mode: str, self_signed: SelfSigned) -> None:
    result = helm("lint", "--strict", str(CHART), "--set", f"tls.mode={mode}", *_ca(self_signed))
    assert result.returncode == 0, result.stdout + result.stderr


def test_self_signed_renders_the_self_signed_overlay(self_signed: SelfSigned) -> None:
    kustomized = [d for d in self_signed.docs if d["kind"] != "Secret"]
    assert_same_objects(helm_template(*_ca(self_signed)), kustomized)


def test_cert_manager_renders_the_cert_manager_overlay(cert_manager: Manifest, self_signed: SelfSigned) -> None:
    assert_same_objects(helm_template("--set", "tls.mode=cert-manager"), cert_manager)


def test_the_comparison_sees_a_difference(self_signed: SelfSigned) -> None:
    chart = helm_template(*_ca(self_signed), "--set", "webhook.timeoutSeconds=7")
    with pytest.raises(AssertionError, match="MutatingWebhookConfiguration"):
        assert_same_objects(chart, [d for d in self_signed.docs if d["kind"] != "Secret"])


def test_self_signed_without_the_ca_says_what_to_do() -> None:
    # helm template cannot read the Secret from a cluster, so the CA must come from values.
    result = helm("template", "infergate", str(CHART))
    assert result.returncode != 0
    assert "--set-file tls.caCert=" in result.stderr


def test_unknown_tls_mode_is_refused(self_signed: SelfSigned) -> None:
    result = helm("template", "infergate", str(CHART), "--set", "tls.mode=manual", *_ca(self_signed))
    assert result.returncode != 0 and "tls.mode must be self-signed or cert-manager" in result.stderr


def test_values_reach_the_objects(self_signed: SelfSigned, tmp_path: Path) -> None:
    values = {
        "namespace": {"name": "gpu-system"},
        "image": {"repository": "registry.example/infergate", "tag": "9.9.9", "pullPolicy": "Always"},
        "webhook": {"replicas": 3, "failurePolicy": "Ignore",
                    # Helm merges maps with the defaults: null removes the default label.
                    "namespaceSelector": {"matchLabels": {"team": "ml", "infergate.io/injection": None},
                                          "matchExpressions": [{"key": "tier", "operator": "Exists"}]},
                    "resources": {"requests": {"cpu": "1"}}},
        "scheduler": {"replicas": 1, "kubeScheduler": {"image": {"tag": "v1.33.5"}},
                      "extender": {"resources": {"limits": {"memory": "8Gi"}}}},
        "priorityClasses": {"create": False},
    }
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    docs = helm_template("-f", str(values_file), *_ca(self_signed))

    assert not find(docs, "PriorityClass")
    assert one(docs, "Namespace", "gpu-system")
    webhook = one(docs, "Deployment", "infergate-webhook", "gpu-system")
    assert webhook["spec"]["replicas"] == 3
    [container] = webhook["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example/infergate:9.9.9"
    assert container["imagePullPolicy"] == "Always"
    assert container["resources"]["requests"] == {"cpu": "1", "memory": "128Mi"}  # merged with the defaults
    scheduler = one(docs, "Deployment", "infergate-scheduler", "gpu-system")["spec"]
    assert scheduler["replicas"] == 1
    assert scheduler["template"]["spec"]["containers"][0]["image"] == "registry.k8s.io/kube-scheduler:v1.33.5"
    assert scheduler["template"]["spec"]["initContainers"][0]["resources"]["limits"]["memory"] == "8Gi"
    hooks = [*one(docs, "MutatingWebhookConfiguration", "infergate")["webhooks"],
             *one(docs, "ValidatingWebhookConfiguration", "infergate")["webhooks"]]
    for hook in hooks:
        assert hook["failurePolicy"] == "Ignore"
        assert hook["clientConfig"]["service"]["namespace"] == "gpu-system"
        assert base64.b64decode(hook["clientConfig"]["caBundle"]) == (self_signed.tls / "ca.crt").read_bytes()
        assert hook["namespaceSelector"] == {"matchLabels": {"team": "ml"}, "matchExpressions": [
            {"key": "tier", "operator": "Exists"},
            {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["gpu-system", "kube-system"]}]}
    # Every namespaced object follows, and the leader-election Lease the scheduler configuration names; only
    # the kube-system RoleBinding stays where its Role is.
    namespaces = {d["metadata"].get("namespace") for d in docs} - {None}
    assert namespaces == {"gpu-system", "kube-system"}
    config = yaml.safe_load(one(docs, "ConfigMap", "infergate-scheduler-config")["data"]["config.yaml"])
    assert config["leaderElection"]["resourceNamespace"] == "gpu-system"


def test_policy_from_values_replaces_and_adds_files(self_signed: SelfSigned, tmp_path: Path) -> None:
    models = tmp_path / "models.yaml"
    models.write_text("apiVersion: infergate.io/v1alpha1\nkind: ModelList\nitems: []\n")
    default = helm_template(*_ca(self_signed))
    changed = helm_template(*_ca(self_signed), "--set-file", f"policy.files.models\\.yaml={models}",
                            "--set-string", "policy.files.extra\\.yaml=kind: Extra")
    before = one(default, "ConfigMap", "infergate-policy")["data"]
    after = one(changed, "ConfigMap", "infergate-policy")["data"]
    assert after["models.yaml"] == models.read_text()
    assert after["extra.yaml"] == "kind: Extra"
    assert after["runtimes.yaml"] == before["runtimes.yaml"]
    assert "kustomization.yaml" not in before
    # A policy change rolls both Deployments.
    for name in ("infergate-webhook", "infergate-scheduler"):
        old = one(default, "Deployment", name)["spec"]["template"]["metadata"]["annotations"]
        new = one(changed, "Deployment", name)["spec"]["template"]["metadata"]["annotations"]
        assert old["checksum/policy"] != new["checksum/policy"]
