"""Servers run on a loop in a background thread, so hypothesis can drive them over real HTTP."""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web

from extender.binder import SnapshotBinder
from extender.server import ExtenderServer
from extender.view import ClusterView
from tests.kube_objects import node, pod
from webhook.server import WebhookServer


class Served:
    def __init__(self, app: web.Application):
        self.loop = asyncio.new_event_loop()
        self.runner = web.AppRunner(app)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)

    def post(self, path: str, body: bytes) -> tuple[int, Any]:
        self.connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = self.connection.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data else None

    def get(self, path: str) -> int:
        self.connection.request("GET", path)
        response = self.connection.getresponse()
        response.read()
        return response.status

    def close(self) -> None:
        self.connection.close()
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def webhook_server(policy) -> Iterator[Served]:
    served = Served(WebhookServer(policy).app())
    yield served
    served.close()


@pytest.fixture(scope="module")
def extender_server(policy) -> Iterator[Served]:
    view = ClusterView()
    pods = [pod("busy", gpus=4, node_name="n1"), pod("waiting", gpus=2)]
    view.replace_all([node("n1"), node("n2", gpus=4)], pods)
    server = ExtenderServer(policy, view, SnapshotBinder({f"ml/{p['metadata']['name']}": p for p in pods}))
    server.scaffold.companions.clear()
    served = Served(server.app())
    yield served
    served.close()
