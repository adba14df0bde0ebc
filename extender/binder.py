"""What the extender writes to the API server: the GPU index annotation, the Binding, and evictions."""

from __future__ import annotations

import json
import logging
from typing import Any, Protocol


log = logging.getLogger(__name__)


class BindError(Exception):
    """The API server refused; the message says why."""


class Binder(Protocol):
    async def get_pod(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    async def annotate(self, namespace: str, name: str, annotations: dict[str, str]) -> None: ...

    async def bind(self, namespace: str, name: str, uid: str, node: str) -> None: ...

    async def evict(self, namespace: str, name: str) -> None: ...


class KubeBinder:
    """Through the official asyncio Kubernetes client. Responses are read raw: the generated models cannot
    decode the Status a Binding returns."""

    def __init__(self, api_client: Any):
        from kubernetes_asyncio import client

        self._client = client
        self.core = client.CoreV1Api(api_client)

    async def _call(self, method, *args, **kwargs) -> dict[str, Any] | None:
        from kubernetes_asyncio.client.exceptions import ApiException

        try:
            response = await method(*args, _preload_content=False, **kwargs)
            body = await response.read()
        except ApiException as exc:  # raised for some failures even without preloading
            status, body = exc.status, exc.body
        else:
            # Without preloading the client does not raise for an error status: every 403, 404 and 409 must
            # be read here, or a refused binding would pass for a successful one.
            status = response.status
        if status == 404 and method == self.core.read_namespaced_pod:
            return None
        if not 200 <= status < 300:
            raise BindError(_status_message(status, body))
        return json.loads(body) if body else None

    async def get_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._call(self.core.read_namespaced_pod, name, namespace)

    async def annotate(self, namespace: str, name: str, annotations: dict[str, str]) -> None:
        await self._call(self.core.patch_namespaced_pod, name, namespace, {"metadata": {"annotations": annotations}})

    async def bind(self, namespace: str, name: str, uid: str, node: str) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name, "namespace": namespace, **({"uid": uid} if uid else {})},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        }
        await self._call(self.core.create_namespaced_binding, namespace, body)

    async def evict(self, namespace: str, name: str) -> None:
        body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": namespace}}
        await self._call(self.core.create_namespaced_pod_eviction, name, namespace, body)


def _status_message(status: int, body: Any) -> str:
    try:
        return f"{status}: {json.loads(body).get('message', '')}"
    except (TypeError, ValueError, AttributeError):
        return f"{status}: {body!r}"


class SnapshotBinder:
    """For `--snapshot`: no API server; bindings and annotations are applied to the snapshot's own pods."""

    def __init__(self, pods: dict[str, dict[str, Any]]):
        self.pods = pods
        self.evicted: list[str] = []

    async def get_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.pods.get(f"{namespace}/{name}")

    async def annotate(self, namespace: str, name: str, annotations: dict[str, str]) -> None:
        pod = self.pods.get(f"{namespace}/{name}")
        if pod is None:
            raise BindError(f"404: pods {name!r} not found")
        pod.setdefault("metadata", {}).setdefault("annotations", {}).update(annotations)

    async def bind(self, namespace: str, name: str, uid: str, node: str) -> None:
        pod = self.pods.get(f"{namespace}/{name}")
        if pod is None:
            raise BindError(f"404: pods {name!r} not found")
        current = (pod.get("spec") or {}).get("nodeName")
        if current and current != node:
            raise BindError(f"409: pod {name} is already assigned to node {current}")
        pod.setdefault("spec", {})["nodeName"] = node

    async def evict(self, namespace: str, name: str) -> None:
        self.evicted.append(f"{namespace}/{name}")
        self.pods.pop(f"{namespace}/{name}", None)


