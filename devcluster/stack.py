"""infergate wired into a LocalCluster: the webhook and the extender as local processes over TLS, the shipped
webhook configurations and scheduler configuration pointed at them, the PriorityClasses and the test CRDs.

The manifests come from deploy/ itself; only what differs between a pod and a local process changes
(clientConfig.service becomes a URL, the extender's CA file becomes inline data), so the end-to-end tests
prove the configuration users install.
"""

from __future__ import annotations

import base64
import copy
import os
import signal
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
from devcluster.cluster import ClusterError, Component, LocalCluster, free_port
from devcluster.controllers import established

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
SCHEDULER_CONFIG = DEPLOY / "base" / "scheduler" / "kube-scheduler-config.yaml"
WEBHOOK_CONFIGURATIONS = DEPLOY / "base" / "webhook-configurations.yaml"
PRIORITY_CLASSES = DEPLOY / "base" / "priorityclasses.yaml"
CRDS = DEPLOY / "crds"
SAMPLES = DEPLOY / "samples"


def load_documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


# The API server calls mutating webhook configurations in the order of their names (and validating ones likewise):
# these names put infergate's before or after every other configuration, LeaderWorkerSet's, KServe's and OME's
# included ("lws-mutating-webhook-configuration", "inferenceservice.serving.kserve.io", ...).
WEBHOOKS_FIRST = "0-infergate"
WEBHOOKS_LAST = "zz-infergate"


@dataclass
class InfergateStack:
    """webhook_name: the name of infergate's webhook configurations (the shipped one, "infergate", unless a test
    orders them before or after another project's with WEBHOOKS_FIRST or WEBHOOKS_LAST)."""

    cluster: LocalCluster
    policy_dir: Path = REPO / "policies"
    webhook_name: str = "infergate"
    servers: dict[str, Component] = field(default_factory=dict)

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
        self.servers["webhook"] = Component(
            "infergate-webhook",
            self._infergate("webhook", "--policy", str(self.policy_dir), "--host", "127.0.0.1", "--port", str(webhook_port), *tls),
            self.cluster.logs / "infergate-webhook.log", webhook_port,
        )
        self.servers["extender"] = Component(
            "infergate-extender",
            self._infergate("extender", "--policy", str(self.policy_dir), "--kubeconfig", str(self.cluster.kubeconfig),
                            "--host", "127.0.0.1", "--port", str(extender_port), *tls),
            self.cluster.logs / "infergate-extender.log", extender_port,
        )
        for server in self.servers.values():
            server.start(self.cluster.tie_to_parent)
        self.wait_ready("webhook")
        self.wait_ready("extender")
        self._install_missing_crds(load_documents(CRDS / "ome.io_inferenceservices.yaml") + load_documents(CRDS / "serving.kserve.io_inferenceservices.yaml"))
        self.cluster.apply(load_documents(PRIORITY_CLASSES))
        self.cluster.apply(self.webhook_configurations())
        self.cluster.wait_for("the InferenceService CRDs", self._crds_established, timeout=60)
        self.cluster.restart_scheduler(self.scheduler_config())
        return self

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()

    # ------------------------------------------------------------------------------------------ wiring
    def _install_missing_crds(self, crds: list[dict[str, Any]]) -> None:
        """Our stand-in InferenceService CRDs, unless the real ones are there (KServe's or OME's controller
        installed them with devcluster.controllers), which they must not replace."""
        present = {c["metadata"]["name"] for c in self.cluster.get_json("crd")["items"]}
        missing = [c for c in crds if c["metadata"]["name"] not in present]
        if missing:
            self.cluster.apply(missing)

    def order_webhooks(self, name: str) -> None:
        """Rename infergate's webhook configurations (WEBHOOKS_FIRST, WEBHOOKS_LAST, "infergate"), which moves
        them in the order the API server calls webhooks in."""
        if name == self.webhook_name:
            return
        old = self.webhook_name
        self.webhook_name = name
        self.cluster.apply(self.webhook_configurations())
        for kind in ("mutatingwebhookconfiguration", "validatingwebhookconfiguration"):
            self.cluster.kubectl("delete", kind, old, "--ignore-not-found", check=True)

    def webhook_configurations(self) -> list[dict[str, Any]]:
        url = f"https://127.0.0.1:{self.servers['webhook'].port}"
        configurations = copy.deepcopy(load_documents(WEBHOOK_CONFIGURATIONS))
        for configuration in configurations:
            configuration["metadata"]["name"] = self.webhook_name
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
        return {"inferenceservices.ome.io", "inferenceservices.serving.kserve.io"} <= established(self.cluster)

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
            server.check_running()
            if self._ready(name):
                return
            time.sleep(0.2)
        raise ClusterError(f"infergate {name} not ready after {timeout:.0f}s; see {server.log_path}")

    def stop_server(self, name: str, *, crash: bool = False) -> None:
        server = self.servers[name]
        if crash and server.pid is not None:
            os.killpg(server.pid, signal.SIGKILL)  # no shutdown: the process simply vanishes
        server.stop()

    def start_server(self, name: str) -> None:
        self.servers[name].start(self.cluster.tie_to_parent)
        self.wait_ready(name)

    def restart_extender(self, *, kubeconfig: Path | None = None, crash: bool = True) -> None:
        """Restart the extender, optionally talking to the API server through another kubeconfig."""
        self.stop_server("extender", crash=crash)
        argv = self.servers["extender"].argv
        argv[argv.index("--kubeconfig") + 1] = str(kubeconfig or self.cluster.kubeconfig)
        self.start_server("extender")

    def kubeconfig_via(self, port: int) -> Path:
        """The admin kubeconfig, pointed at another port on 127.0.0.1 (a proxy in front of the API server)."""
        config = yaml.safe_load(self.cluster.kubeconfig.read_text())
        for cluster in config["clusters"]:
            cluster["cluster"]["server"] = f"https://127.0.0.1:{port}"
        path = self.cluster.dir / f"via-{port}.kubeconfig"
        path.write_text(yaml.safe_dump(config))
        return path

    def apply_samples(self, *names: str) -> subprocess.CompletedProcess[str]:
        files = [str(SAMPLES / n) for n in names] if names else [str(p) for p in sorted(SAMPLES.glob("*.yaml"))]
        args: list[str] = ["apply"]
        for f in files:
            args += ["-f", f]
        return self.cluster.kubectl(*args)
