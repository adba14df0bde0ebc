"""Limits at the HTTP edge, and a policy reload seen by a running server."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import yaml
from aiohttp import web

from policies import SHIPPED_POLICY_DIR, load_policy
from tests.conftest import SAMPLES
from webhook.admission import decide
from webhook.review import parse_review
from webhook.server import WebhookServer


async def serve(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]


async def raw_exchange(port: int, head: bytes, body_parts: list[bytes], pause: float) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head)
    for part in body_parts:
        writer.write(part)
        await writer.drain()
        await asyncio.sleep(pause)
    answer = await asyncio.wait_for(reader.read(4096), 10)
    writer.close()
    return answer


def webhook(policy_dir: Path | None = None) -> WebhookServer:
    policy = load_policy(policy_dir or SHIPPED_POLICY_DIR)
    return WebhookServer(policy, policy_dir=policy_dir)


async def test_slow_body_is_cut_off_with_408():
    server = webhook()
    server.body_timeout = 0.5
    runner, port = await serve(server.app())
    try:
        head = b"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        answer = await raw_exchange(port, head, [b"{" * 10] * 5, pause=0.3)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:80]
    finally:
        await runner.cleanup()


async def test_oversized_body_gets_413():
    runner, port = await serve(webhook().app())
    try:
        size = 9 * 1024 * 1024
        head = f"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {size}\r\n\r\n".encode()
        answer = await raw_exchange(port, head, [b" " * (1024 * 1024)] * 9, pause=0)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:80]
    finally:
        await runner.cleanup()


async def test_running_webhook_follows_its_policy_directory(tmp_path):
    policy_dir = tmp_path / "policy"
    shutil.copytree(SHIPPED_POLICY_DIR, policy_dir, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    server = webhook(policy_dir)
    pod = yaml.safe_load((SAMPLES / "llama-70b-pod.yaml").read_text())
    review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "operation": "CREATE", "namespace": "ml", "object": pod}}

    def decision():
        return decide(parse_review(json.dumps(review).encode()).request, server.policy, mutate=True)

    assert decision().allowed
    cluster = policy_dir / "clusterpolicy.yaml"
    cluster.write_text(cluster.read_text().replace("maxGpusPerPod: 8", "maxGpusPerPod: 2"))
    assert server.policies.check()
    assert not decision().allowed and "more than the 2" in decision().message
    (policy_dir / "models.yaml").write_text("kind: [broken")
    assert not server.policies.check()
    assert not decision().allowed, "the last good policy (max 2 GPUs) keeps serving"
    runner, port = await serve(server.app())
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        metrics = (await reader.read()).decode()
        writer.close()
    finally:
        await runner.cleanup()
    assert 'infergate_policy_loads_total{result="ok"} 2.0' in metrics
    assert 'infergate_policy_loads_total{result="error"} 1.0' in metrics


async def test_extender_follows_its_policy_directory_and_cuts_slow_bodies(tmp_path):
    from extender.binder import SnapshotBinder
    from extender.server import ExtenderServer
    from extender.view import ClusterView

    policy_dir = tmp_path / "policy"
    shutil.copytree(SHIPPED_POLICY_DIR, policy_dir, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    view = ClusterView()
    view.replace_all([], [])
    server = ExtenderServer(load_policy(policy_dir), view, SnapshotBinder({}), policy_dir=policy_dir)
    cluster = policy_dir / "clusterpolicy.yaml"
    cluster.write_text(cluster.read_text().replace("topologyMode: preferred", "topologyMode: required").replace("scorer: infergate", "scorer: bestfit"))
    assert server.scaffold.check_policy()
    assert server.scheduler.gangs.mode == "required" and server.scheduler.scorer.name == "bestfit"
    server.scaffold.companions.clear()
    server.scaffold.body_timeout = 0.5
    runner, port = await serve(server.app())
    try:
        head = b"POST /filter HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        answer = await raw_exchange(port, head, [b"{" * 10] * 5, pause=0.3)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:80]
    finally:
        await runner.cleanup()
