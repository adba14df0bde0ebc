"""The extender's model-based test, run longer than `make test` runs it (tests/extender/model).

    .venv/bin/python bench/extender_model.py [--histories 2000] [--steps 60] [--http 200] [--seed 0]

Prints how many histories and steps were checked, with what mix of calls, and exits 1 on the first broken
invariant (hypothesis shrinks it and prints the shortest history that breaks it). Counts go in
bench/README.md, section "Extender: model-based test".
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, Phase, settings  # noqa: E402
from hypothesis.stateful import run_state_machine_as_test  # noqa: E402

from tests.extender.model.cluster_model import ClusterModel  # noqa: E402


class InProcess(ClusterModel):
    pass


class OverHttp(ClusterModel):
    HTTP = True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--histories", type=int, default=2000)
    parser.add_argument("--http", type=int, default=200, help="histories over real HTTP")
    parser.add_argument("--steps", type=int, default=60, help="at most this many steps per history")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the extender explains every release and re-plan; the counts are what matter
    random.seed(args.seed)
    started = time.perf_counter()
    for machine, histories in ((InProcess, args.histories), (OverHttp, args.http)):
        if not histories:
            continue
        run = settings(max_examples=histories, stateful_step_count=args.steps, deadline=None, database=None,
                       derandomize=False, suppress_health_check=list(HealthCheck),
                       phases=(Phase.generate, Phase.shrink))
        run_state_machine_as_test(machine, settings=run)
    totals = dict(sorted(ClusterModel.totals.items()))
    print(f"{time.perf_counter() - started:.0f} s; every invariant held")
    for name, count in totals.items():
        print(f"  {name}: {count}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
