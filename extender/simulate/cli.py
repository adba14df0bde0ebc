"""`infergate simulate`: replay an openb-format trace through the extender's placement code."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from extender.core.scorers import DEFAULT_SCORER, scorer_names
from extender.simulate.replay import DEFAULT_SEEDS, run
from extender.simulate.trace import TraceError

__all__ = ["add_parser", "parse_seeds", "parse_scorers"]


def parse_seeds(text: str) -> list[int]:
    """'42-51', '42,43,50', '42' or a mix ('42-44,50')."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part[1:]:
                low, high = part.split("-", 1) if not part.startswith("-") else (part, "")
                first, last = int(low), int(high)
                if last < first:
                    raise ValueError
                seeds.extend(range(first, last + 1))
            else:
                seeds.append(int(part))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"bad seeds {text!r}: use a number, a range like 42-51, or a comma-separated list") from None
    if not seeds:
        raise argparse.ArgumentTypeError("no seeds given")
    return seeds


def parse_scorers(values: list[str] | None) -> list[str]:
    names: list[str] = []
    for value in values or [DEFAULT_SCORER]:
        for name in value.split(","):
            name = name.strip()
            if name and name not in names:
                names.append(name)
    unknown = [n for n in names if n not in scorer_names()]
    if unknown:
        raise ValueError(f"unknown scorer {', '.join(unknown)}; known: {', '.join(scorer_names())}")
    return names


def _arrival(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"arrival must be a number like 1.3, got {text!r}") from None
    if not 0 < value <= 10:
        raise argparse.ArgumentTypeError(f"arrival must be above 0 and at most 10, got {value}")
    return value


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "simulate",
        help="replay an openb GPU trace through the placement code and report GPU allocation",
        description=(
            "Replays an openb-format trace (node CSV + pod CSV) with the FGD paper's method: the pods plus random "
            "copies until their GPU request reaches ARRIVAL x the cluster's GPU capacity, shuffled per seed, "
            "placed one at a time and never removed. Reports the GPU allocation ratio (allocated / total "
            "GPU milli, %) at the end, averaged over seeds, and the curve over arrived demand."),
        epilog=f"scorers: {', '.join(scorer_names())} (default {DEFAULT_SCORER})",
    )
    parser.add_argument("--nodes", metavar="CSV", help="node list (sn,cpu_milli,memory_mib,gpu,model)")
    parser.add_argument("--pods", metavar="CSV",
                        help="pod list (name,cpu_milli,memory_mib,num_gpu,gpu_milli[,gpu_spec])")
    parser.add_argument("--scenario", metavar="FILE",
                        help="instead of a trace: groups, training and single pods arriving and leaving over time "
                             "(see bench/scenarios/), placed by the extender and by a member-by-member baseline")
    parser.add_argument("--policy", metavar="DIR",
                        help="policy directory for --scenario (default: the shipped policies/); the trace replay "
                             "uses --scorer only")
    parser.add_argument("--scorer", action="append", metavar="NAME",
                        help=f"scorer to run; repeat or comma-separate for several (default {DEFAULT_SCORER})")
    parser.add_argument("--seeds", type=parse_seeds, default=list(DEFAULT_SEEDS), metavar="SEEDS",
                        help="seeds: a range like 42-51 (the default), or a comma-separated list")
    parser.add_argument("--arrival", type=_arrival, default=1.3,
                        help="arrived GPU demand as a multiple of cluster GPU capacity (default 1.3)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object: the first scorer's figures at top level, "
                             "and every scorer's under 'results'")
    parser.add_argument("--plot", metavar="PNG", help="write a PNG of allocation vs arrival, one curve per scorer")
    parser.set_defaults(func=main)
    return parser


def _table(results: list[dict[str, Any]]) -> str:
    lines = [f"{'scorer':<10} {'allocation %':>12} {'failed pods':>12} {'early':>6} {'s/seed':>7}   per seed"]
    for r in results:
        per_seed = " ".join(f"{s['allocation_pct']:.2f}" for s in r["per_seed"])
        lines.append(f"{r['scorer']:<10} {r['allocation_pct']:>12.2f} {r['failed_pods']:>12.1f} "
                     f"{r['early_failed_pods']:>6.1f} {r['seconds_per_seed']:>7.1f}   {per_seed}")
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    if args.scenario:
        return run_scenario(args)
    if not (args.nodes and args.pods):
        print("infergate simulate: give --nodes and --pods (a trace), or --scenario FILE", file=sys.stderr)
        return 2
    try:
        scorers = parse_scorers(args.scorer)
    except ValueError as exc:
        print(f"infergate simulate: {exc}", file=sys.stderr)
        return 2
    progress = sys.stderr.isatty()
    results = []
    try:
        for name in scorers:
            results.append(run(args.nodes, args.pods, name, args.seeds, args.arrival, progress=progress))
    except TraceError as exc:
        print(f"infergate simulate: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"infergate simulate: {exc}", file=sys.stderr)
        return 2
    if args.plot:
        from extender.simulate.plot import plot_curves

        try:
            plot_curves(results, args.plot)
        except OSError as exc:
            print(f"infergate simulate: cannot write plot {args.plot}: {exc}", file=sys.stderr)
            return 1
    if args.json:
        out = dict(results[0])
        out["results"] = results
        print(json.dumps(out))
    else:
        print(f"trace: {args.pods} on {args.nodes}; seeds {args.seeds[0]}..{args.seeds[-1]} "
              f"({len(args.seeds)}); arrival {args.arrival:g}x GPU capacity")
        print(_table(results))
        if args.plot:
            print(f"plot written to {args.plot}")
    return 0


def run_scenario(args: argparse.Namespace) -> int:
    import asyncio

    from extender.scenarios import compare, load_scenario
    from policies import SHIPPED_POLICY_DIR, PolicyError, load_policy

    try:
        scenario = load_scenario(args.scenario)
        policy = load_policy(args.policy or SHIPPED_POLICY_DIR)
    except (ValueError, PolicyError) as exc:
        print(f"infergate simulate: {exc}", file=sys.stderr)
        return 2
    report = asyncio.run(compare(scenario, policy))
    if args.json:
        print(json.dumps(report))
        return 0
    keys = [k for k in report["results"][0] if k != "placer"]
    print(f"scenario {report['scenario']}: {args.scenario}")
    print(f"{'':<32}" + "".join(f"{r['placer']:>12}" for r in report["results"]))
    for key in keys:
        print(f"{key:<32}" + "".join(f"{r[key]:>12}" for r in report["results"]))
    return 0
