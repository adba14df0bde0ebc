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

    async def get_leaderworkerset(self, namespace: str, name: str) -> dict[str, Any] | None: ...


LWS_GROUP, LWS_VERSION, LWS_PLURAL = "leaderworkerset.x-k8s.io", "v1", "leaderworkersets"


class KubeBinder:
    """Through the official asyncio Kubernetes client. Responses are read raw: the generated models cannot
    decode the Status a Binding returns."""

    def __init__(self, api_client: Any):
        from kubernetes_asyncio import client

        self._client = client
        self.core = client.CoreV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)

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
        if status == 404 and method in (self.core.read_namespaced_pod, self.custom.get_namespaced_custom_object):
            return None  # no such pod; no such LeaderWorkerSet, or its API is not installed
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

    async def get_leaderworkerset(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._call(self.custom.get_namespaced_custom_object, LWS_GROUP, LWS_VERSION, namespace, LWS_PLURAL, name)


def _status_message(status: int, body: Any) -> str:
    try:
        return f"{status}: {json.loads(body).get('message', '')}"
    except (TypeError, ValueError, AttributeError):
        return f"{status}: {body!r}"


class SnapshotBinder:
    """For `--snapshot`: no API server; bindings and annotations are applied to the snapshot's own pods."""

    # No watch follows a snapshot: what this binder binds is bound (the scheduler counts it so at once).
    authoritative = True

    def __init__(self, pods: dict[str, dict[str, Any]], leaderworkersets: dict[str, dict[str, Any]] | None = None):
        self.pods = pods
        self.leaderworkersets = leaderworkersets if leaderworkersets is not None else {}
        self.evicted: list[str] = []

    async def get_leaderworkerset(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.leaderworkersets.get(f"{namespace}/{name}")

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


