"""Soak: mixed load on both servers for a while; RSS growth, errors, and p99 drift minute by minute.

    .venv/bin/python bench/soak.py --seconds 600

Starts `infergate webhook` and `infergate extender --snapshot` (400 GPU nodes, 4,000 running pods, 20,000
pending ones) as real processes over TLS on 127.0.0.1, then keeps a closed loop of clients busy: AdmissionReviews
of every sample (Pods and InferenceServices), and filter, prioritize and bind cycles for pending pods. Every
minute it prints both servers' RSS and the p99 of /mutate and of filter+prioritize in that minute. The extender
releases bindings it never sees confirmed after its assume TTL, so the cluster does not simply fill up.
Success: no failed request, RSS growth under 20% after the first minute, last-minute p99 within 2x the first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from certs.issue import write_bundle  # noqa: E402
from devcluster.cluster import free_port  # noqa: E402


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def snapshot(path: Path, nodes: int, running: int, pending: int) -> list[dict]:
    rng = random.Random(1)
    items: list[dict] = []
    for i in range(nodes):
        product = "NVIDIA-H100-80GB-HBM3" if i % 4 else "NVIDIA-A10"
        items.append({"apiVersion": "v1", "kind": "Node", "metadata": {"name": f"n{i}", "labels": {
            "nvidia.com/gpu.product": product, "infergate.io/rack": f"r{i % 20}"}},
            "status": {"allocatable": {"cpu": "128", "memory": "1Ti", "nvidia.com/gpu": "8"}}})

    free = {f"n{i}": 8000 for i in range(nodes)}

    def pod(name: str, node: str | None) -> dict:
        if rng.random() < 0.4:
            limits = {"infergate.io/gpu-milli": str(rng.choice([250, 500, 750]))}
        else:
            limits = {"nvidia.com/gpu": str(rng.choice([1, 1, 2, 4]))}
        spec = {"containers": [{"name": "c", "resources": {"requests": {"cpu": "2", **limits}, "limits": limits}}]}
        if node:
            need = int(limits.get("nvidia.com/gpu", 0)) * 1000 + int(limits.get("infergate.io/gpu-milli", 0))
            node = next((n for n in (node, *free) if free[n] >= need + 1000), None)  # keep a GPU of slack: shares need one index
            if node is None:
                return None
            free[node] -= need
            spec["nodeName"] = node
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "soak", "uid": f"u-{name}"},
                "spec": spec, "status": {"phase": "Running" if node else "Pending"}}

    items += [p for p in (pod(f"run-{i}", f"n{i % nodes}") for i in range(running)) if p]
    waiting = [pod(f"wait-{i}", None) for i in range(pending)]
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items + waiting}))
    return waiting


def reviews() -> list[dict]:
    objects = [d for f in sorted((ROOT / "deploy" / "samples").glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]
    out = []
    for obj in objects:
        if obj["kind"] not in ("Pod", "InferenceService"):
            continue
        group = obj["apiVersion"].rpartition("/")[0]
        out.append({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
            "kind": {"group": group, "version": "v1beta1" if group else "v1", "kind": obj["kind"]},
            "operation": "CREATE", "namespace": obj["metadata"].get("namespace", "default"), "object": obj}})
    return out


async def main(seconds: float, report_every: float) -> int:
    work = Path(tempfile.mkdtemp(prefix="infergate-soak-"))
    write_bundle(work / "tls", dns=["localhost"], ips=["127.0.0.1"])
    tls = ["--tls-cert", str(work / "tls" / "tls.crt"), "--tls-key", str(work / "tls" / "tls.key")]
    pending = snapshot(work / "cluster.json", 400, 4000, 20000)
    webhook_port, extender_port = free_port(), free_port()
    cli = [sys.executable, "-m", "infergate.cli"]
    logs = open(work / "servers.log", "wb")
    procs = {
        "webhook": subprocess.Popen([*cli, "webhook", "--host", "127.0.0.1", "--port", str(webhook_port), *tls], stdout=logs, stderr=logs),
        "extender": subprocess.Popen([*cli, "extender", "--snapshot", str(work / "cluster.json"), "--host", "127.0.0.1", "--port", str(extender_port), *tls], stdout=logs, stderr=logs),
    }
    context = ssl.create_default_context(cafile=str(work / "tls" / "ca.crt"))
    samples = reviews()
    names = [f"n{i}" for i in range(400)]
    latencies: dict[str, list[float]] = {"mutate": [], "filter+prioritize": []}
    errors: dict[str, int] = {"mutate": 0, "extender": 0}
    counts = {"mutate": 0, "cycles": 0, "binds": 0}
    bound_names: set[str] = set()
    rows = []
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context, limit=16)) as session:
            for port in (webhook_port, extender_port):
                for _ in range(200):
                    try:
                        async with session.get(f"https://127.0.0.1:{port}/readyz") as r:
                            if r.status == 200:
                                break
                    except aiohttp.ClientError:
                        pass
                    await asyncio.sleep(0.1)
            deadline = time.monotonic() + seconds

            async def webhook_client() -> None:
                while time.monotonic() < deadline:
                    body = random.choice(samples)
                    uid = body["request"]["uid"] = str(uuid.uuid4())
                    started = time.perf_counter()
                    async with session.post(f"https://127.0.0.1:{webhook_port}/mutate", json=body) as r:
                        answer = await r.json()
                    latencies["mutate"].append(time.perf_counter() - started)
                    counts["mutate"] += 1
                    if r.status != 200 or answer["response"]["uid"] != uid or not answer["response"]["allowed"]:
                        errors["mutate"] += 1
                        if errors["mutate"] == 1:
                            print("first failed answer:", json.dumps(answer)[:500], flush=True)

            async def extender_client() -> None:
                base = f"https://127.0.0.1:{extender_port}"
                while time.monotonic() < deadline:
                    # Filter and prioritize go on for the whole run; each pod is bound at most once.
                    pod = random.choice(pending)
                    bindable = pod["metadata"]["name"] not in bound_names
                    started = time.perf_counter()
                    async with session.post(f"{base}/filter", json={"Pod": pod, "NodeNames": names}) as r:
                        result = await r.json()
                    fits = result.get("NodeNames") or []
                    if r.status != 200 or result.get("Error"):
                        errors["extender"] += 1
                        continue
                    if fits:
                        async with session.post(f"{base}/prioritize", json={"Pod": pod, "NodeNames": fits}) as r:
                            scores = await r.json()
                        if r.status != 200:
                            errors["extender"] += 1
                            continue
                    latencies["filter+prioritize"].append(time.perf_counter() - started)
                    counts["cycles"] += 1
                    if fits and bindable:
                        bound_names.add(pod["metadata"]["name"])
                        best = max(scores, key=lambda s: s["Score"])["Host"]
                        bind = {"PodName": pod["metadata"]["name"], "PodNamespace": "soak", "PodUID": pod["metadata"]["uid"], "Node": best}
                        async with session.post(f"{base}/bind", json=bind) as r:
                            bound = await r.json()
                        if r.status != 200:
                            errors["extender"] += 1
                        elif not bound["Error"]:
                            counts["binds"] += 1

            async def reporter() -> None:
                start = time.monotonic()
                while time.monotonic() < deadline:
                    await asyncio.sleep(report_every)
                    row = {"t_s": round(time.monotonic() - start)}
                    for name, values in latencies.items():
                        row[f"{name}_p99_ms"] = round(float(np.percentile(values, 99)) * 1000, 2) if values else None
                        values.clear()
                    row |= {f"{n}_rss_mib": round(rss_mib(p.pid), 1) for n, p in procs.items()}
                    row |= dict(counts) | {f"{k}_errors": v for k, v in errors.items()}
                    rows.append(row)
                    print(json.dumps(row), flush=True)

            await asyncio.gather(reporter(), *(webhook_client() for _ in range(2)), *(extender_client() for _ in range(2)))
    finally:
        for proc in procs.values():
            proc.terminate()
            proc.wait(10)
    first, last = rows[0], rows[-1]
    growth = {n: round(100 * (last[f"{n}_rss_mib"] / first[f"{n}_rss_mib"] - 1), 1) for n in procs}
    drift = {k: round(last[f"{k}_p99_ms"] / first[f"{k}_p99_ms"], 2) for k in latencies if first[f"{k}_p99_ms"] and last[f"{k}_p99_ms"]}
    summary = {"seconds": seconds, "rss_growth_pct_after_first_interval": growth, "p99_last_over_first": drift,
               "errors": errors, "counts": counts}
    print(json.dumps(summary, indent=2))
    ok = sum(errors.values()) == 0 and all(g < 20 for g in growth.values()) and all(d < 2 for d in drift.values())
    print("PASS" if ok else "MISS")
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--report-every", type=float, default=60)
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.seconds, args.report_every)))
