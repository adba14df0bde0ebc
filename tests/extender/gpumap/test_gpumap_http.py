"""/ui and /api/v1/cluster on the extender's own app: the page loads nothing from elsewhere, the data follows the
extender's decisions (a filter that places nowhere is the reason the map shows)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from extender.binder import SnapshotBinder
from extender.server import ExtenderServer
from extender.view import ClusterView
from tests.kube_objects import node, pod


@pytest.fixture
async def client(policy) -> AsyncIterator[tuple[TestClient, ExtenderServer]]:
    view = ClusterView()
    pods = [pod("busy", gpus=8, node_name="n1"), pod("waiting", gpus=4), pod("half", share=500, node_name="n2")]
    view.replace_all([node("n1"), node("n2", gpus=4, product="NVIDIA-A10")], pods)
    server = ExtenderServer(policy, view, SnapshotBinder({f"ml/{p['metadata']['name']}": p for p in pods}))
    async with TestClient(TestServer(server.app())) as test_client:
        yield test_client, server


async def test_the_page_is_self_contained(client: tuple[TestClient, ExtenderServer]) -> None:
    test_client, _ = client
    response = await test_client.get("/ui")
    assert response.status == 200 and response.content_type == "text/html"
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp
    html = await response.text()
    # Nothing fetched from elsewhere: no src/href to a URL, no stylesheet or script links.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<link" not in html and "<script src" not in html and "@import" not in html
    # Data reaches the page as text, never as markup.
    assert "innerHTML" not in html


async def test_summary_and_drill_down(client: tuple[TestClient, ExtenderServer]) -> None:
    test_client, _ = client
    data = await (await test_client.get("/api/v1/cluster")).json()
    assert data["synced"] is True
    assert data["totals"]["gpus"] == 12 and data["totals"]["allocatedMilli"] == 8500
    assert data["pendingCount"] == 1 and data["pending"][0]["pod"] == "ml/waiting"
    a10 = next(g for g in data["groups"] if g["product"] == "NVIDIA-A10")
    detail = await (await test_client.get("/api/v1/cluster", params={"group": a10["id"]})).json()
    [n2] = detail["page"]
    assert [g["state"] for g in n2["gpus"]].count("fractional") == 1

    assert (await test_client.get("/api/v1/cluster", params={"group": "nope"})).status == 404
    assert (await test_client.get("/api/v1/cluster", params={"group": a10["id"], "limit": "x"})).status == 400


async def test_the_reason_is_the_filters(client: tuple[TestClient, ExtenderServer]) -> None:
    test_client, server = client
    pending = pod("waiting", gpus=4)
    answer = await (await test_client.post("/filter", json={"Pod": pending, "NodeNames": ["n1"]})).json()
    assert answer["NodeNames"] == []
    data = await (await test_client.get("/api/v1/cluster")).json()
    reason = data["pending"][0]["reason"]
    assert reason.startswith("0/1 nodes fit: ") and reason.endswith(answer["FailedNodes"]["n1"].split(": ", 1)[1])


async def test_metrics_carry_the_map_figures(client: tuple[TestClient, ExtenderServer]) -> None:
    test_client, _ = client
    text = await (await test_client.get("/metrics")).text()
    assert "infergate_gpu_stranded_milli 500.0" in text
    assert "infergate_extender_ready 1.0" in text
    assert "infergate_gang_reservations 0.0" in text
