"""`make demo` / `make demo-down`: a local control plane with infergate wired in and every sample applied,
then a table of what the webhook injected into each pod and where the extender placed it.

    python -m devcluster.demo up [--dir .demo]
    python -m devcluster.demo down [--dir .demo]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

from devcluster.cluster import STATE_FILE, ClusterError, LocalCluster, missing_binaries
from devcluster.stack import InfergateStack

SERVERS_FILE = "infergate.json"
NAMESPACES = ("ml-serving", "ml-training")


def _volume_kinds(pod: dict[str, Any]) -> str:
    kinds = []
    for volume in pod["spec"].get("volumes", []):
        if volume["name"] in ("model-store", "dshm"):
            source = next(k for k in volume if k != "name")
            kinds.append(f"{volume['name']}:{source}")
    return ",".join(kinds) or "-"


def _gpus(pod: dict[str, Any]) -> str:
    whole = sum(int(c.get("resources", {}).get("limits", {}).get("nvidia.com/gpu", 0)) for c in pod["spec"]["containers"])
    share = sum(int(c.get("resources", {}).get("limits", {}).get("infergate.io/gpu-milli", 0)) for c in pod["spec"]["containers"])
    return f"{share / 1000:g}" if share else str(whole)


def table(cluster: LocalCluster) -> str:
    rows = [("POD", "MODEL", "RUNTIME", "CLASS", "GPUS", "VOLUMES", "NODE", "GPU-INDEX")]
    for namespace in NAMESPACES:
        for pod in cluster.get_json("pods", "-n", namespace)["items"]:
            labels = pod["metadata"].get("labels", {})
            annotations = pod["metadata"].get("annotations", {})
            rows.append((
                f"{namespace}/{pod['metadata']['name']}",
                labels.get("infergate.io/model", "-"),
                labels.get("infergate.io/runtime", "-"),
                labels.get("infergate.io/workload", "-"),
                _gpus(pod),
                _volume_kinds(pod),
                pod["spec"].get("nodeName") or "Pending",
                annotations.get("infergate.io/gpu-index", "-"),
            ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)


def up(work_dir: Path) -> int:
    if (work_dir / STATE_FILE).exists():
        print(f"a demo already runs in {work_dir}; `make demo-down` first", file=sys.stderr)
        return 1
    missing = missing_binaries()
    if missing:
        print(f"missing control-plane binaries ({', '.join(missing)}); run `make controlplane`", file=sys.stderr)
        return 1
    shutil.rmtree(work_dir, ignore_errors=True)  # every demo starts from an empty cluster
    started = time.monotonic()
    cluster = LocalCluster(work_dir=work_dir, tie_to_parent=False, keep_work_dir=True)
    cluster.start()
    try:
        stack = InfergateStack(cluster).start()
        (work_dir / SERVERS_FILE).write_text(json.dumps({n: s.pid for n, s in stack.servers.items()}))
        cluster.add_gpu_nodes(2, product="NVIDIA-H100-80GB-HBM3", labels={"infergate.io/rack": "rack-a"}, name_prefix="h100-a")
        cluster.add_gpu_nodes(2, product="NVIDIA-H100-80GB-HBM3", labels={"infergate.io/rack": "rack-b"}, name_prefix="h100-b")
        cluster.add_gpu_nodes(2, gpus_per_node=4, product="NVIDIA-A10", labels={"infergate.io/rack": "rack-c"}, name_prefix="a10")
        applied = stack.apply_samples()
        print(applied.stdout, end="")
        if applied.returncode != 0:
            print(applied.stderr, file=sys.stderr)
            return 1
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if all(p["spec"].get("nodeName") for ns in NAMESPACES for p in cluster.get_json("pods", "-n", ns)["items"]):
                break
            time.sleep(1)
    except (ClusterError, OSError) as exc:
        print(f"demo failed: {exc}; stopping", file=sys.stderr)
        down(work_dir)
        return 1
    print()
    print(table(cluster))
    print()
    print(f"up in {time.monotonic() - started:.0f}s. Try:")
    print(f"  kubectl --kubeconfig {cluster.kubeconfig} get pods -A -o wide")
    print(f"  kubectl --kubeconfig {cluster.kubeconfig} get inferenceservices.ome.io -n ml-serving -o yaml")
    print(f"  GPU map: https://127.0.0.1:{stack.servers['extender'].port}/ui (certificate from {stack.tls_dir / 'ca.crt'})")
    print("Stop it with: make demo-down")
    return 0


def down(work_dir: Path) -> int:
    servers = work_dir / SERVERS_FILE
    if servers.exists():
        for name, pid in json.loads(servers.read_text()).items():
            try:
                if "infergate" in Path(f"/proc/{pid}/cmdline").read_text():
                    os.killpg(pid, signal.SIGTERM)
            except (OSError, ValueError):
                pass
        servers.unlink()
    if (work_dir / STATE_FILE).exists():
        LocalCluster.attach(work_dir).stop()
        (work_dir / STATE_FILE).unlink(missing_ok=True)
        print(f"stopped the demo in {work_dir}")
    else:
        print(f"no demo runs in {work_dir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devcluster.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("up", "down"))
    parser.add_argument("--dir", type=Path, default=Path(".demo"))
    args = parser.parse_args(argv)
    work_dir = args.dir.resolve()
    return up(work_dir) if args.action == "up" else down(work_dir)


if __name__ == "__main__":
    sys.exit(main())
