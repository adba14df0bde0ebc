"""The `infergate` console script.

Each subcommand lives next to the code it drives and exposes `add_parser(subparsers)`, which registers itself
and sets `func`. Modules are imported lazily-by-listing so a broken optional piece cannot hide `--help`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# (module, attribute) of each subcommand's registration function, in the order `--help` lists them.
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
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue  # that piece is not built yet
            raise
        module.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    result = args.func(args)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
