"""`infergate webhook` and `infergate render`."""

from __future__ import annotations

import argparse
import logging
import sys

from policies import SHIPPED_POLICY_DIR, PolicyError, load_policy
from policies.loader import Policy


def _policy_or_exit(directory: str) -> Policy | None:
    try:
        return load_policy(directory)
    except PolicyError as exc:
        for problem in exc.problems:
            print(f"policy: {problem}", file=sys.stderr)
        return None


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    webhook = subparsers.add_parser(
        "webhook", help="serve the admission webhook over HTTPS", description="Serve /mutate, /validate, /healthz, /readyz and /metrics over HTTPS."
    )
    webhook.add_argument("--policy", default=str(SHIPPED_POLICY_DIR), metavar="DIR", help="policy directory (default: the shipped policies/)")
    webhook.add_argument("--tls-cert", required=True, metavar="FILE")
    webhook.add_argument("--tls-key", required=True, metavar="FILE")
    webhook.add_argument("--host", default="0.0.0.0")
    webhook.add_argument("--port", type=int, default=8443)
    webhook.set_defaults(func=run_webhook)

    render = subparsers.add_parser(
        "render",
        help="print objects as the webhook would admit them (no cluster)",
        description="Dry run: print the objects in FILEs as the webhook would admit them, or with --patch the JSON patch "
        "per object. Exits non-zero, naming file, object and field, when an object would be denied or is malformed.",
    )
    render.add_argument("-f", "--filename", dest="files", action="append", required=True, metavar="FILE", help="YAML/JSON file, '-' for stdin; repeatable")
    render.add_argument("--policy", default=str(SHIPPED_POLICY_DIR), metavar="DIR", help="policy directory (default: the shipped policies/)")
    render.add_argument("--patch", action="store_true", help="print the JSON patch per object instead of the objects")
    render.add_argument("-n", "--namespace", default=None, help="namespace for objects that name none (default: default)")
    render.set_defaults(func=run_render)


def run_render(args: argparse.Namespace) -> int:
    from webhook.render import main

    policy = _policy_or_exit(args.policy)
    if policy is None:
        return 2
    return main(args.files, policy, as_patch=args.patch, namespace=args.namespace)


def run_webhook(args: argparse.Namespace) -> int:
    from infergate.tls import ReloadingTLS
    from webhook.server import WebhookServer, serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    policy = _policy_or_exit(args.policy)
    if policy is None:
        return 2
    try:
        tls = ReloadingTLS(args.tls_cert, args.tls_key)
    except (OSError, ValueError) as exc:
        print(f"error: cannot load TLS files {args.tls_cert}, {args.tls_key}: {exc}", file=sys.stderr)
        return 2
    serve(WebhookServer(policy, tls, policy_dir=args.policy), args.host, args.port)
    return 0
