"""The policy cluster admins write: Runtimes, Models and the ClusterPolicy, loaded from a directory of YAML."""

from pathlib import Path

from policies.loader import Policy, PolicyError, PolicyProblem, load_policy

SHIPPED_POLICY_DIR = Path(__file__).resolve().parent

__all__ = ["Policy", "PolicyError", "PolicyProblem", "SHIPPED_POLICY_DIR", "load_policy"]
