"""The model-based test of the extender (issue 12): random cluster histories, the invariants checked after
every step (tests/extender/model/cluster_model.py). A fixed budget here; bench/extender_model.py runs longer."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

from tests.extender.model.cluster_model import ClusterModel

BUDGET = settings(max_examples=150, stateful_step_count=40, deadline=None, suppress_health_check=list(HealthCheck))


class InProcess(ClusterModel):
    pass


class OverHttp(ClusterModel):
    HTTP = True


TestInProcess = InProcess.TestCase
TestInProcess.settings = BUDGET
TestOverHttp = OverHttp.TestCase
TestOverHttp.settings = settings(BUDGET, max_examples=30)
