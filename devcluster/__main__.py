"""`python -m devcluster build|up|down|status`: run the local control plane from a shell.

`up` leaves the components running in the background (their pids, ports and logs are recorded in
DIR/cluster.json) and prints the kubeconfig to use; `down` stops them; `status` tells whether they run.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

from devcluster.cluster import HERE, STATE_FILE, ClusterError, LocalCluster, missing_binaries


def _build(_: argparse.Namespace) -> int:
    return subprocess.call(["bash", str(HERE / "build.sh")])


def _up(args: argparse.Namespace) -> int:
    work_dir: Path = args.dir.resolve()
    if (work_dir / STATE_FILE).exists():
        running = [n for n, up in LocalCluster.attach(work_dir).status().items() if up and n != "apiserver-ready"]
        if running:
            print(f"a cluster is already running in {work_dir} ({', '.join(running)}); "
                  f"run `python -m devcluster down --dir {args.dir}` first", file=sys.stderr)
            return 1
    if missing_binaries():
        print("control-plane binaries missing; building them (devcluster/build.sh)", file=sys.stderr)
        if _build(args) != 0:
            return 1
    if not args.keep_data:
        shutil.rmtree(work_dir / "etcd", ignore_errors=True)
    scheduler_config = args.scheduler_config.read_text() if args.scheduler_config else None
    started = time.monotonic()
    cluster = LocalCluster(
        work_dir=work_dir,
        controller_manager=not args.no_controller_manager,
        tie_to_parent=False,
        **({"scheduler_config": scheduler_config} if scheduler_config else {}),
    )
    try:
        cluster.start()
    except BaseException:
        (work_dir / STATE_FILE).unlink(missing_ok=True)
        raise
    try:
        nodes = cluster.add_gpu_nodes(args.nodes, gpus_per_node=args.gpus_per_node, product=args.product) \
            if args.nodes else []
    except BaseException:
        cluster.stop()
        (work_dir / STATE_FILE).unlink(missing_ok=True)
        raise
    print(f"control plane up in {time.monotonic() - started:.1f}s ({len(nodes)} fake GPU nodes)")
    print(f"  api server : {cluster.server}")
    print(f"  kubeconfig : {cluster.kubeconfig}")
    print(f"  logs       : {cluster.logs}/")
    print(f"use it with: export KUBECONFIG={cluster.kubeconfig}")
    return 0


def _down(args: argparse.Namespace) -> int:
    if not (args.dir / STATE_FILE).exists():
        print(f"no cluster in {args.dir}")
        return 0
    cluster = LocalCluster.attach(args.dir)
    cluster.stop()
    (args.dir / STATE_FILE).unlink(missing_ok=True)
    print(f"stopped the cluster in {args.dir}")
    return 0


def _status(args: argparse.Namespace) -> int:
    if not (args.dir / STATE_FILE).exists():
        print(f"no cluster in {args.dir}")
        return 3
    cluster = LocalCluster.attach(args.dir)
    status = cluster.status()
    for name, comp in cluster.components.items():
        state = "running" if status[name] else "stopped"
        print(f"{name:24} {state:8} pid={comp.pid or '-'} port={comp.port} log={comp.log_path}")
    print(f"{'api server':24} {'ready' if status['apiserver-ready'] else 'NOT ready'} {cluster.server}")
    print(f"kubeconfig: {cluster.kubeconfig}")
    return 0 if all(status.values()) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devcluster", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    build = sub.add_parser("build", help="build the control-plane binaries (devcluster/build.sh)")
    build.set_defaults(func=_build)

    for name, func, helptext in (
        ("up", _up, "start a control plane in the background"),
        ("down", _down, "stop the control plane started in DIR"),
        ("status", _status, "show whether the control plane in DIR runs (exit 0 if all of it does)"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--dir", type=Path, required=True, help="work directory (certs, kubeconfig, logs, data)")
        p.set_defaults(func=func)
        if name == "up":
            p.add_argument("--nodes", type=int, default=0, help="fake GPU nodes to add (default: 0)")
            p.add_argument("--gpus-per-node", type=int, default=8, help="GPUs per node (default: 8)")
            p.add_argument("--product", default="NVIDIA-H100-80GB-HBM3", help="GPU product label of the nodes")
            p.add_argument("--scheduler-config", type=Path, metavar="FILE",
                           help="KubeSchedulerConfiguration for kube-scheduler (default: default-scheduler only)")
            p.add_argument("--no-controller-manager", action="store_true", help="do not run kube-controller-manager")
            p.add_argument("--keep-data", action="store_true", help="keep the etcd data of a previous run in DIR")

    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ClusterError as exc:
        print(f"devcluster: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
