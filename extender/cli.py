"""`infergate extender`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from policies import SHIPPED_POLICY_DIR, PolicyError, load_policy


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "extender",
        help="serve the kube-scheduler extender",
        description="Serve /filter, /prioritize, /preempt, /bind, /healthz, /readyz and /metrics for kube-scheduler, "
                    "and the GPU map (/ui, /api/v1/cluster).",
    )
    parser.add_argument("--policy", default=str(SHIPPED_POLICY_DIR), metavar="DIR", help="policy directory (default: the shipped policies/)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--kubeconfig", metavar="FILE", help="watch the API server of this kubeconfig")
    source.add_argument("--in-cluster", action="store_true", help="watch the API server with the pod's service account")
    source.add_argument("--snapshot", metavar="FILE", help="Nodes and Pods from a YAML/JSON file (kind: List or multi-document)")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8888)
    parser.add_argument("--metrics-port", type=int, metavar="PORT",
                        help="also serve GET /metrics, and nothing else, on every address at PORT (for Prometheus, "
                             "when --host is loopback-only); same TLS")
    parser.add_argument("--tls-cert", metavar="FILE")
    parser.add_argument("--tls-key", metavar="FILE")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from extender.sources import SnapshotError
    from infergate.tls import ReloadingTLS

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if bool(args.tls_cert) != bool(args.tls_key):
        print("error: --tls-cert and --tls-key go together", file=sys.stderr)
        return 2
    try:
        policy = load_policy(args.policy)
    except PolicyError as exc:
        for problem in exc.problems:
            print(f"policy: {problem}", file=sys.stderr)
        return 2
    tls = ReloadingTLS(args.tls_cert, args.tls_key) if args.tls_cert else None
    try:
        asyncio.run(_serve(args, policy, tls))
    except SnapshotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


async def _serve(args: argparse.Namespace, policy, tls) -> None:
    from extender.binder import KubeBinder, SnapshotBinder
    from extender.server import ExtenderServer
    from extender.sources import KubeSource, load_snapshot
    from extender.view import ClusterView

    view = ClusterView(gpu_resource=policy.cluster.spec.defaults.gpu_resource)
    if args.snapshot:
        server = ExtenderServer(policy, view, SnapshotBinder(load_snapshot(view, args.snapshot)), policy_dir=args.policy, tls=tls)
    else:
        from kubernetes_asyncio import client, config

        if args.in_cluster:
            config.load_incluster_config()
        else:
            await config.load_kube_config(config_file=args.kubeconfig)
        api = client.ApiClient()
        server = ExtenderServer(policy, view, KubeBinder(api), policy_dir=args.policy, tls=tls)
        server.scaffold.companions["watch"] = KubeSource(api, view).run
    runner = await server.scaffold.start(args.host, args.port)
    logging.getLogger(__name__).info("extender serving on %s:%d", args.host, args.port)
    runners = [runner]
    if args.metrics_port:
        runners.append(await server.scaffold.start_metrics(args.metrics_port))
        logging.getLogger(__name__).info("metrics only on port %d", args.metrics_port)
    try:
        await asyncio.Event().wait()
    finally:
        for each in runners:
            await each.cleanup()
