"""The webhook server over real TLS, verified with the CA from `infergate certs`, posting real AdmissionReviews."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import ssl
import uuid
from pathlib import Path

import aiohttp
import pytest
import yaml
from aiohttp import web

from certs.issue import write_bundle
from infergate.tls import ReloadingTLS
from tests.conftest import SAMPLES
from webhook.server import WebhookServer


def review(obj: dict, *, namespace: str = "ml-serving", kind: str = "Pod", group: str = "", operation: str = "CREATE") -> dict:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": {"group": group, "version": "v1", "kind": kind},
            "resource": {"group": group, "version": "v1", "resource": "pods"},
            "namespace": namespace,
            "operation": operation,
            "userInfo": {"username": "alice"},
            "object": obj,
            "dryRun": False,
        },
    }


@pytest.fixture
async def served(policy, tmp_path: Path):
    tls_dir = tmp_path / "tls"
    write_bundle(tls_dir, dns=["localhost"], ips=["127.0.0.1"])
    server = WebhookServer(policy, ReloadingTLS(tls_dir / "tls.crt", tls_dir / "tls.key"))
    runner = web.AppRunner(server.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server.tls.context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    client_ssl = ssl.create_default_context(cafile=str(tls_dir / "ca.crt"))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ssl)) as session:
        yield session, f"https://localhost:{port}", server, tls_dir
    await runner.cleanup()


async def test_mutate_sample_pod(served):
    session, url, _, _ = served
    pod = yaml.safe_load((SAMPLES / "llama-8b-pod.yaml").read_text())
    body = review(pod)
    async with session.post(f"{url}/mutate", json=body) as resp:
        assert resp.status == 200
        answer = await resp.json()
    response = answer["response"]
    assert answer["apiVersion"] == "admission.k8s.io/v1" and answer["kind"] == "AdmissionReview"
    assert response["uid"] == body["request"]["uid"] and response["allowed"] is True
    assert response["patchType"] == "JSONPatch"
    patch = json.loads(base64.b64decode(response["patch"]))
    assert {"op": "add", "path": "/spec/schedulerName", "value": "infergate-scheduler"} in patch


async def test_validate_does_not_patch(served):
    session, url, _, _ = served
    pod = yaml.safe_load((SAMPLES / "llama-8b-pod.yaml").read_text())
    async with session.post(f"{url}/validate", json=review(pod)) as resp:
        response = (await resp.json())["response"]
    assert response["allowed"] is True and "patch" not in response


async def test_denial_names_field(served):
    session, url, _, _ = served
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x", "annotations": {"infergate.io/model": "nope"}}, "spec": {"containers": []}}
    async with session.post(f"{url}/mutate", json=review(pod)) as resp:
        response = (await resp.json())["response"]
    assert response["allowed"] is False
    assert response["status"]["code"] == 404
    assert "pod ml-serving/x" in response["status"]["message"] and "infergate.io/model" in response["status"]["message"]


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"{}",
        b"[]",
        b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"kind": {}}}',
        b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "", "kind": {}, "operation": "CREATE"}}',
        b"\xff\xfe",
        b"",
    ],
)
async def test_malformed_bodies_get_400(served, body):
    session, url, _, _ = served
    for endpoint in ("mutate", "validate"):
        async with session.post(f"{url}/{endpoint}", data=body, headers={"Content-Type": "application/json"}) as resp:
            assert resp.status == 400
            assert "error" in await resp.json()
    async with session.get(f"{url}/healthz") as resp:
        assert resp.status == 200


async def test_malformed_pod_is_denied_with_field(served):
    session, url, _, _ = served
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x", "annotations": {"infergate.io/model": 5}}, "spec": {"containers": "no"}}
    async with session.post(f"{url}/mutate", json=review(pod)) as resp:
        assert resp.status == 200
        response = (await resp.json())["response"]
    assert response["allowed"] is False and response["status"]["code"] == 400
    assert "metadata.annotations" in response["status"]["message"] or "spec.containers" in response["status"]["message"]


@pytest.mark.parametrize(("operation", "kind", "group"), [("DELETE", "Pod", ""), ("UPDATE", "Pod", ""), ("CREATE", "ConfigMap", "")])
async def test_other_operations_and_kinds_pass_unchanged(served, operation, kind, group):
    session, url, _, _ = served
    body = review({"metadata": {"name": "x"}, "spec": {"containers": []}}, operation=operation, kind=kind, group=group)
    async with session.post(f"{url}/mutate", json=body) as resp:
        assert (await resp.json())["response"] == {"uid": body["request"]["uid"], "allowed": True}


async def test_metrics_and_health(served):
    session, url, _, _ = served
    pod = yaml.safe_load((SAMPLES / "llama-8b-pod.yaml").read_text())
    await (await session.post(f"{url}/mutate", json=review(pod))).read()
    async with session.get(f"{url}/metrics") as resp:
        text = await resp.text()
    assert 'infergate_webhook_requests_total{endpoint="mutate",kind="Pod",operation="CREATE",result="patched"} 1.0' in text
    assert "infergate_webhook_request_seconds_bucket" in text
    assert 'infergate_policy_loads_total{result="ok"} 1.0' in text
    for path in ("/healthz", "/readyz"):
        async with session.get(url + path) as resp:
            assert resp.status == 200


async def test_certificate_rotation_keeps_serving(served, tmp_path: Path):
    session, url, server, tls_dir = served
    before = server.tls.reloads
    # A new serving certificate from the same CA, swapped in the way a Secret volume update does.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    for name in ("ca.crt", "ca.key"):
        shutil.copy(tls_dir / name, fresh / name)
    write_bundle(fresh, dns=["localhost"], ips=["127.0.0.1"])
    for name in ("tls.crt", "tls.key"):
        (fresh / name).replace(tls_dir / name)
    assert server.tls.reload_if_changed()
    assert server.tls.reloads == before + 1
    # New connections handshake with the new certificate, verified by the same CA.
    client_ssl = ssl.create_default_context(cafile=str(tls_dir / "ca.crt"))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ssl)) as fresh_session:
        async with fresh_session.get(f"{url}/healthz") as resp:
            assert resp.status == 200
    port = int(url.rsplit(":", 1)[1])
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_ssl, server_hostname="localhost")
    served_der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    writer.close()
    assert served_der == ssl.PEM_cert_to_DER_cert((tls_dir / "tls.crt").read_text())
    async with session.get(f"{url}/healthz") as resp:
        assert resp.status == 200
