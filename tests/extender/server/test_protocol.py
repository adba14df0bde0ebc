"""The extender over HTTP with kube-scheduler's real wire format, on a snapshot of nodes and pods."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from extender.binder import SnapshotBinder
from extender.server import ExtenderServer
from extender.view import ClusterView
from tests.kube_objects import node, pod


class SlowBinder(SnapshotBinder):
    """Yields to other requests inside every API call, as a real API server round trip does."""

    async def annotate(self, namespace: str, name: str, annotations: dict[str, str]) -> None:
        await asyncio.sleep(random.random() / 1000)
        await super().annotate(namespace, name, annotations)

    async def bind(self, namespace: str, name: str, uid: str, node: str) -> None:
        await asyncio.sleep(random.random() / 1000)
        await super().bind(namespace, name, uid, node)


async def start(policy, nodes: list[dict[str, Any]], pods: list[dict[str, Any]]) -> tuple[TestClient, ExtenderServer]:
    view = ClusterView()
    view.replace_all(nodes, pods)
    binder = SlowBinder({f"{p['metadata']['namespace']}/{p['metadata']['name']}": p for p in pods})
    server = ExtenderServer(policy, view, binder)
    client = TestClient(TestServer(server.app()))
    await client.start_server()
    return client, server


@pytest.fixture
async def cluster(policy):
    nodes = [node("n1"), node("n2"), node("a10", gpus=4, product="NVIDIA-A10")]
    pods = [pod("busy", gpus=6, node_name="n1"), pod("waiting", gpus=4), pod("half", share=500), pod("cpu-only")]
    client, server = await start(policy, nodes, pods)
    yield client, server
    await client.close()


async def post(client: TestClient, verb: str, body: Any) -> tuple[int, Any]:
    response = await client.post(f"/{verb}", data=json.dumps(body), headers={"Content-Type": "application/json"})
    return response.status, await response.json()


async def test_filter_node_names(cluster):
    client, server = cluster
    status, result = await post(client, "filter", {"Pod": pod("waiting", gpus=4), "NodeNames": ["n1", "n2", "a10", "ghost"]})
    assert status == 200
    assert result["NodeNames"] == ["n2", "a10"]
    assert result["FailedNodes"]["n1"].startswith("node n1") and "4" in result["FailedNodes"]["n1"]
    assert "not known" in result["FailedNodes"]["ghost"]
    assert result["Error"] == "" and result["FailedAndUnresolvableNodes"] == {}


async def test_filter_nodes_shape(cluster):
    client, _ = cluster
    items = [node("n1"), node("n2")]
    status, result = await post(client, "filter", {"Pod": pod("waiting", gpus=4), "Nodes": {"items": items}})
    assert status == 200
    assert [n["metadata"]["name"] for n in result["Nodes"]["items"]] == ["n2"]
    assert result["NodeNames"] is None and "n1" in result["FailedNodes"]


async def test_filter_gpu_product(cluster):
    client, _ = cluster
    wants_a10 = pod("waiting", gpus=1, annotations={"infergate.io/gpu-product": "NVIDIA-A10"})
    _, result = await post(client, "filter", {"Pod": wants_a10, "NodeNames": ["n1", "n2", "a10"]})
    assert result["NodeNames"] == ["a10"]
    assert "NVIDIA-A10" in result["FailedNodes"]["n2"]


async def test_prioritize_scores_are_integers_0_to_10(cluster):
    client, _ = cluster
    status, result = await post(client, "prioritize", {"Pod": pod("waiting", gpus=2), "NodeNames": ["n1", "n2", "a10"]})
    assert status == 200
    assert [entry["Host"] for entry in result] == ["n1", "n2", "a10"]
    scores = {entry["Host"]: entry["Score"] for entry in result}
    assert all(isinstance(s, int) and 0 <= s <= 10 for s in scores.values())
    assert max(scores.values()) == 10 and min(scores.values()) == 0, "scores spread over the range"
    assert scores["n1"] == 10, "the partly used node is packed first"


async def test_bind_whole_gpus_is_idempotent(cluster):
    client, server = cluster
    body = {"PodName": "waiting", "PodNamespace": "ml", "PodUID": "uid-waiting", "Node": "n2"}
    for _ in range(3):
        status, result = await post(client, "bind", body)
        assert status == 200 and result == {"Error": ""}
    assert server.view.state.allocation("ml/waiting").node == "n2"
    assert server.binder.pods["ml/waiting"]["spec"]["nodeName"] == "n2"
    assert server.view.state.free_summary("n2")["gpu_free_milli"].count(1000) == 4


async def test_bind_fractional_writes_gpu_index_first(cluster):
    client, server = cluster
    status, result = await post(client, "bind", {"PodName": "half", "PodNamespace": "ml", "PodUID": "uid-half", "Node": "n1"})
    assert result == {"Error": ""}
    annotations = server.binder.pods["ml/half"]["metadata"]["annotations"]
    index = int(annotations["infergate.io/gpu-index"])
    assert server.view.state.allocation("ml/half").gpu_indices == (index,)
    assert server.view.state.free_summary("n1")["gpu_free_milli"][index] == 500


async def test_bind_that_does_not_fit_is_refused(cluster):
    client, server = cluster
    status, result = await post(client, "bind", {"PodName": "waiting", "PodNamespace": "ml", "PodUID": "uid-waiting", "Node": "n1"})
    assert status == 200 and "cannot bind pod ml/waiting to node n1" in result["Error"]
    assert "ml/waiting" not in server.view.state


@pytest.mark.parametrize("verb", ["filter", "prioritize", "bind", "preempt"])
@pytest.mark.parametrize("body", [b"nope", b"{}", b"[]", b'{"Pod": 3}', b""])
async def test_malformed_bodies_get_400(cluster, verb, body):
    client, _ = cluster
    response = await client.post(f"/{verb}", data=body)
    assert response.status == 400
    assert "Error" in await response.json()


async def test_unreadable_pod_is_unresolvable(cluster):
    client, _ = cluster
    bad = pod("bad", gpus=1)
    bad["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] = "lots"
    _, result = await post(client, "filter", {"Pod": bad, "NodeNames": ["n1"]})
    assert result["NodeNames"] == [] and "is not a quantity" in result["FailedAndUnresolvableNodes"]["n1"]


async def test_health_readiness_metrics(cluster):
    client, _ = cluster
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status == 200
    await post(client, "filter", {"Pod": pod("waiting", gpus=4), "NodeNames": ["n1"]})
    text = await (await client.get("/metrics")).text()
    assert 'infergate_extender_requests_total{result="no-fit",verb="filter"} 1.0' in text
    assert "infergate_gpu_allocated_milli 6000.0" in text and "infergate_gpu_capacity_milli 20000.0" in text


async def test_not_ready_before_sync(policy):
    server = ExtenderServer(policy, ClusterView(), SnapshotBinder({}))
    client = TestClient(TestServer(server.app()))
    await client.start_server()
    assert (await client.get("/readyz")).status == 503
    await client.close()


async def test_concurrent_binds_never_double_book(policy):
    """Many pods race for few GPUs through filter and bind at once: every GPU is given at most once."""
    nodes = [node(f"n{i}", gpus=4) for i in range(4)]
    pods = [pod(f"p{i}", gpus=1 + i % 3) for i in range(40)] + [pod(f"s{i}", share=300) for i in range(20)]
    client, server = await start(policy, nodes, pods)
    names = [n["metadata"]["name"] for n in nodes]

    async def schedule(p: dict[str, Any]) -> None:
        _, result = await post(client, "filter", {"Pod": p, "NodeNames": names})
        for target in result["NodeNames"]:
            _, bound = await post(client, "bind", {"PodName": p["metadata"]["name"], "PodNamespace": "ml", "PodUID": p["metadata"]["uid"], "Node": target})
            if bound["Error"] == "":
                return

    await asyncio.gather(*(schedule(p) for p in pods))
    await client.close()
    state = server.view.state
    for name in names:
        free = state.free_summary(name)["gpu_free_milli"]
        assert all(0 <= f <= 1000 for f in free)
        held = sum(a.total_gpu_milli for a in state.pods_on(name))
        assert held == 4000 - sum(free), "accounting matches what pods hold"
    bound = [p for p in server.binder.pods.values() if p["spec"].get("nodeName")]
    by_node: dict[str, int] = {}
    for p in bound:
        limits = p["spec"]["containers"][0]["resources"]["limits"]
        milli = int(limits.get("nvidia.com/gpu", 0)) * 1000 + int(limits.get("infergate.io/gpu-milli", 0))
        by_node[p["spec"]["nodeName"]] = by_node.get(p["spec"]["nodeName"], 0) + milli
    assert all(total <= 4000 for total in by_node.values()), by_node
    assert sum(by_node.values()) > 0
