"""The `infergate` console script.

Each subcommand lives next to the code it drives and exposes `add_parser(subparsers)`, which registers itself
and sets `func`; the heavy imports of each command happen only when it runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# The modules whose add_parser registers a subcommand, in the order `--help` lists them.
SUBCOMMANDS: list[str] = [
    "webhook.cli",
    "extender.cli",
    "policies.cli",
    "certs.cli",
    "extender.simulate.cli",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="infergate",
        description="Policy-driven admission and GPU placement for model serving on Kubernetes.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for module_name in SUBCOMMANDS:
        importlib.import_module(module_name).add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    result = args.func(args)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
