"""Where the extender's view comes from: a list+watch of Nodes and Pods, or a snapshot file."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import yaml

from extender.podspec import pod_key
from extender.view import ClusterView

log = logging.getLogger(__name__)

LIST_PAGE = 500
WATCH_TIMEOUT_SECONDS = 300  # the API server ends each watch by then; the next one resumes from the last version


class SnapshotError(ValueError):
    pass


def read_snapshot(path: str | Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Nodes and Pods from a `kind: List` or multi-document YAML/JSON file."""
    try:
        documents = list(yaml.safe_load_all(Path(path).read_text(encoding="utf-8")))
    except OSError as exc:
        raise SnapshotError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise SnapshotError(f"{path}: not valid YAML or JSON: {exc}") from None
    nodes: list[dict[str, Any]] = []
    pods: list[dict[str, Any]] = []
    for index, document in enumerate(documents, start=1):
        if document is None:
            continue
        items = document.get("items") if isinstance(document, dict) and str(document.get("kind", "")).endswith("List") else [document]
        for item in items or []:
            if not isinstance(item, dict):
                raise SnapshotError(f"{path} document {index}: not a Kubernetes object")
            kind = item.get("kind")
            if kind == "Node":
                nodes.append(item)
            elif kind == "Pod":
                pods.append(item)
    return nodes, pods


def load_snapshot(view: ClusterView, path: str | Path) -> dict[str, dict[str, Any]]:
    nodes, pods = read_snapshot(path)
    view.replace_all(nodes, pods)
    return {pod_key(p): p for p in pods}


class KubeSource:
    """List, then watch from the list's resourceVersion; relist when the watch expires (410) or breaks.

    Responses are read as raw JSON: the generated models would cost more than the placement itself at
    tens of thousands of pods.
    """

    def __init__(self, api_client: Any, view: ClusterView):
        from kubernetes_asyncio import client

        self.core = client.CoreV1Api(api_client)
        self.view = view
        self.relists = 0
        self.watch_restarts = 0

    async def _list(self, method) -> tuple[list[dict[str, Any]], str]:
        items: list[dict[str, Any]] = []
        token = None
        while True:
            kwargs = {"limit": LIST_PAGE, "_preload_content": False}
            if token:
                kwargs["_continue"] = token
            response = await method(**kwargs)
            page = json.loads(await response.read())
            items += page.get("items") or []
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items, page["metadata"]["resourceVersion"]

    async def relist(self) -> tuple[str, str]:
        nodes, node_version = await self._list(self.core.list_node)
        pods, pod_version = await self._list(self.core.list_pod_for_all_namespaces)
        for item in nodes:
            item.setdefault("kind", "Node")
        self.view.replace_all(nodes, pods)
        self.relists += 1
        log.info("listed %d nodes and %d pods", len(nodes), len(pods))
        return node_version, pod_version

    async def _watch(self, method, version: str, apply, delete) -> None:
        """Follow one watch until it ends; raise _Expired when the version is too old."""
        while True:
            response = await method(
                watch=True, resource_version=version, allow_watch_bookmarks=True,
                timeout_seconds=WATCH_TIMEOUT_SECONDS, _preload_content=False,
            )
            async with response:
                async for line in response.content:
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    kind, obj = event.get("type"), event.get("object") or {}
                    if kind == "ERROR":
                        if obj.get("code") == 410:
                            raise _Expired()
                        raise RuntimeError(f"watch error: {obj.get('message')}")
                    version = (obj.get("metadata") or {}).get("resourceVersion", version)
                    if kind in ("ADDED", "MODIFIED"):
                        apply(obj)
                    elif kind == "DELETED":
                        delete(obj)

    async def run(self) -> None:
        """Keep the view in sync for as long as the server runs."""
        while True:
            try:
                node_version, pod_version = await self.relist()
                # One failing watch ends both (TaskGroup cancels the other), and both restart from a relist.
                async with asyncio.TaskGroup() as group:
                    group.create_task(self._watch(
                        self.core.list_node, node_version, self.view.apply_node,
                        lambda n: self.view.delete_node((n.get("metadata") or {}).get("name", ""))))
                    group.create_task(self._watch(
                        self.core.list_pod_for_all_namespaces, pod_version, self.view.apply_pod,
                        lambda p: self.view.delete_pod(pod_key(p))))
            except* _Expired:
                log.info("watch expired; relisting")
            except* Exception as failures:  # the API server went away or the connection broke: relist when back
                log.warning("watch failed (%s); relisting in 1s", failures.exceptions[0])
                await asyncio.sleep(1.0)
            self.watch_restarts += 1


class _Expired(Exception):
    pass
