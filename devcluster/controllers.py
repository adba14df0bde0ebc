"""The ecosystem's own controllers in a LocalCluster: LeaderWorkerSet, JobSet, KServe and OME, each the real
controller manager built by devcluster/build.sh from its pinned Go module, with the CRDs, RBAC, ConfigMaps and
admission webhook configurations its release manifests ship (`config/default`, rendered with kustomize from the
module's own source).

Only what differs between a pod in a cluster and a process on 127.0.0.1 is changed: a webhook's
clientConfig.service becomes a URL on 127.0.0.1 with the CA of the serving certificate we issue, the manager runs
as its ServiceAccount's user (a client certificate, so its shipped RBAC applies), and its flags or config file
name local ports. Deployments, Services, cert-manager objects and the internal-cert Secrets are not applied.

    with LocalCluster(controllers=("lws", "jobset")) as cluster: ...
    cluster.start_controller("kserve")
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from certs.issue import write_bundle

if TYPE_CHECKING:
    from devcluster.cluster import LocalCluster

HERE = Path(__file__).resolve().parent
MODULES = HERE / "go"

# The kinds of a release manifest that make sense for a controller running as a local process.
APPLIED_KINDS = ("Namespace", "CustomResourceDefinition", "ServiceAccount", "ClusterRole", "ClusterRoleBinding",
                 "Role", "RoleBinding", "ConfigMap")
WEBHOOK_KINDS = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")


@dataclass(frozen=True)
class Ports:
    webhook: int
    probe: int


@dataclass(frozen=True)
class Controller:
    """How to run one ecosystem controller manager locally.

    module: the Go module pinned in devcluster/go/<name>/go.mod whose config/ folders hold the manifests.
    manifests: kustomize directories of that module applied before the manager starts (CRDs, RBAC, config,
    webhook configurations - the latter registered only once the manager serves them).
    objects: kustomize directories applied once its webhooks are registered (objects its webhooks validate).
    argv: the command line, given the binary, the ports, the certificate dir and a private work dir.
    configure: a change to the shipped objects that the local setup needs (a documented setting, never code).
    unserved: webhook paths its manifests register but no manager of that release serves (not waited for).
    """

    name: str
    module: str
    manifests: tuple[str, ...]
    argv: Callable[[Path, Ports, Path, Path], list[str]]
    env: Callable[[Ports, Path, Path], dict[str, str]] = lambda ports, certs, work: {}
    objects: tuple[str, ...] = ()
    configure: Callable[[dict[str, Any]], None] = lambda obj: None
    unserved: tuple[str, ...] = ()

    @property
    def binary(self) -> str:
        return f"{self.name}-controller-manager"

    @property
    def version(self) -> str:
        return pinned_version(self.name, self.module)


def _component_config(api_version: str) -> Callable[[Path, Ports, Path, Path], list[str]]:
    """LWS and JobSet take a kubebuilder component config file; write one that serves locally."""

    def argv(binary: Path, ports: Ports, certs: Path, work: Path) -> list[str]:
        config = {
            "apiVersion": api_version,
            "kind": "Configuration",
            "leaderElection": {"leaderElect": False},
            # Serving certificates come from us (certs.issue), not from the manager's own rotator, which would
            # write them into a Secret and patch the webhook configurations for an in-cluster Service.
            "internalCertManagement": {"enable": False},
            "webhook": {"host": "127.0.0.1", "port": ports.webhook, "certDir": str(certs)},
            "metrics": {"bindAddress": "0"},
            "health": {"healthProbeBindAddress": f"127.0.0.1:{ports.probe}"},
        }
        path = work / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        return [str(binary), f"--config={path}", "--zap-log-level=2"]

    return argv


def _kserve_argv(binary: Path, ports: Ports, certs: Path, work: Path) -> list[str]:
    # KServe's manager has no certificate-dir or host flag: controller-runtime's default certificate dir is
    # $TMPDIR/k8s-webhook-server/serving-certs (see _kserve_env), and it binds the webhook port on every address.
    serving = work / "tmp" / "k8s-webhook-server" / "serving-certs"
    serving.mkdir(parents=True, exist_ok=True)
    for name in ("tls.crt", "tls.key"):
        shutil.copy(certs / name, serving / name)
    return [str(binary), "--metrics-addr=0", f"--webhook-port={ports.webhook}",
            f"--health-probe-addr=127.0.0.1:{ports.probe}"]


def _kserve_raw_deployment(obj: dict[str, Any]) -> None:
    """KServe's documented switch to RawDeployment mode (no Knative, no Istio): the `deploy` entry of its
    inferenceservice-config ConfigMap."""
    if obj["kind"] == "ConfigMap" and obj["metadata"]["name"] == "inferenceservice-config":
        deploy = json.loads(obj["data"]["deploy"])
        deploy["defaultDeploymentMode"] = "RawDeployment"
        obj["data"]["deploy"] = json.dumps(deploy, indent=2)


def _ome_argv(binary: Path, ports: Ports, certs: Path, work: Path) -> list[str]:
    return [str(binary), "--metrics-bind-address=0", f"--webhook-port={ports.webhook}", "--webhook-host=127.0.0.1",
            f"--cert-dir={certs}", f"--health-probe-addr=127.0.0.1:{ports.probe}"]


CONTROLLERS: dict[str, Controller] = {
    c.name: c
    for c in (
        Controller("lws", "sigs.k8s.io/lws", ("config/default",), _component_config("config.lws.x-k8s.io/v1alpha1")),
        Controller("jobset", "sigs.k8s.io/jobset", ("config/default",),
                   _component_config("config.jobset.x-k8s.io/v1alpha1")),
        Controller("kserve", "github.com/kserve/kserve", ("config/default",), _kserve_argv,
                   env=lambda ports, certs, work: {"POD_NAMESPACE": "kserve", "TMPDIR": str(work / "tmp")},
                   objects=("config/runtimes",), configure=_kserve_raw_deployment),
        Controller("ome", "github.com/sgl-project/ome", ("config/default",), _ome_argv,
                   env=lambda ports, certs, work: {"POD_NAMESPACE": "ome"}, objects=("config/runtimes",),
                   # OME v0.1.5 ships a validating webhook for ClusterCapacityReservations, but its cmd/manager
                   # registers no handler for it (the API server refuses such objects there too).
                   unserved=("/validate-ome-io-v1beta1-capacityreservation",)),
    )
}


def pinned_version(name: str, module: str) -> str:
    """The version of `module` that devcluster/go/<name>/go.mod requires."""
    go_mod = (MODULES / name / "go.mod").read_text()
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", go_mod, re.MULTILINE)
    if not match:
        raise RuntimeError(f"devcluster/go/{name}/go.mod does not pin {module}")
    return match.group(1)


def bin_dir(name: str) -> Path:
    """Where devcluster/build.sh puts a controller (the cache root's <name>-<version>/bin)."""
    from devcluster.cluster import cache_root

    controller = CONTROLLERS[name]
    return cache_root() / f"{name}-{controller.version}" / "bin"


def missing(names: Iterable[str]) -> list[str]:
    """The controllers among names whose binary is not built."""
    return [n for n in names if not os.access(bin_dir(n) / CONTROLLERS[n].binary, os.X_OK)]


def _go() -> str:
    for candidate in (os.environ.get("GO"), shutil.which("go"), "/usr/local/go/bin/go"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError("Go is not installed; it is needed to find the controllers' module sources")


@cache
def module_cache() -> Path:
    if os.environ.get("GOMODCACHE"):
        return Path(os.environ["GOMODCACHE"])
    out = subprocess.run([_go(), "env", "GOMODCACHE"], capture_output=True, text=True, check=True).stdout.strip()
    return Path(out)


def _escape(module_path: str) -> str:
    # The module cache's case encoding: an upper-case letter becomes "!" and its lower case.
    return re.sub(r"[A-Z]", lambda m: "!" + m.group(0).lower(), module_path)


def source_dir(name: str) -> Path:
    controller = CONTROLLERS[name]
    path = module_cache() / f"{_escape(controller.module)}@{controller.version}"
    if not path.is_dir():
        raise RuntimeError(f"the source of {controller.module} {controller.version} is not in {module_cache()}; "
                           f"run `bash devcluster/build.sh {name}`")
    return path


def render(cluster: LocalCluster, name: str, directory: str) -> list[dict[str, Any]]:
    """`kubectl kustomize` of one of the module's config folders, as its release build does."""
    result = cluster.kubectl("kustomize", str(source_dir(name) / directory), check=True, timeout=120)
    return [d for d in yaml.safe_load_all(result.stdout) if d]


@dataclass
class RunningController:
    controller: Controller
    ports: Ports
    webhooks: list[dict[str, Any]] = field(default_factory=list)


def _local_client_config(client_config: dict[str, Any], port: int, ca_bundle: str) -> dict[str, Any]:
    service = client_config.get("service") or {}
    return {"url": f"https://127.0.0.1:{port}{service.get('path', '/')}", "caBundle": ca_bundle}


def localize(obj: dict[str, Any], port: int, ca_bundle: str) -> dict[str, Any]:
    """Point a webhook configuration's or a CRD conversion webhook's service at the local process."""
    if obj["kind"] in WEBHOOK_KINDS:
        for webhook in obj.get("webhooks", []):
            webhook["clientConfig"] = _local_client_config(webhook["clientConfig"], port, ca_bundle)
    conversion = obj.get("spec", {}).get("conversion", {}) if obj["kind"] == "CustomResourceDefinition" else {}
    if conversion.get("strategy") == "Webhook":
        webhook = conversion.setdefault("webhook", {})
        webhook["clientConfig"] = _local_client_config(webhook.get("clientConfig", {}), port, ca_bundle)
    return obj


def _identity(objects: list[dict[str, Any]], name: str) -> tuple[str, str]:
    """The namespace and ServiceAccount the manager's Deployment runs as."""
    deployments = [o for o in objects if o["kind"] == "Deployment"]
    manager = next((d for d in deployments if d["metadata"]["name"].endswith("controller-manager")), None)
    if manager is None:
        raise RuntimeError(f"{name}: its manifests have no controller-manager Deployment")
    spec = manager["spec"]["template"]["spec"]
    return manager["metadata"]["namespace"], spec.get("serviceAccountName", "default")


def _answers(url: str, context: ssl.SSLContext) -> bool:
    """The webhook server is up and serves this path (an empty review gets an error response, not a 404)."""
    request = urllib.request.Request(url, data=b"", method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, context=context, timeout=2):
            return True
    except urllib.error.HTTPError as exc:
        return exc.code != 404
    except (urllib.error.URLError, OSError):
        return False


def start(cluster: LocalCluster, name: str) -> RunningController:
    """Install a controller's manifests, run its manager and register its webhooks once it serves them."""
    from devcluster.cluster import ClusterError, free_port

    if name not in CONTROLLERS:
        raise ClusterError(f"unknown controller {name!r}; known: {', '.join(CONTROLLERS)}")
    controller = CONTROLLERS[name]
    binary = bin_dir(name) / controller.binary
    if not os.access(binary, os.X_OK):
        raise ClusterError(f"{name} is not built ({binary} is missing); run `bash devcluster/build.sh {name}`")
    work = cluster.dir / "controllers" / name
    work.mkdir(parents=True, exist_ok=True)
    certs = cluster.dir / "controllers" / "tls"
    if not (certs / "tls.crt").exists():
        write_bundle(certs, dns=["localhost"], ips=["127.0.0.1"])
    ca_bundle = base64.b64encode((certs / "ca.crt").read_bytes()).decode()

    objects = [o for directory in controller.manifests for o in render(cluster, name, directory)]
    for obj in objects:
        controller.configure(obj)
    namespace, service_account = _identity(objects, name)
    ports = Ports(webhook=free_port(), probe=free_port())
    running = RunningController(controller, ports)
    installed = [localize(o, ports.webhook, ca_bundle) for o in objects if o["kind"] in APPLIED_KINDS]
    running.webhooks = [localize(o, ports.webhook, ca_bundle) for o in objects if o["kind"] in WEBHOOK_KINDS]
    apply_server_side(cluster, installed)
    crds = {o["metadata"]["name"] for o in installed if o["kind"] == "CustomResourceDefinition"}
    cluster.wait_for(f"the CRDs of {name} to be established", lambda: crds <= established(cluster), timeout=60)

    kubeconfig = cluster.write_kubeconfig(
        work / "kubeconfig", f"system:serviceaccount:{namespace}:{service_account}",
        ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"])
    env = {"KUBECONFIG": str(kubeconfig), **controller.env(ports, certs, work)}
    component = cluster.run_component(f"{name}-controller-manager",
                                      controller.argv(binary, ports, certs, work), ports.webhook, env=env)
    context = ssl.create_default_context(cafile=str(certs / "ca.crt"))
    paths = sorted({w["clientConfig"]["url"] for c in running.webhooks for w in c.get("webhooks", [])
                    if not w["clientConfig"]["url"].endswith(controller.unserved)})
    cluster.wait_component(f"{name}'s webhooks", lambda: all(_answers(p, context) for p in paths), component,
                           timeout=120)
    cluster.apply(running.webhooks)
    for directory in controller.objects:
        apply_server_side(cluster, render(cluster, name, directory))
    return running


def established(cluster: LocalCluster) -> set[str]:
    """The names of the CRDs the API server serves."""
    return {crd["metadata"]["name"] for crd in cluster.get_json("crd")["items"]
            if any(c["type"] == "Established" and c["status"] == "True"
                   for c in (crd.get("status") or {}).get("conditions") or [])}


def apply_server_side(cluster: LocalCluster, objects: list[dict[str, Any]]) -> None:
    """Server-side apply: KServe's and OME's CRDs are larger than the annotation client-side apply keeps."""
    if objects:
        cluster.kubectl("apply", "--server-side", "--force-conflicts", "--field-manager=devcluster", "-f", "-",
                        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}), check=True,
                        timeout=180)




# --- OME's model agent, stood in for -------------------------------------------------------------------------
# OME's model agent (a DaemonSet that downloads a model's weights; it links a Rust library and cannot run here)
# reads each ClusterBaseModel's config.json, writes what it found into the object's spec, and labels the nodes
# that hold the weights; OME's runtime selection needs the former and its pods select the latter. These are the
# values it would write (from each model's config.json) for the OME models the tests and the demo use.
OME_MODEL_AGENT: dict[str, dict[str, Any]] = {
    "meta/Llama-3.1-8B-Instruct.yaml": {
        "modelArchitecture": "LlamaForCausalLM", "modelParameterSize": "8.03B", "transformers": "4.42.3"},
    "meta/Llama-3.1-70B-Instruct.yaml": {
        "modelArchitecture": "LlamaForCausalLM", "modelParameterSize": "70.55B", "transformers": "4.43.0"},
    # DeepSeek-R1's config.json names transformers 4.46.3, which OME v0.1.5's srt-deepseek-rdma runtime
    # (transformers 4.33.1, operator GreaterThanOrEqual) refuses: its matcher compares the framework version
    # for equality. The version that runtime names stands in, so that OME's own sample can be served at all.
    "deepseek-ai/DeepSeek-R1.yaml": {
        "modelArchitecture": "DeepseekV3ForCausalLM", "modelParameterSize": "671B", "transformers": "4.33.1",
        "quantization": "fp8"},
}


def ome_base_model(path: str) -> dict[str, Any]:
    """OME's ClusterBaseModel config/models/<path> as OME ships it, with the spec its model agent would fill in."""
    model = yaml.safe_load((source_dir("ome") / "config" / "models" / path).read_text())
    found = dict(OME_MODEL_AGENT[path])
    spec = model["spec"]
    spec["modelFormat"] = {"name": "safetensors", "version": "1.0.0"}
    spec["modelFramework"] = {"name": "transformers", "version": found.pop("transformers")}
    spec.update(found)
    return model


def ome_model_ready_label(name: str) -> dict[str, str]:
    """The node label OME's model agent sets where a ClusterBaseModel's weights are (OME's pods select it)."""
    return {f"models.ome.io/clusterbasemodel.{name}": "Ready"}
