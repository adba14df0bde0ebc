"""The install against a real API server and a real kube-scheduler (the local control plane of devcluster/).

Every check runs twice, in a control plane each: on the self-signed overlay applied with kubectl, and on the Helm
chart installed with `helm install` (self-signed mode, the Secret created from the same `infergate certs`
output). tests/deploy/test_helm_e2e.py covers what only Helm does (upgrade, uninstall).

- The whole self-signed rendering is applied with strict validation: every object is one the API server
  accepts, as written.
- With the webhook configurations in place and no webhook answering, pod creation fails in an opted-in
  namespace (failurePolicy Fail) and succeeds everywhere else, including infergate-system and kube-system when
  someone labels them.
- RBAC, asked of the API server: the webhook's account can do nothing, the scheduler's account can do what
  kube-scheduler and the extender need.
- kube-scheduler runs with deploy/base/scheduler/kube-scheduler-config.yaml (only the extender's address and CA
  changed) as the infergate-scheduler ServiceAccount with only our RBAC: it wins the Lease, serves the probe
  paths the Deployment uses and authenticated /metrics, sends GPU and fractional pods to the extender to filter,
  rank and bind, and every pod to its score-only entry (a stub, over TLS with the overlay's certificate).
- The same, with the real `infergate extender` beside it as the Deployment runs it (same account, policy from
  the rendered ConfigMap): pods get placed and nothing is forbidden.

These run in a control plane of their own: the webhook configurations they install would refuse pods in the
opted-in namespaces other tests use.
"""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from devcluster import ClusterError, LocalCluster, default_bin_dir
from devcluster.cluster import Component, free_port
from tests.clusterkit import running_cluster
from tests.deploy.conftest import DEPLOY, NAMESPACE, Manifest, SelfSigned, find, helm_install, infergate_path

pytestmark = pytest.mark.e2e

SCHEDULER_ACCOUNT = f"system:serviceaccount:{NAMESPACE}:infergate-scheduler"
WEBHOOK_ACCOUNT = f"system:serviceaccount:{NAMESPACE}:infergate-webhook"


@pytest.fixture(scope="module", params=["kustomize", "helm"])
def installer(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def cluster(installer: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    # No default scheduler: the one kube-scheduler here is ours.
    yield from running_cluster(tmp_path_factory.mktemp(f"install-cluster-{installer}"), scheduler_config=None)


@pytest.fixture(scope="module")
def installed(cluster: LocalCluster, installer: str, self_signed: SelfSigned,
              tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    """The objects installed: the self-signed overlay as `kubectl apply -k` applies it (rendered by the same
    kustomize), or the chart as `helm install` installs it, with the Secret made as docs/install.md says."""
    if installer == "helm":
        return helm_install(cluster, self_signed)
    manifest = tmp_path_factory.mktemp("install") / "infergate.yaml"
    manifest.write_text(yaml.safe_dump_all(self_signed.docs, sort_keys=False))
    result = cluster.kubectl("apply", "--validate=strict", "-f", str(manifest), timeout=120)
    assert result.returncode == 0, f"kubectl apply failed:\n{result.stderr}"
    return self_signed.docs



def _namespace(cluster: LocalCluster, name: str, labels: dict[str, str] | None = None) -> str:
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels or {}}})
    cluster.wait_for(f"the default ServiceAccount in {name}",
                     lambda: cluster.kubectl("-n", name, "get", "serviceaccount", "default").returncode == 0)
    return name


def _pod(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    # Fit for the restricted Pod Security Standard that infergate-system enforces.
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "main",
                "image": "registry.invalid/never-pulled:1",
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                **spec.pop("container", {}),
            }],
            **spec,
        },
    }


