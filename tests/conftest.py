"""Fixtures shared by every test folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from policies import SHIPPED_POLICY_DIR, load_policy
from policies.loader import Policy

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "deploy" / "samples"

RESTRICTED_RULES = """
apiVersion: infergate.io/v1alpha1
kind: ClusterPolicy
metadata: {name: restricted}
spec:
  namespaces:
    - namespaces: ["team-small"]
      models: ["llama-3.1-8b-instruct", "qwen2.5-*"]
      runtimes: ["vllm"]
      maxGpusPerPod: 2
      workloadClasses: [training]
    - namespaces: ["*"]
"""


@pytest.fixture(scope="session")
def policy() -> Policy:
    return load_policy(SHIPPED_POLICY_DIR)


@pytest.fixture(scope="session")
def restricted_policy(tmp_path_factory: pytest.TempPathFactory) -> Policy:
    """The shipped runtimes and models with a ClusterPolicy that narrows namespace team-small."""
    directory = tmp_path_factory.mktemp("restricted-policy")
    for name in ("runtimes.yaml", "models.yaml"):
        (directory / name).write_text((SHIPPED_POLICY_DIR / name).read_text())
    (directory / "clusterpolicy.yaml").write_text(RESTRICTED_RULES)
    return load_policy(directory)


@pytest.fixture
def inject(policy: Policy):
    """Run injectors on a pod planned against the shipped policy."""
    from tests.podkit import run_injectors

    def _inject(original, *injectors, namespace: str = "ml"):
        return run_injectors(policy, original, *injectors, namespace=namespace)

    return _inject
