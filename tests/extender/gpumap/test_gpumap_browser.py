"""The GPU map in a real headless Chromium, against a real `infergate extender --snapshot` over TLS.

The snapshot is a generated 5,000-node cluster (bench/extender_cluster.py) plus two empty nodes holding a gang's
reservation (recorded on its pending pods, as a running extender records it). The page must show the counts
the snapshot holds (worked out here from the raw objects, not from the map's own code), draw the GPUs of the
group it was linked to one by one, and stay far below one DOM element per GPU. A screenshot is kept in
$INFERGATE_ARTIFACTS (default .artifacts/ in the repository).

Chromium comes from `make setup` (devcluster/install-chromium.sh). Without it the test skips, except in CI or
with INFERGATE_E2E_REQUIRED set, where it fails.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from bench.extender_cluster import generate
from certs.issue import write_bundle
from devcluster.cluster import Component, free_port
from extender.gpumap.model import group_id
from tests.clusterkit import required
from tests.kube_objects import node, pod

REPO = Path(__file__).resolve().parents[3]
NODES = 5000
GANG_PRODUCT = "NVIDIA-H100-80GB-HBM3"


def chromium() -> str:
    for candidate in (os.environ.get("INFERGATE_CHROMIUM"), "chromium", "chromium-browser"):
        found = candidate and shutil.which(candidate)
        if found:
            return found
    message = "chromium is not installed; `make setup` installs it (devcluster/install-chromium.sh)"
    if required() or os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def artifacts() -> Path:
    directory = Path(os.environ.get("INFERGATE_ARTIFACTS") or REPO / ".artifacts")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@dataclass
class Served:
    url: str
    spki: str  # what Chromium is told to trust: this server's key, and nothing else
    expected: dict[str, Any]


def _gang(snapshot: list[dict[str, Any]]) -> None:
    """Two empty nodes in a rack of their own, reserved for a pending two-pod gang."""
    for i in range(2):
        snapshot.append(node(f"gang-node-{i}", product=GANG_PRODUCT, **{
            "topology.kubernetes.io/zone": "zone-gang", "infergate.io/rack": "rack-gang"}))
        member = pod(f"trainer-{i}", gpus=8, namespace="research", annotations={
            "infergate.io/group": "trainer", "infergate.io/group-size": "2",
            "infergate.io/reserved-node": f"gang-node-{i}"})
        member["spec"]["containers"][0]["env"] = [{"name": "WANDB_API_KEY", "value": "never-shown"}]
        snapshot.append(member)


def _expected(items: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures the page must show, from the raw objects."""
    nodes = [i for i in items if i["kind"] == "Node"]
    gpus = sum(int(n["status"]["allocatable"].get("nvidia.com/gpu", "0")) for n in nodes)

    def wants_gpu(p: dict[str, Any]) -> bool:
        limits = {k for c in p["spec"]["containers"] for k in (c.get("resources", {}).get("limits") or {})}
        return bool(limits & {"nvidia.com/gpu", "infergate.io/gpu-milli"})

    pending = [p for p in items if p["kind"] == "Pod" and not p["spec"].get("nodeName") and wants_gpu(p)
               and p.get("status", {}).get("phase") not in ("Succeeded", "Failed")]
    groups = {(" / ".join(v for v in (n["metadata"]["labels"].get("topology.kubernetes.io/zone"),
                                      n["metadata"]["labels"].get("infergate.io/rack")) if v),
               n["metadata"]["labels"]["nvidia.com/gpu.product"]) for n in nodes}
    return {"nodes": len(nodes), "gpus": gpus, "pending": len(pending), "groups": len(groups)}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    work = tmp_path_factory.mktemp("gpumap")
    cluster = generate(NODES, 2 * NODES, seed=11)
    items = [*cluster.nodes, *cluster.pods]
    _gang(items)
    snapshot = work / "snapshot.json"
    snapshot.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    tls = work / "tls"
    write_bundle(tls, dns=["localhost"], ips=["127.0.0.1"])
    port = free_port()
    extender = Component("extender", [
        str(Path(sys.executable).parent / "infergate"), "extender", "--snapshot", str(snapshot), "--host", "127.0.0.1",
        "--port", str(port), "--tls-cert", str(tls / "tls.crt"), "--tls-key", str(tls / "tls.key"),
    ], work / "extender.log", port)
    extender.start(tie_to_parent=True)
    context = ssl.create_default_context(cafile=str(tls / "ca.crt"))
    try:
        _wait_ready(f"https://127.0.0.1:{port}/readyz", context, extender, work / "extender.log")
        key = x509.load_pem_x509_certificate((tls / "tls.crt").read_bytes()).public_key()
        spki = base64.b64encode(hashlib.sha256(key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo))
                                .digest()).decode()
        yield Served(f"https://127.0.0.1:{port}", spki, _expected(items))
    finally:
        extender.stop()