def _create(cluster: LocalCluster, obj: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl("create", "-f", "-", input=json.dumps(obj))


# --- the manifests, applied ------------------------------------------------------------------------------


def test_the_install_applies_strictly(cluster: LocalCluster, installed: Manifest, self_signed: SelfSigned) -> None:
    for doc in installed:
        kind, name = doc["kind"], doc["metadata"]["name"]
        args = ["get", kind, name] + (["-n", doc["metadata"]["namespace"]] if "namespace" in doc["metadata"] else [])
        assert cluster.kubectl(*args).returncode == 0, f"{kind} {name} was not created"
    # The ReplicaSets could create every pod: the templates pass API validation and the restricted Pod
    # Security Standard that infergate-system enforces (pods stay Pending: nothing schedules them here).
    def pods_created() -> bool:
        pods = cluster.get_json("pods", "-n", NAMESPACE, "-l", "app.kubernetes.io/part-of=infergate")["items"]
        return len(pods) == 4

    try:
        cluster.wait_for("the Deployments' pods", pods_created, timeout=60)
    except ClusterError:
        events = cluster.kubectl("-n", NAMESPACE, "get", "events").stdout
        raise AssertionError(f"the Deployments did not create their pods; events:\n{events}") from None
    # The API server decoded the caBundle the overlay wrote to the CA that setup.sh made.
    mutating = cluster.get_json("mutatingwebhookconfiguration", "infergate")
    for hook in mutating["webhooks"]:
        assert base64.b64decode(hook["clientConfig"]["caBundle"]) == (self_signed.tls / "ca.crt").read_bytes()


def test_failure_policy_and_namespace_scope(cluster: LocalCluster, installed: Manifest) -> None:
    opted_in = {"infergate.io/injection": "enabled"}
    # No webhook pod runs here (no scheduler for them, no kubelet), so every call to the webhook fails.
    refused = _create(cluster, _pod("refused", _namespace(cluster, "opted-in", opted_in)))
    assert refused.returncode != 0
    assert 'failed calling webhook "pods.infergate.io"' in refused.stderr

    assert _create(cluster, _pod("plain", _namespace(cluster, "not-opted-in"))).returncode == 0

    # A pod created before its namespace opted in: updates that leave its containers alone (the extender's
    # gpu-index annotation, labels, finalizers) are not sent; one that changes a container is.
    namespace = _namespace(cluster, "opted-in-later")
    assert _create(cluster, _pod("existing", namespace)).returncode == 0
    cluster.kubectl("label", "namespace", namespace, "infergate.io/injection=enabled", check=True)
    annotated = cluster.kubectl("-n", namespace, "annotate", "pod", "existing", "infergate.io/gpu-index=0")
    assert annotated.returncode == 0, annotated.stderr
    changed = cluster.kubectl("-n", namespace, "set", "image", "pod/existing", "main=registry.invalid/other:2")
    assert changed.returncode != 0 and "pods.infergate.io" in changed.stderr

    # Labelling infergate-system or kube-system does not send their pods to the webhook.
    for namespace in (NAMESPACE, "kube-system"):
        cluster.kubectl("label", "namespace", namespace, "infergate.io/injection=enabled", check=True)
        try:
            result = _create(cluster, _pod(f"excluded-{namespace}", namespace))
            assert result.returncode == 0, result.stderr
        finally:
            cluster.kubectl("label", "namespace", namespace, "infergate.io/injection-", check=True)
            cluster.kubectl("-n", namespace, "delete", "pod", f"excluded-{namespace}", "--wait=false")


def test_priority_classes_accept_what_the_webhook_injects(cluster: LocalCluster, installed: Manifest) -> None:
    namespace = _namespace(cluster, "priorities")
    accepted = _pod("inference", namespace, priorityClassName="infergate-inference", priority=1000000)
    assert _create(cluster, accepted).returncode == 0
    wrong = _pod("mismatch", namespace, priorityClassName="infergate-training", priority=1000000)
    result = _create(cluster, wrong)
    assert result.returncode != 0 and "priority" in result.stderr


# --- RBAC, asked of the API server ---------------------------------------------------------------------------


def _can(cluster: LocalCluster, account: str, *args: str) -> bool:
    result = cluster.kubectl("auth", "can-i", f"--as={account}", *args)
    assert result.stdout.strip() in ("yes", "no"), result.stderr
    return result.stdout.strip() == "yes"


def _token_kubeconfig(cluster: LocalCluster, account: str, path: Path) -> Path:
    """A kubeconfig holding a real token of the ServiceAccount (TokenRequest API), as its pods get one."""
    token = cluster.kubectl("create", "token", account, "-n", NAMESPACE, "--duration=10m", check=True).stdout.strip()
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    config["users"] = [{"name": account, "user": {"token": token}}]
    for context in config["contexts"]:
        context["context"]["user"] = account
    path.write_text(yaml.safe_dump(config))
    return path


def test_service_account_tokens_get_exactly_their_rights(
    cluster: LocalCluster, installed: Manifest, tmp_path: Path
) -> None:
    webhook = _token_kubeconfig(cluster, "infergate-webhook", tmp_path / "webhook.kubeconfig")
    denied = cluster.kubectl("get", "pods", "-A", kubeconfig=webhook)
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower(), denied.stderr
    scheduler = _token_kubeconfig(cluster, "infergate-scheduler", tmp_path / "scheduler.kubeconfig")
    assert cluster.kubectl("get", "nodes", kubeconfig=scheduler).returncode == 0
    assert cluster.kubectl("get", "pods", "-A", kubeconfig=scheduler).returncode == 0
    secrets = cluster.kubectl("get", "secrets", "-n", NAMESPACE, kubeconfig=scheduler)
    assert secrets.returncode != 0 and "forbidden" in secrets.stderr.lower()
    deleting = cluster.kubectl("delete", "node", "anything", kubeconfig=scheduler)
    assert deleting.returncode != 0 and "forbidden" in deleting.stderr.lower()


def test_the_webhook_account_can_do_nothing(cluster: LocalCluster, installed: Manifest) -> None:
    for args in (["get", "pods", "-A"], ["list", "nodes"], ["get", "secrets", "-n", NAMESPACE],
                 ["get", "configmaps", "-n", NAMESPACE], ["create", "events", "-n", NAMESPACE]):
        assert not _can(cluster, WEBHOOK_ACCOUNT, *args), args


def test_the_scheduler_account_can_do_what_both_containers_need(cluster: LocalCluster, installed: Manifest) -> None:
    needed = [
        ["list", "nodes"], ["watch", "nodes"], ["list", "pods", "-A"], ["watch", "pods", "-A"],
        ["patch", "pods", "-A"], ["update", "pods", "-A"],
        ["create", "pods", "--subresource=binding", "-A"], ["create", "pods", "--subresource=eviction", "-A"],
        ["get", "poddisruptionbudgets.policy", "-A"], ["list", "poddisruptionbudgets.policy", "-A"],
        ["create", "events", "-A"], ["create", "events.events.k8s.io", "-A"],
        ["create", "leases.coordination.k8s.io", "-n", NAMESPACE],
        ["get", "leases.coordination.k8s.io/infergate-scheduler", "-n", NAMESPACE],
        ["update", "leases.coordination.k8s.io/infergate-scheduler", "-n", NAMESPACE],
        ["get", "configmaps/extension-apiserver-authentication", "-n", "kube-system"],
        ["list", "persistentvolumeclaims", "-A"],
    ]
    for args in needed:
        assert _can(cluster, SCHEDULER_ACCOUNT, *args), args
    for args in (["get", "secrets", "-A"], ["update", "leases.coordination.k8s.io/someone-else", "-n", NAMESPACE],
                 ["create", "pods", "-A"], ["update", "nodes"], ["get", "configmaps", "-n", NAMESPACE]):
        assert not _can(cluster, SCHEDULER_ACCOUNT, *args), args


# --- kube-scheduler with our configuration and our RBAC -----------------------------------------------------


class StubExtender:
    """A scheduler extender over HTTPS that passes every node and binds through the API server."""

    def __init__(self, cluster: LocalCluster, cert: Path, key: Path):
        self.cluster = cluster
        self.calls: list[tuple[str, dict[str, Any]]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.calls.append((self.path, body))
                reply = stub.answer(self.path, body)
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, path: str, body: dict[str, Any]) -> Any:
        if path == "/filter":
            return {"NodeNames": body.get("NodeNames"), "FailedNodes": {}, "FailedAndUnresolvableNodes": {},
                    "Error": ""}
        if path in ("/prioritize", "/prioritize-without-gpus"):
            return [{"Host": name, "Score": 0} for name in body.get("NodeNames") or []]
        if path == "/bind":
            binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": body["PodName"]},
                       "target": {"apiVersion": "v1", "kind": "Node", "name": body["Node"]}}
            result = self.cluster.kubectl(
                "create", "--raw", f"/api/v1/namespaces/{body['PodNamespace']}/pods/{body['PodName']}/binding",
                "-f", "-", input=json.dumps(binding))
            return {"Error": "" if result.returncode == 0 else result.stderr.strip()}
        return {"Error": f"unexpected call {path}"}

    def pods_seen(self, verb: str) -> set[str]:
        # filter/prioritize/preempt carry the Pod; bind carries PodName.
        return {body["PodName"] if "PodName" in body else body["Pod"]["metadata"]["name"]
                for path, body in self.calls if path == f"/{verb}"}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Scheduler:
    """kube-scheduler run as our ServiceAccount with deploy/base/scheduler/kube-scheduler-config.yaml, only the
    extender's address, its CA and the kubeconfig changed."""

    def __init__(self, cluster: LocalCluster, tls: Path, work: Path):
        self.cluster, self.tls, self.work = cluster, tls, work
        # RBAC matches ServiceAccount subjects by user name, so a client certificate for that name has exactly
        # the permissions the install bound to the account, and nothing else.
        self.kubeconfig = cluster.write_kubeconfig(work / "scheduler.kubeconfig", SCHEDULER_ACCOUNT,
                                                   ["system:serviceaccounts", f"system:serviceaccounts:{NAMESPACE}"])
        self.component: Component | None = None
        self.runs = 0

    def start(self, extender_port: int) -> Component:
        self.runs += 1
        config = yaml.safe_load((DEPLOY / "base" / "scheduler" / "kube-scheduler-config.yaml").read_text())
        for ext in config["extenders"]:
            ext["urlPrefix"] = f"https://127.0.0.1:{extender_port}"
            ext["tlsConfig"]["caFile"] = str(self.tls / "ca.crt")
        config["clientConnection"] = {"kubeconfig": str(self.kubeconfig)}
        config_file = self.work / f"config-{self.runs}.yaml"
        config_file.write_text(yaml.safe_dump(config))
        port = free_port()
        self.component = Component("kube-scheduler", [
            str(default_bin_dir() / "kube-scheduler"),
            f"--config={config_file}",
            f"--authentication-kubeconfig={self.kubeconfig}",
            f"--authorization-kubeconfig={self.kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
            f"--tls-cert-file={self.cluster.pki / 'tls.crt'}",
            f"--tls-private-key-file={self.cluster.pki / 'tls.key'}",
            "--v=2",
        ], self.work / f"kube-scheduler-{self.runs}.log", port)
        self.component.start(tie_to_parent=True)
        component = self.component
        self.cluster.wait_for("kube-scheduler to become live",
                              lambda: component.check_running() or _get(self.cluster, port, "/livez") == 200,
                              timeout=60)
        return component

    def wait_for_lease(self) -> str:
        def holder() -> str:
            result = self.cluster.kubectl("-n", NAMESPACE, "get", "lease", "infergate-scheduler",
                                          "-o", "jsonpath={.spec.holderIdentity}")
            return result.stdout if result.returncode == 0 else ""

        # A new process waits for the previous holder's lease to expire (15 s) unless it was released.
        self.cluster.wait_for("the infergate-scheduler Lease to be held", lambda: bool(holder()), timeout=60)
        return holder()

    def stop(self) -> None:
        if self.component is not None:
            self.component.stop()
            self.component = None

    def forbidden(self) -> list[str]:
        lines: list[str] = []
        for log in sorted(self.work.glob("kube-scheduler-*.log")):
            lines += [line for line in log.read_text().splitlines() if "forbidden" in line.lower()]
        return lines


