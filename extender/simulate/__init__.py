"""Offline replay of GPU cluster traces through the placement core (`infergate simulate`)."""

from extender.simulate.replay import DEFAULT_SEEDS, run, run_seed, tune_workload
from extender.simulate.trace import TraceError, TracePod, load_nodes, load_pods

__all__ = ["DEFAULT_SEEDS", "TraceError", "TracePod", "load_nodes", "load_pods", "run", "run_seed", "tune_workload"]