def _wait_ready(url: str, context: ssl.SSLContext, extender: Component, log: Path) -> None:
    import time

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        extender.check_running()  # raises with the log's last lines when it exited
        try:
            with urllib.request.urlopen(url, context=context, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"the extender was not ready in time:\n{log.read_text()[-3000:]}")


def browse(served: Served, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    # --virtual-time-budget: run the page's scripts and fetches to completion before dumping or shooting.
    command = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               f"--ignore-certificate-errors-spki-list={served.spki}", "--virtual-time-budget=15000",
               "--window-size=1400,1800", *args, url]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


class Elements(HTMLParser):
    """Every element's tag and attributes, and the text inside each element that has an id."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[dict[str, str]] = []
        self.text: dict[str, str] = {}
        self._open: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        self.elements.append({"tag": tag, **attributes})
        if tag in self.VOID:
            return
        element_id = attributes.get("id")
        if element_id is not None:
            self.text.setdefault(element_id, "")
        self._open.append((tag, element_id))

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            if self._open.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        for _, element_id in self._open:
            if element_id is not None:
                self.text[element_id] += data

    def with_class(self, name: str) -> list[dict[str, str]]:
        return [e for e in self.elements if name in e.get("class", "").split()]


def test_the_map_shows_the_cluster(served: Served) -> None:
    gang_group = group_id("zone-gang / rack-gang", GANG_PRODUCT)
    result = browse(served, f"{served.url}/ui#group={gang_group}", "--dump-dom")
    page = Elements()
    page.feed(result.stdout)
    number = lambda element_id: int(re.sub(r"[^\d]", "", page.text[element_id]))  # noqa: E731 - "5,000" -> 5000

    expected = served.expected
    assert number("fig-nodes") == expected["nodes"] == NODES + 2
    assert number("fig-gpus") == expected["gpus"]
    assert page.text["pending-count"].startswith(f"({expected['pending']}")
    assert len(page.with_class("group")) == expected["groups"]
    # The linked group, drawn GPU by GPU: both nodes, 16 GPUs, all reserved for the gang.
    cells = page.with_class("gpu")
    assert len(cells) == 16
    assert {c["data-state"] for c in cells} == {"reserved"}
    assert "trainer" in page.text["gangs"] and "1/2" not in page.text["gangs"]
    assert "never-shown" not in result.stdout and "WANDB" not in result.stdout
    # Aggregated, then drilled into: nowhere near one element per GPU.
    assert len(page.elements) < expected["gpus"] / 3, len(page.elements)


def test_a_busy_group_and_a_screenshot(served: Served) -> None:
    # The first rack's H100s, with whole, fractional and free GPUs side by side.
    group = group_id("zone-a / rack-000", GANG_PRODUCT)
    page = Elements()
    page.feed(browse(served, f"{served.url}/ui#group={group}", "--dump-dom").stdout)
    states = {c["data-state"] for c in page.with_class("gpu")}
    assert {"whole", "fractional"} <= states, states
    shot = artifacts() / "gpu-map.png"
    shot.unlink(missing_ok=True)
    browse(served, f"{served.url}/ui#group={group}", f"--screenshot={shot}")
    assert shot.stat().st_size > 10_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
