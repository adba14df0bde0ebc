"""`infergate certs`: write a CA and a serving certificate for the webhook and the extender."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from certs.issue import CertError, parse_ip, validate_dns_name, write_bundle

DESCRIPTION = """\
Write ca.crt, ca.key, tls.crt and tls.key to DIR. tls.crt is a serving certificate for the given DNS names
and IP addresses, signed by the CA in DIR. An existing ca.crt/ca.key pair in DIR is reused, so running the
command again rotates the serving certificate without changing the CA that clients trust (for example the
caBundle of the MutatingWebhookConfiguration). Private keys are written with mode 0600.
"""

EPILOG = """\
example, for a webhook Service `infergate-webhook` in namespace `infergate-system`:
  infergate certs --out certs/webhook \\
      --dns infergate-webhook,infergate-webhook.infergate-system.svc --ip 127.0.0.1
"""


def _split(values: list[str] | None) -> list[str]:
    """Flatten repeated and comma-separated option values: `--dns a,b --dns c` gives [a, b, c]."""
    return [item.strip() for value in values or [] for item in value.split(",") if item.strip()]


def _list_of(check: Callable[[str], object]) -> Callable[[str], str]:
    """An argparse type for a comma-separated list whose every item `check` accepts, so that a bad name is
    reported by argparse as a usage error of its option."""

    def parse(value: str) -> str:
        for item in _split([value]):
            try:
                check(item)
            except CertError as exc:
                raise argparse.ArgumentTypeError(str(exc)) from None
        return value

    return parse


_dns_list = _list_of(validate_dns_name)
_ip_list = _list_of(parse_ip)


def _days(value: str) -> int:
    try:
        days = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of days") from None
    if days < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {days}")
    return days


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "certs",
        help="write a CA and a serving certificate (ca.crt, tls.crt, tls.key)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="directory to write to")
    parser.add_argument(
        "--dns",
        required=True,
        action="append",
        type=_dns_list,
        metavar="NAME[,NAME]",
        help="DNS names of the server (comma-separated or repeated)",
    )
    parser.add_argument(
        "--ip",
        action="append",
        type=_ip_list,
        metavar="IP[,IP]",
        help="IP addresses of the server (comma-separated or repeated)",
    )
    parser.add_argument(
        "--days", type=_days, default=365, metavar="N", help="validity of tls.crt in days (default: 365)"
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    dns, ips = _split(args.dns), _split(args.ip)
    existed = (args.out / "ca.crt").exists()
    try:
        paths = write_bundle(args.out, dns, ips, days=args.days)
    except (CertError, OSError) as exc:
        print(f"infergate certs: error: {exc}", file=sys.stderr)
        return 1
    print(f"{'reused' if existed else 'created'} CA  {paths['ca.crt']}")
    print(f"wrote tls.crt {paths['tls.crt']} (valid {args.days} days) for {', '.join(dns + ips)}")
    print(f"wrote tls.key {paths['tls.key']}")
    return 0
