"""infergate wired into a LocalCluster: the webhook and the extender as local processes over TLS, the shipped
webhook configurations and scheduler configuration pointed at them, the PriorityClasses and the test CRDs.

The manifests come from deploy/ itself; only what differs between a pod and a local process changes
(clientConfig.service becomes a URL, the extender's CA file becomes inline data), so the end-to-end tests
prove the configuration users install.
"""

from __future__ import annotations

import base64
import copy
import subprocess
import sys
import ssl
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from certs.issue import write_bundle
from devcluster.cluster import ClusterError, LocalCluster, free_port

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
SCHEDULER_CONFIG = DEPLOY / "base" / "scheduler" / "kube-scheduler-config.yaml"
WEBHOOK_CONFIGURATIONS = DEPLOY / "base" / "webhook-configurations.yaml"
PRIORITY_CLASSES = DEPLOY / "base" / "priorityclasses.yaml"
CRDS = DEPLOY / "crds"
SAMPLES = DEPLOY / "samples"


def load_documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


@dataclass
class Server:
    """One of our servers as a local process."""

    name: str
    argv: list[str]
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """SIGKILL: a crash, not a shutdown."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
        self.process = None


@dataclass
class InfergateStack:
    cluster: LocalCluster
    policy_dir: Path = REPO / "policies"
    servers: dict[str, Server] = field(default_factory=dict)

    @property
    def tls_dir(self) -> Path:
        return self.cluster.dir / "infergate-tls"

    @property
    def ca_bundle(self) -> str:
        return base64.b64encode((self.tls_dir / "ca.crt").read_bytes()).decode()

    def _infergate(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "infergate.cli", *args]

    def start(self) -> InfergateStack:
        write_bundle(self.tls_dir, dns=["localhost"], ips=["127.0.0.1"])
        tls = ["--tls-cert", str(self.tls_dir / "tls.crt"), "--tls-key", str(self.tls_dir / "tls.key")]
        webhook_port, extender_port = free_port(), free_port()
        self.servers["webhook"] = Server(
            "webhook",
            self._infergate("webhook", "--policy", str(self.policy_dir), "--host", "127.0.0.1", "--port", str(webhook_port), *tls),
            webhook_port, self.cluster.logs / "infergate-webhook.log",
        )
        self.servers["extender"] = Server(
            "extender",
            self._infergate("extender", "--policy", str(self.policy_dir), "--kubeconfig", str(self.cluster.kubeconfig),
                            "--host", "127.0.0.1", "--port", str(extender_port), *tls),
            extender_port, self.cluster.logs / "infergate-extender.log",
        )
        for server in self.servers.values():
            server.start()
        self.wait_ready("webhook")
        self.wait_ready("extender")
        self.cluster.apply(load_documents(CRDS / "ome.io_inferenceservices.yaml") + load_documents(CRDS / "serving.kserve.io_inferenceservices.yaml"))
        self.cluster.apply(load_documents(PRIORITY_CLASSES))
        self.cluster.apply(self.webhook_configurations())
        self.cluster.wait_for("the InferenceService CRDs", self._crds_established, timeout=60)
        self.cluster.restart_scheduler(self.scheduler_config())
        return self

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()

    # ------------------------------------------------------------------------------------------ wiring
    def webhook_configurations(self) -> list[dict[str, Any]]:
        url = f"https://127.0.0.1:{self.servers['webhook'].port}"
        configurations = copy.deepcopy(load_documents(WEBHOOK_CONFIGURATIONS))
        for configuration in configurations:
            for webhook in configuration["webhooks"]:
                path = webhook["clientConfig"]["service"]["path"]
                webhook["clientConfig"] = {"url": url + path, "caBundle": self.ca_bundle}
        return configurations

    def scheduler_config(self) -> str:
        config = yaml.safe_load(SCHEDULER_CONFIG.read_text())
        config.pop("leaderElection", None)
        # The local cluster runs one kube-scheduler for everything: keep the default profile beside ours.
        config["profiles"] = [{"schedulerName": "default-scheduler"}, *config["profiles"]]
        for extender in config["extenders"]:
            extender["urlPrefix"] = f"https://127.0.0.1:{self.servers['extender'].port}"
            extender["tlsConfig"] = {"caData": self.ca_bundle}
        return yaml.safe_dump(config, sort_keys=False)

    def _crds_established(self) -> bool:
        crds = self.cluster.get_json("crd", "inferenceservices.ome.io", "inferenceservices.serving.kserve.io")["items"]
        return len(crds) == 2 and all(
            any(c["type"] == "Established" and c["status"] == "True" for c in crd.get("status", {}).get("conditions", []))
            for crd in crds
        )

    # ------------------------------------------------------------------------------------ server control
    def _ready(self, name: str) -> bool:
        server = self.servers[name]
        context = ssl.create_default_context(cafile=str(self.tls_dir / "ca.crt"))
        try:
            with urllib.request.urlopen(f"https://127.0.0.1:{server.port}/readyz", timeout=2, context=context) as response:
                return response.status == 200
        except OSError:
            return False

    def wait_ready(self, name: str, timeout: float = 60) -> None:
        server = self.servers[name]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if server.process is not None and server.process.poll() is not None:
                raise ClusterError(f"infergate {name} exited ({server.process.returncode}); see {server.log}")
            if self._ready(name):
                return
            time.sleep(0.2)
        raise ClusterError(f"infergate {name} not ready after {timeout:.0f}s; see {server.log}")

    def stop_server(self, name: str, *, crash: bool = False) -> None:
        server = self.servers[name]
        server.kill() if crash else server.stop()

    def start_server(self, name: str) -> None:
        self.servers[name].start()
        self.wait_ready(name)

    def apply_samples(self, *names: str) -> subprocess.CompletedProcess[str]:
        files = [str(SAMPLES / n) for n in names] if names else [str(p) for p in sorted(SAMPLES.glob("*.yaml"))]
        args: list[str] = ["apply"]
        for f in files:
            args += ["-f", f]
        return self.cluster.kubectl(*args)
