"""LeaderWorkerSet's own controller and pod webhook in the loop: the multi-node serving shapes of LWS's docs,
applied with kubectl, become pods that infergate injects and places as one gang in one rack.

infergate's webhook runs before LWS's pod webhook (so it sees the leader without its group-index and the workers
without their worker-index, as the LWS controller creates them) and after it, with both startup policies.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devcluster.stack import WEBHOOKS_FIRST, WEBHOOKS_LAST, InfergateStack
from tests.e2e.ecosystem.conftest import (
    H100, apply, delete_and_wait, describe, ecosystem_stack, gpus, manifest, node_labels, wait_bound,
)

pytestmark = pytest.mark.e2e

NAMESPACE = "eco-lws"
LWS_NAME = "leaderworkerset.sigs.k8s.io/name"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfergateStack]:
    yield from ecosystem_stack(tmp_path_factory, "lws", namespace=NAMESPACE, racks=("rack-a", "rack-b"))


CASES = [
    ("lws-vllm.yaml", WEBHOOKS_FIRST, "LeaderCreated"),
    ("lws-vllm.yaml", WEBHOOKS_LAST, "LeaderReady"),
    ("lws-sglang.yaml", WEBHOOKS_FIRST, "LeaderReady"),
    ("lws-sglang.yaml", WEBHOOKS_LAST, "LeaderCreated"),
]


@pytest.mark.parametrize(("shape", "order", "startup"), CASES,
                         ids=[f"{s.removesuffix('.yaml')}-infergate-{'first' if o == WEBHOOKS_FIRST else 'last'}-{p}"
                              for s, o, p in CASES])
def test_multi_node_model_is_injected_and_placed_as_one_gang(stack: InfergateStack, shape: str, order: str, startup: str) -> None:
    cluster = stack.cluster
    stack.order_webhooks(order)
    [lws] = manifest(shape)
    lws["spec"]["startupPolicy"] = startup
    name = lws["metadata"]["name"]
    selector = f"{LWS_NAME}={name}"
    apply(cluster, NAMESPACE, [lws])
    try:
        try:
            pods = wait_bound(cluster, NAMESPACE, selector, 2, timeout=120)
        except Exception as exc:
            raise AssertionError(f"{exc}\n{describe(cluster, NAMESPACE, 'leaderworkerset', name)}\n"
                                 f"{cluster.kubectl('get', 'events', '-n', NAMESPACE).stdout[-3000:]}") from exc
        assert len(pods) == 2
        nodes = node_labels(cluster)
        for pod in pods:
            meta = pod["metadata"]
            where = f"pod {meta['name']}"
            # LWS's own pod webhook ran: the labels it adds are there whatever the order.
            assert {"leaderworkerset.sigs.k8s.io/group-index", "leaderworkerset.sigs.k8s.io/worker-index"} <= set(meta["labels"]), where
            assert meta["labels"].get("infergate.io/model") == "deepseek-r1", where
            assert meta["labels"].get("infergate.io/workload") == "inference", where
            assert "infergate.io/injected" in meta.get("annotations", {}), where
            assert pod["spec"]["schedulerName"] == "infergate-scheduler", where
            assert pod["spec"].get("priorityClassName") == "infergate-inference", where
            assert gpus(pod) == 8, f"{where}: {gpus(pod)} GPUs, the model and the user both say 8"
            assert nodes[pod["spec"]["nodeName"]]["nvidia.com/gpu.product"] == H100, where
        placed = [p["spec"]["nodeName"] for p in pods]
        assert len(set(placed)) == 2, placed
        # The member bound second had its place written on it before it bound (at the group's first binding or,
        # created after it as the real controller does, at its own first filter): a restart meanwhile keeps it.
        # (The place written may be an earlier plan's: in one run of ~5 the leader bound on another node than
        # the one recorded, the group having been planned again in between; see the closing note of session 4.)
        recorded = [p["metadata"]["name"] for p in pods if "infergate.io/reserved-node" in p["metadata"].get("annotations", {})]
        assert recorded, f"no member has its reserved node recorded: {[p['metadata'].get('annotations') for p in pods]}"
        assert len({nodes[n]["infergate.io/rack"] for n in placed}) == 1, f"one rack: {placed}"
    finally:
        delete_and_wait(cluster, NAMESPACE, "leaderworkerset", name, selector)