@pytest.fixture(scope="module")
def scheduler(cluster: LocalCluster, installed: Manifest, self_signed: SelfSigned,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scheduler]:
    runner = Scheduler(cluster, self_signed.tls, tmp_path_factory.mktemp("scheduler"))
    try:
        yield runner
    finally:
        runner.stop()


@pytest.fixture(scope="module")
def gpu_nodes(cluster: LocalCluster, installed: Manifest) -> list[str]:
    return cluster.add_gpu_nodes(2, gpus_per_node=8, name_prefix="install")


def _get(cluster: LocalCluster, port: int, path: str, client_cert: tuple[Path, Path] | None = None,
         cafile: Path | None = None) -> int:
    context = ssl.create_default_context(cafile=str(cafile or cluster.ca_file))
    if client_cert:
        context.load_cert_chain(*client_cert)
    try:
        with urllib.request.urlopen(f"https://127.0.0.1:{port}{path}", context=context, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return 0


def _admin_client_cert(cluster: LocalCluster, directory: Path) -> tuple[Path, Path]:
    user = yaml.safe_load(cluster.kubeconfig.read_text())["users"][0]["user"]
    cert, key = directory / "admin.crt", directory / "admin.key"
    cert.write_bytes(base64.b64decode(user["client-certificate-data"]))
    key.write_bytes(base64.b64decode(user["client-key-data"]))
    key.chmod(0o600)
    return cert, key


def _create_gpu_pods(cluster: LocalCluster, namespace: str) -> list[str]:
    pods = {
        "whole-gpu": {"nvidia.com/gpu": "1"},
        # No node advertises infergate.io/gpu-milli: kube-scheduler must leave it to the extender.
        "half-gpu": {"infergate.io/gpu-milli": "500"},
        "cpu-only": {"cpu": "100m"},
    }
    for name, limits in pods.items():
        pod = _pod(name, namespace, schedulerName="infergate-scheduler", container={"resources": {"limits": limits}})
        result = _create(cluster, pod)
        assert result.returncode == 0, result.stderr
    return list(pods)


def _wait_placed(cluster: LocalCluster, namespace: str, names: list[str], why: str) -> dict[str, dict[str, Any]]:
    def pods() -> dict[str, dict[str, Any]]:
        return {p["metadata"]["name"]: p for p in cluster.get_json("pods", "-n", namespace)["items"]}

    try:
        cluster.wait_for("every pod to be placed", lambda: all(pods().get(n, {}).get("spec", {}).get("nodeName")
                                                              for n in names), timeout=60)
    except ClusterError:
        events = cluster.kubectl("-n", namespace, "get", "events").stdout
        raise AssertionError(f"not placed; events:\n{events}\n{why}") from None
    return pods()


def test_kube_scheduler_leads_and_serves_the_probe_paths(
    cluster: LocalCluster, scheduler: Scheduler, tmp_path: Path
) -> None:
    component = scheduler.start(extender_port=free_port())  # no extender needed for this one
    try:
        scheduler.wait_for_lease()
        # The paths deploy/base/scheduler.yaml probes, without credentials as the kubelet sends them.
        for path in ("/livez", "/readyz", "/healthz"):
            assert _get(cluster, component.port, path) == 200, path
        # /metrics needs authentication (the client CA from extension-apiserver-authentication in kube-system)
        # and authorization (a SubjectAccessReview): both through the bindings the install made.
        assert _get(cluster, component.port, "/metrics") in (401, 403)
        assert _get(cluster, component.port, "/metrics", _admin_client_cert(cluster, tmp_path)) == 200
    finally:
        scheduler.stop()
    assert scheduler.forbidden() == [], "kube-scheduler lacks a permission"


def test_kube_scheduler_sends_gpu_pods_to_the_extender_and_every_pod_to_its_ranking(
    cluster: LocalCluster, scheduler: Scheduler, self_signed: SelfSigned, gpu_nodes: list[str]
) -> None:
    extender = StubExtender(cluster, self_signed.tls / "tls.crt", self_signed.tls / "tls.key")
    try:
        scheduler.start(extender.port)
        scheduler.wait_for_lease()
        namespace = _namespace(cluster, "placement-stub")
        names = _create_gpu_pods(cluster, namespace)
        _wait_placed(cluster, namespace, names, f"stub calls: {[c[0] for c in extender.calls]}")
    finally:
        scheduler.stop()
        extender.close()

    # pods with GPUs go through filter, prioritize and bind of the extender; every pod, the one without GPUs
    # too, is ranked by its score-only entry (where it lands decides whether a node's GPUs stay usable), and
    # kube-scheduler binds the pod without GPUs itself.
    for verb in ("filter", "prioritize", "bind"):
        assert extender.pods_seen(verb) == {"whole-gpu", "half-gpu"}, verb
    assert extender.pods_seen("prioritize-without-gpus") == {"whole-gpu", "half-gpu", "cpu-only"}
    # nodeCacheCapable: node names, not Node objects.
    filters = [body for path, body in extender.calls if path == "/filter"]
    assert all(body.get("NodeNames") and not body.get("Nodes") for body in filters)
    assert scheduler.forbidden() == [], "kube-scheduler lacks a permission"


def test_the_scheduler_pod_with_the_real_extender(
    cluster: LocalCluster, installed: Manifest, scheduler: Scheduler, self_signed: SelfSigned,
    gpu_nodes: list[str], tmp_path: Path,
) -> None:
    """Both containers of the scheduler pod, as the Deployment runs them, with the account's permissions only."""
    # The policy directory as the kubelet mounts the ConfigMap: its keys as files.
    policy = tmp_path / "policy"
    policy.mkdir()
    [config_map] = find(installed, "ConfigMap", "infergate-policy")
    for name, text in config_map["data"].items():
        (policy / name).write_text(text)
    port = free_port()
    log_path = tmp_path / "extender.log"
    extender = Component("extender", [
        str(infergate_path()), "extender", "--policy", str(policy), "--kubeconfig", str(scheduler.kubeconfig),
        "--host", "127.0.0.1", "--port", str(port),
        "--tls-cert", str(self_signed.tls / "tls.crt"), "--tls-key", str(self_signed.tls / "tls.key"),
    ], log_path, port)
    extender.start(tie_to_parent=True)
    try:
        # What the Deployment's startup probe checks: /readyz over TLS, verified with the CA, on 127.0.0.1.
        cluster.wait_for("the extender to be ready", lambda: extender.check_running() or _get(
            cluster, port, "/readyz", cafile=self_signed.tls / "ca.crt") == 200, timeout=60)
        assert _get(cluster, port, "/healthz", cafile=self_signed.tls / "ca.crt") == 200
        scheduler.start(port)
        scheduler.wait_for_lease()
        namespace = _namespace(cluster, "placement-real")
        names = _create_gpu_pods(cluster, namespace)
        pods = _wait_placed(cluster, namespace, names, f"extender log:\n{log_path.read_text()[-3000:]}")
    finally:
        scheduler.stop()
        extender.stop()
    # The fractional pod got its GPU recorded before binding: the extender's patch went through.
    annotations = pods["half-gpu"]["metadata"].get("annotations", {})
    assert "infergate.io/gpu-index" in annotations, annotations
    log = log_path.read_text()
    # An API refusal reads "(403)" and "Forbidden" in the extender's log (a bare " 403" also matched the
    # command line whenever the random port began with 403).
    assert "(403)" not in log and "forbidden" not in log.lower(), f"the extender lacks a permission:\n{log[-3000:]}"
    assert scheduler.forbidden() == [], "kube-scheduler lacks a permission"
