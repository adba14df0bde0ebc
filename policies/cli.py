"""`infergate check-policy DIR`."""

from __future__ import annotations

import argparse
import sys

from policies.loader import PolicyError, load_policy


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "check-policy",
        help="validate a policy directory",
        description="Validate every Runtime, Model and ClusterPolicy in DIR; list every problem by file and path.",
    )
    parser.add_argument("directory", metavar="DIR")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        policy = load_policy(args.directory)
    except PolicyError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{len(exc.problems)} problem(s) in {args.directory}", file=sys.stderr)
        return 1
    print(
        f"{args.directory}: OK: {len(policy.runtimes)} runtime(s), {len(policy.models)} model(s), "
        f"{len(policy.cluster.spec.namespaces)} namespace rule(s)"
    )
    return 0
