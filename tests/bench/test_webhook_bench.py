"""Smoke tests of the webhook benchmarks (bench/webhook_*.py) and of the failure the rotation benchmark found.

No timing is asserted here: the benchmarks print their figures against a floor measured in the same run.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import ssl
import subprocess
import sys
from pathlib import Path

from certs.issue import cert_pem, issue_serving_cert, key_pem, load_ca, write_bundle
from infergate.tls import ReloadingTLS
from webhook.admission import decide
from webhook.review import parse_review

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench"


def _bench_module(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_sample_reviews_are_admitted(policy):
    reviews = _bench_module("webhook_reviews")
    bodies = reviews.review_bodies()
    labels = [label for label, _ in bodies]
    assert any(label.startswith("llama-8b-pod/") for label in labels)
    assert any(label.startswith("ome-llama-8b/") for label in labels)
    for label, body in bodies:
        review = parse_review(body)
        assert review.request.uid == reviews.UID_PLACEHOLDER
        assert review.request.object["metadata"]["managedFields"], label
        decision = decide(review.request, policy, mutate=True)
        assert decision.allowed, (label, decision.message)
        assert decision.patch, label


def _run(tmp_path: Path, *args: str) -> tuple[int, dict, str]:
    out = tmp_path / "result.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH / "webhook_load.py"), *args, "--json", str(out)],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    assert out.exists(), proc.stdout + proc.stderr
    return proc.returncode, json.loads(out.read_text()), proc.stdout


def test_load_benchmark_runs(tmp_path):
    _, result, stdout = _run(tmp_path, "--seconds", "1", "--rounds", "1", "--concurrency", "2")
    load = result["load"]
    for kind in ("noop", "webhook"):
        assert load["closed"][kind]["requests"] > 0 and load["closed"][kind]["failures"] == 0, stdout
        assert load["open"]["0.5"][kind]["failures"] == 0, stdout
    assert "webhook throughput" in stdout


def test_rotation_under_load_fails_no_request(tmp_path):
    code, result, stdout = _run(tmp_path, "--rotate-only", "--rotate", "2", "--seconds", "2", "--concurrency", "2")
    rotation = result["rotation"]
    assert rotation["failures"] == 0 and not rotation["rotation_problems"], stdout
    assert len(rotation["new_cert_seen_after_ms"]) == 2, stdout
    assert code == 0, stdout


async def _served_cert(context: ssl.SSLContext, ca: Path) -> bytes:
    """Handshake once with a server using `context`; the DER of the certificate it served."""
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    try:
        client = ssl.create_default_context(cafile=str(ca))
        _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client, server_hostname="127.0.0.1")
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        writer.close()
        return der
    finally:
        server.close()
        await server.wait_closed()


async def test_reload_never_breaks_the_live_context_on_a_half_swapped_pair(tmp_path):
    """tls.crt replaced before tls.key: a reload in between must keep serving the old pair. (It used to load the
    new certificate into the live context without its key, and every new handshake failed until the next
    reload.)"""
    paths = write_bundle(tmp_path, dns=["localhost"], ips=["127.0.0.1"])
    tls = ReloadingTLS(paths["tls.crt"], paths["tls.key"])
    old = ssl.PEM_cert_to_DER_cert(paths["tls.crt"].read_text())
    leaf = issue_serving_cert(load_ca(paths["ca.crt"], paths["ca.key"]), ["localhost"], ["127.0.0.1"])

    (tmp_path / "new.crt").write_bytes(cert_pem(leaf.cert))
    (tmp_path / "new.crt").replace(paths["tls.crt"])
    assert tls.reload_if_changed() is False
    assert await _served_cert(tls.context, paths["ca.crt"]) == old

    (tmp_path / "new.key").write_bytes(key_pem(leaf.key))
    (tmp_path / "new.key").replace(paths["tls.key"])
    assert tls.reload_if_changed() is True
    assert await _served_cert(tls.context, paths["ca.crt"]) == ssl.PEM_cert_to_DER_cert(paths["tls.crt"].read_text())
    assert tls.reloads == 1
