"""Where a /mutate request's time goes inside the webhook process, without HTTP, TLS or the network.

    .venv/bin/python bench/webhook_profile.py [--rounds 300] [--plain] [--cprofile | --pyinstrument]
    .venv/bin/python bench/webhook_profile.py --compare DIR    # before/after: DIR holds the old webhook/

Runs the sample AdmissionReviews of bench/webhook_reviews.py through the stages of the handler and prints
the microseconds per request of each (the best of `--trials` trials, as the machine is shared): parsing the
review, decide() (shape check, plan, injectors, patch building), building and encoding the response, and the
whole handler (WebhookServer.mutate on a stand-in request: parse, decide, metrics, JSON response).

It also prints a digest of every answer (patches decoded, so an encoder change that keeps the JSON equal keeps
the digest): an optimization must leave it unchanged. `--src DIR` imports the `webhook` package from DIR
(e.g. an old copy: `git archive HEAD webhook | tar -x -C DIR`); `--compare DIR` runs the old and the current
code in turns, in separate processes, and prints both. `--cprofile` / `--pyinstrument` profile the handler.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STAGES = ("parse", "decide", "response", "handler")


class _Request:
    """What the handler uses of an aiohttp request: the body."""

    def __init__(self, body: bytes):
        self.body = body

    async def read(self) -> bytes:
        return self.body


def digest(answers: list[bytes]) -> str:
    """Answers with their patches decoded and everything re-encoded canonically."""
    canonical = []
    for raw in answers:
        answer = json.loads(raw)
        result = answer.get("response", {})
        if "patch" in result:
            result["patch"] = json.loads(base64.b64decode(result["patch"]))
        canonical.append(answer)
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()[:16]


async def handler_answers(server: Any, bodies: list[bytes]) -> list[bytes]:
    return [(await server.mutate(_Request(body))).body for body in bodies]


async def handler_loop(server: Any, bodies: list[bytes], rounds: int) -> float:
    """Seconds per request through WebhookServer.mutate."""
    requests = [_Request(body) for _ in range(rounds) for body in bodies]
    started = time.perf_counter()
    for request in requests:
        await server.mutate(request)
    return (time.perf_counter() - started) / len(requests)


def stage_times(policy: Any, bodies: list[bytes], rounds: int) -> dict[str, float]:
    from webhook.admission import decide
    from webhook.review import parse_review, response

    try:
        from webhook.review import dumps
    except ImportError:  # older code: web.json_response did json.dumps
        dumps = json.dumps

    totals = {"parse": 0.0, "decide": 0.0, "response": 0.0}
    n = 0
    for _ in range(rounds):
        for body in bodies:
            t0 = time.perf_counter()
            review = parse_review(body)
            t1 = time.perf_counter()
            decision = decide(review.request, policy, mutate=True)
            t2 = time.perf_counter()
            answer = response(review.request.uid, patch=decision.patch, warnings=decision.warnings)
            dumps(answer)  # what the handler does with it
            t3 = time.perf_counter()
            totals["parse"] += t1 - t0
            totals["decide"] += t2 - t1
            totals["response"] += t3 - t2
            n += 1
    return {key: value / n for key, value in totals.items()}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    if args.src:
        sys.path.insert(0, str(Path(args.src).resolve()))
    from policies import SHIPPED_POLICY_DIR, load_policy
    from webhook.server import WebhookServer
    from webhook_reviews import review_bodies

    policy = load_policy(SHIPPED_POLICY_DIR)
    bodies = [body for _, body in review_bodies(plain=args.plain)]
    server = WebhookServer(policy)
    answers = asyncio.run(handler_answers(server, bodies))
    stage_times(policy, bodies, max(1, args.rounds // 10))  # warm-up
    best = dict.fromkeys(STAGES, float("inf"))
    args.trials = args.trials or args.rounds
    per_trial = max(1, args.rounds // args.trials)
    for _ in range(args.trials):
        times = stage_times(policy, bodies, per_trial)
        times["handler"] = asyncio.run(handler_loop(server, bodies, per_trial))
        best = {key: min(best[key], times[key]) for key in STAGES}
    return {
        "src": str(Path(sys.modules["webhook"].__file__).parent),
        "requests": len(bodies), "mean_body": sum(map(len, bodies)) / len(bodies), "digest": digest(answers),
        "us": {key: value * 1e6 for key, value in best.items()},
        "_server": server, "_bodies": bodies,
    }


def show(result: dict[str, Any]) -> None:
    us = result["us"]
    print(f"{result['src']}: {result['requests']} sample reviews, mean body {result['mean_body']:.0f} B; "
          f"answers digest {result['digest']}")
    total = us["parse"] + us["decide"] + us["response"]
    for key in ("parse", "decide", "response"):
        print(f"  {key:<9} {us[key]:8.1f} us  {us[key] / total * 100:5.1f}%")
    print(f"  {'handler':<9} {us['handler']:8.1f} us  (WebhookServer.mutate: parse, decide, metrics, JSON response)")


def compare(args: argparse.Namespace) -> int:
    """Old (--compare DIR) and current code in turns, in fresh processes; the best of each stage."""
    common = [sys.executable, __file__, "--json-out", "--rounds", str(args.rounds), "--trials", str(args.trials)]
    if args.plain:
        common.append("--plain")
    best: dict[str, dict[str, float]] = {}
    digests: dict[str, str] = {}
    for _ in range(args.turns):
        for label, extra in (("before", ["--src", args.compare]), ("after", [])):
            out = subprocess.run(common + extra, capture_output=True, text=True, check=True, cwd=ROOT).stdout
            result = json.loads(out)
            digests[label] = result["digest"]
            best[label] = {k: min(v, best.get(label, {}).get(k, float("inf"))) for k, v in result["us"].items()}
    print(f"us per request, best of {args.turns} turns x {args.trials or args.rounds} trials; digest before {digests['before']}, "
          f"after {digests['after']}{'' if digests['before'] == digests['after'] else '  ** ANSWERS DIFFER **'}")
    print(f"  {'stage':<9} {'before':>8} {'after':>8}  {'change':>7}")
    for key in STAGES:
        b, a = best["before"][key], best["after"][key]
        print(f"  {key:<9} {b:8.1f} {a:8.1f}  {(a - b) / b * 100:+6.0f}%")
    return 0 if digests["before"] == digests["after"] else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=300, help="passes over the sample reviews (default 300)")
    parser.add_argument("--trials", type=int, default=0, help="the rounds are split into trials, the best counts (default: one pass each)")
    parser.add_argument("--plain", action="store_true", help="the sample manifests as written, without API-server defaults")
    parser.add_argument("--src", metavar="DIR", help="import the webhook package from DIR")
    parser.add_argument("--compare", metavar="DIR", help="before/after: DIR holds the old webhook package")
    parser.add_argument("--turns", type=int, default=3, help="--compare: turns of each (default 3)")
    parser.add_argument("--json-out", action="store_true", help=argparse.SUPPRESS)
    profiler = parser.add_mutually_exclusive_group()
    profiler.add_argument("--cprofile", action="store_true", help="print the top functions of the handler loop (cProfile)")
    profiler.add_argument("--pyinstrument", action="store_true", help="print a pyinstrument call tree of the handler loop")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    if args.compare:
        return compare(args)
    result = measure(args)
    if args.json_out:
        print(json.dumps({k: v for k, v in result.items() if not k.startswith("_")}))
        return 0
    show(result)
    server, bodies = result["_server"], result["_bodies"]
    if args.cprofile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        asyncio.run(handler_loop(server, bodies, args.rounds))
        prof.disable()
        stats = pstats.Stats(prof)
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(40)
    elif args.pyinstrument:
        from pyinstrument import Profiler

        prof = Profiler(interval=0.0001)
        prof.start()
        asyncio.run(handler_loop(server, bodies, args.rounds))
        prof.stop()
        print(prof.output_text(unicode=True, color=False, show_all=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
