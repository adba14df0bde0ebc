"""`make demo` / `make demo-down`: a local control plane with infergate wired in and every sample applied,
then a table of what the webhook injected into each pod and where the extender placed it.

KServe's and OME's real controllers run too (when devcluster/build.sh has built them): the KServe sample
InferenceService becomes KServe's Deployment, and an OME InferenceService as OME's samples write it (for OME's own
ClusterBaseModel and ClusterServingRuntime) becomes OME's; the table shows the pods those controllers made.

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

import yaml

from devcluster import controllers
from devcluster.cluster import STATE_FILE, ClusterError, LocalCluster, missing_binaries
from devcluster.stack import SAMPLES, InfergateStack

SERVERS_FILE = "infergate.json"
NAMESPACES = ("ml-serving", "ml-training")
DEMO_CONTROLLERS = ("kserve", "ome")
# OME's own objects for the OME InferenceService: its ClusterBaseModel (config/models; the ClusterServingRuntimes
# of config/runtimes are installed with the controller) and an InferenceService as OME's samples write it.
OME_BASE_MODEL = "meta/Llama-3.1-8B-Instruct.yaml"
OME_ISVC = {
    "apiVersion": "ome.io/v1beta1", "kind": "InferenceService",
    "metadata": {"name": "llama-3-1-8b-instruct", "namespace": "ml-serving"},
    "spec": {"model": {"name": "llama-3-1-8b-instruct"}, "runtime": {"name": "srt-llama-3-1-8b-instruct"},
             "engine": {"minReplicas": 1, "maxReplicas": 1}},
}
ISVC_GROUPS = {"kserve": "serving.kserve.io", "ome": "ome.io"}
# Who made a pod: the label each controller puts on the pods it creates.
OWNER_LABELS = (("ome.io/inferenceservice", "ome"), ("serving.kserve.io/inferenceservice", "kserve"),
                ("leaderworkerset.sigs.k8s.io/name", "lws"), ("jobset.sigs.k8s.io/jobset-name", "jobset"))


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


def _owner(pod: dict[str, Any]) -> str:
    """The controller that made the pod (by the label it sets), or kubectl for a pod nobody owns."""
    if not pod["metadata"].get("ownerReferences"):
        return "kubectl"
    labels = pod["metadata"].get("labels", {})
    owner = pod["metadata"]["ownerReferences"][0]
    return next((f"{who}/{labels[key]}" for key, who in OWNER_LABELS if key in labels),
                f"{owner['kind'].lower()}/{owner['name']}")


def table(cluster: LocalCluster) -> str:
    rows = [("POD", "MADE BY", "MODEL", "RUNTIME", "CLASS", "GPUS", "VOLUMES", "NODE", "GPU-INDEX")]
    for namespace in NAMESPACES:
        for pod in cluster.get_json("pods", "-n", namespace)["items"]:
            labels = pod["metadata"].get("labels", {})
            annotations = pod["metadata"].get("annotations", {})
            rows.append((
                f"{namespace}/{pod['metadata']['name']}",
                _owner(pod),
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
    unbuilt = controllers.missing(DEMO_CONTROLLERS)
    if unbuilt:
        print(f"not built, so not in the demo: {', '.join(unbuilt)} (bash devcluster/build.sh {' '.join(unbuilt)})",
              file=sys.stderr)
    running = tuple(c for c in DEMO_CONTROLLERS if c not in unbuilt)
    cluster = LocalCluster(work_dir=work_dir, tie_to_parent=False, keep_work_dir=True)
    cluster.start()
    try:
        for name in running:
            cluster.start_controller(name)
        stack = InfergateStack(cluster).start()
        (work_dir / SERVERS_FILE).write_text(json.dumps({n: s.pid for n, s in stack.servers.items()}))
        # OME's model agent labels the nodes that hold a model's weights, and OME's pods select them; it cannot run
        # here, so the H100 nodes carry the label it would set.
        ome_ready = controllers.ome_model_ready_label("llama-3-1-8b-instruct") if "ome" in running else {}
        cluster.add_gpu_nodes(2, product="NVIDIA-H100-80GB-HBM3", labels={"infergate.io/rack": "rack-a", **ome_ready}, name_prefix="h100-a")
        cluster.add_gpu_nodes(2, product="NVIDIA-H100-80GB-HBM3", labels={"infergate.io/rack": "rack-b", **ome_ready}, name_prefix="h100-b")
        cluster.add_gpu_nodes(2, gpus_per_node=4, product="NVIDIA-A10", labels={"infergate.io/rack": "rack-c"}, name_prefix="a10")
        applied = stack.apply_samples(*_samples(ome="ome" in running))
        print(applied.stdout, end="")
        if applied.returncode != 0:
            # What was refused, and by whom (with the real controllers, their own webhooks have a say too), is
            # part of what the demo shows; everything else was applied and is in the table.
            print(applied.stderr, file=sys.stderr)
        if "ome" in running:
            cluster.apply(controllers.ome_base_model(OME_BASE_MODEL))
            result = cluster.kubectl("apply", "-f", "-", input=json.dumps(OME_ISVC))
            print(result.stdout, end="")
            print(result.stderr, end="", file=sys.stderr)
        # The InferenceServices that were admitted: their controllers' pods are waited for.
        expected = {who for who in running
                    if cluster.get_json(f"inferenceservices.{ISVC_GROUPS[who]}", "-n", "ml-serving")["items"]}
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            pods = [p for ns in NAMESPACES for p in cluster.get_json("pods", "-n", ns)["items"]]
            made_by = {_owner(p).split("/")[0] for p in pods}
            if all(p["spec"].get("nodeName") for p in pods) and expected <= made_by:
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


def _samples(ome: bool) -> list[str]:
    """Every sample; with OME's real controller, not our OME InferenceService samples: they name infergate's
    models, and OME's own webhook requires a ClusterBaseModel of that name (OME_ISVC stands in for them)."""
    names = []
    for path in sorted(SAMPLES.glob("*.yaml")):
        kinds = {(d or {}).get("apiVersion", "").split("/")[0] + "/" + (d or {}).get("kind", "")
                 for d in yaml.safe_load_all(path.read_text())}
        if ome and kinds == {"ome.io/InferenceService"}:
            continue
        names.append(path.name)
    return names


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
