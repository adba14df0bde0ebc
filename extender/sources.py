"""Where the extender's view comes from: a list+watch of Nodes and Pods, or a snapshot file."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from extender.podgroups import api_of, is_pod_group
from extender.podspec import pod_key, slim_pod
from extender.protocol import decode, encode
from extender.view import ClusterView
from infergate import constants

log = logging.getLogger(__name__)

LIST_PAGE = 500
WATCH_TIMEOUT_SECONDS = 300  # the API server ends each watch by then; the next one resumes from the last version
# How often to look again for a PodGroup API the cluster does not serve (CRD not installed, gate off) or that
# the extender may not read: it appears rarely, and each look is one request.
POD_GROUP_RETRY_SECONDS = 60.0
POD_GROUP_APIS = (constants.NATIVE_POD_GROUP_API, constants.COSCHEDULING_POD_GROUP_API)


class SnapshotError(ValueError):
    pass


@contextlib.contextmanager
def _bulk() -> Iterator[None]:
    """Around parsing and indexing tens of thousands of objects: no cyclic garbage collection meanwhile.

    Decoded JSON and the view's records form no cycles, yet every few hundred allocations the collector would
    walk the young ones again, which doubles the time to load a large cluster."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _settle() -> None:
    """After a full load: move what is alive now out of the collector's reach (gc.freeze), so no full
    collection later pauses a scheduling call to walk the hundreds of thousands of objects of the view.
    The objects are still freed by reference counting when the view drops them (at the next relist)."""
    gc.freeze()


# libyaml when PyYAML was built with it: the pure-Python loader takes minutes (and gigabytes) for a snapshot
# of tens of thousands of pods.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _json_document(data: bytes) -> list[Any] | None:
    """The documents of a file that is one JSON value (a `kind: List` written by kubectl -o json), parsed as
    JSON, which is a hundred times faster than YAML; None when it is not JSON (then it is read as YAML)."""
    if data[:4096].lstrip()[:1] not in (b"{", b"["):
        return None
    try:
        return [json.loads(data)]
    except ValueError:
        return None  # YAML flow style, or broken: the YAML reader says which


def read_snapshot(path: str | Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Nodes and Pods from a `kind: List` or multi-document YAML/JSON file."""
    nodes, pods, _, _ = _read_snapshot(path)
    return nodes, pods


def _read_snapshot(path: str | Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]], bool]:
    """Nodes, Pods, PodGroups (of both APIs), and whether the file was JSON."""
    try:
        documents = _json_document(Path(path).read_bytes())
        was_json = documents is not None
        if documents is None:
            documents = list(yaml.load_all(Path(path).read_text(encoding="utf-8"), Loader=_YAML_LOADER))
    except OSError as exc:
        raise SnapshotError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise SnapshotError(f"{path}: not valid YAML or JSON: {exc}") from None
    nodes: list[dict[str, Any]] = []
    pods: list[dict[str, Any]] = []
    groups: list[dict[str, Any]] = []
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
            elif is_pod_group(item):
                groups.append(item)
    return nodes, pods, groups, was_json


_JSON_SPACE = re.compile(r"[ \t\n\r]*")


def _stream_json_list(path: str | Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]] | None:
    """Nodes, slim pods and PodGroups of a file that is one JSON `kind: List`, decoded item by item, so only one full pod
    is alive at a time (decoding 50,000 pods in one piece peaks above 1 GiB). None for any other file, or
    anything unusual in this one (a repeated `items`, a non-object item, trailing data): read_snapshot then
    reads it whole, with its own messages."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, ValueError):
        return None
    decoder, space = json.JSONDecoder(), _JSON_SPACE.match
    nodes: list[dict[str, Any]] = []
    pods: list[dict[str, Any]] = []
    groups: list[dict[str, Any]] = []
    kind: Any = ""
    seen_items = False
    try:
        i = space(text, 0).end()
        if text[i:i + 1] != "{":
            return None
        i = space(text, i + 1).end()
        while True:
            if text[i:i + 1] != '"':
                return None
            key, i = decoder.raw_decode(text, i)
            i = space(text, i).end()
            if text[i:i + 1] != ":":
                return None
            i = space(text, i + 1).end()
            if key == "items":
                if seen_items or text[i:i + 1] != "[":
                    return None
                seen_items = True
                i = space(text, i + 1).end()
                if text[i:i + 1] == "]":
                    i += 1
                while text[i - 1:i] != "]":
                    item, i = decoder.raw_decode(text, i)
                    if not isinstance(item, dict):
                        return None
                    if item.get("kind") == "Node":
                        nodes.append(item)
                    elif item.get("kind") == "Pod":
                        pods.append(slim_pod(item))
                    elif is_pod_group(item):
                        groups.append(item)
                    i = space(text, i).end()
                    if text[i:i + 1] not in (",", "]"):
                        return None
                    i = space(text, i + 1).end() if text[i] == "," else i + 1
            else:
                value, i = decoder.raw_decode(text, i)
                if key == "kind":
                    kind = value
            i = space(text, i).end()
            if text[i:i + 1] == ",":
                i = space(text, i + 1).end()
                continue
            if text[i:i + 1] != "}" or space(text, i + 1).end() != len(text):
                return None
            break
    except ValueError:
        return None
    if not seen_items or not str(kind).endswith("List"):
        return None
    return nodes, pods, groups


def load_snapshot(view: ClusterView, path: str | Path) -> dict[str, dict[str, Any]]:
    """Load the snapshot into the view; returns its pods by key, slimmed to what the extender reads (see
    slim_pod), for the SnapshotBinder that applies bindings and annotations to them.

    PodGroups in it give their gangs' size and topology. A snapshot holding PodGroups of one API holds all of
    that API's: a pod naming one it lacks gets a reason; without any, that API's gangs are planned from the
    members that exist, as before."""
    with _bulk():
        streamed = _stream_json_list(path)
        if streamed is not None:
            nodes, pods, groups = streamed
            del streamed
        else:
            nodes, pods, groups = _read_whole(path)
        for api in {api_of(g) for g in groups}:
            view.pod_groups.replace(api, [g for g in groups if api_of(g) == api])  # type: ignore[arg-type]
        view.replace_all(nodes, pods)
        by_key = {pod_key(p): p for p in pods}
        del nodes, pods
    _settle()
    return by_key


def _read_whole(path: str | Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """_read_snapshot, with the pods slimmed."""
    nodes, pods, groups, was_json = _read_snapshot(path)
    pods = [slim_pod(p) for p in pods]
    if was_json:  # copies that share no object with the parsed file, so all of its memory is freed at once
        try:  # decoded by the standard library: orjson's objects would take ~20% more memory here
            pods = json.loads(encode(pods))
        except TypeError:  # orjson refuses integers beyond 64 bits
            pods = json.loads(json.dumps(pods))
    return nodes, pods, groups


class KubeSource:
    """List, then watch from the list's resourceVersion; relist when the watch expires (410) or breaks.

    Responses are read as raw JSON: the generated models would cost more than the placement itself at
    tens of thousands of pods.
    """

    def __init__(self, api_client: Any, view: ClusterView):
        from kubernetes_asyncio import client

        self.core = client.CoreV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)
        self.view = view
        view.pod_groups.pending.update(POD_GROUP_APIS)  # until each is listed (or found absent)
        self.relists = 0
        self.watch_restarts = 0

    async def _list(self, method, slim=None) -> tuple[list[dict[str, Any]], str]:
        """Every object of a list call, page by page; `slim` is applied to each as its page arrives, so only
        one page of full objects is alive at a time."""
        items: list[dict[str, Any]] = []
        token = None
        while True:
            kwargs = {"limit": LIST_PAGE, "_preload_content": False}
            if token:
                kwargs["_continue"] = token
            response = await method(**kwargs)
            body = await response.read()
            if response.status >= 400:
                raise _HTTPError(response.status, body[:200].decode("utf-8", "replace"))
            with _bulk():
                page = decode(body)
                items += [slim(item) for item in page.get("items") or []] if slim else page.get("items") or []
            del body
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items, page["metadata"]["resourceVersion"]

    async def relist(self) -> tuple[str, str]:
        nodes, node_version = await self._list(self.core.list_node)
        pods, pod_version = await self._list(self.core.list_pod_for_all_namespaces, slim=slim_pod)
        for item in nodes:
            item.setdefault("kind", "Node")
        counts = len(nodes), len(pods)
        with _bulk():
            self.view.replace_all(nodes, pods)
            del nodes, pods  # the slim pods go now, not when the watch ends
        _settle()
        self.relists += 1
        log.info("listed %d nodes and %d pods", *counts)
        return node_version, pod_version

    async def _watch(self, method, version: str, apply, delete) -> None:
        """Follow one watch until it ends; raise _Expired when the version is too old."""
        while True:
            response = await method(
                watch=True, resource_version=version, allow_watch_bookmarks=True,
                timeout_seconds=WATCH_TIMEOUT_SECONDS, _preload_content=False,
            )
            async with response:
                if response.status >= 400:
                    raise _HTTPError(response.status, (await response.read())[:200].decode("utf-8", "replace"))
                async for line in response.content:
                    if not line.strip():
                        continue
                    event = decode(line)
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
        """Keep the view in sync for as long as the server runs: Nodes and Pods, and beside them the PodGroups
        of each API (each on its own, so an API the cluster lacks never holds up the rest)."""
        await asyncio.gather(self._nodes_and_pods(), *(self.follow_pod_groups(api) for api in POD_GROUP_APIS))

    async def follow_pod_groups(self, api: str, retry: float = POD_GROUP_RETRY_SECONDS) -> None:
        """List and watch one API's PodGroups. An API the cluster does not serve (404) or the extender may not
        read (403) is said once, then looked for again every `retry` seconds; meanwhile its gangs are planned
        from the members that exist."""
        group, version = api.split("/")
        method = functools.partial(self.custom.list_cluster_custom_object, group, version, "podgroups")
        told: int | None = None
        while True:
            try:
                items, version_seen = await self._list(method)
            except _HTTPError as exc:
                if exc.status not in (403, 404):
                    log.warning("listing PodGroups of %s failed (%s); retrying in %.0fs", api, exc, retry)
                elif told != exc.status:
                    why = "is not served by this cluster" if exc.status == 404 else "may not be read by the extender (RBAC)"
                    log.info("PodGroups of %s: the API %s; gangs naming one are planned from the members that "
                             "exist; looking again every %.0fs", api, why, retry)
                told = exc.status
                self.view.pod_groups.withdraw(api)
                await asyncio.sleep(retry)
                continue
            except Exception as exc:  # the API server went away: as for the pods, try again soon
                log.warning("listing PodGroups of %s failed (%s); retrying in 1s", api, exc)
                await asyncio.sleep(1.0)
                continue
            if told is not None:
                log.info("PodGroups of %s: the API is served now", api)
                told = None
            self.view.pod_groups.replace(api, items)
            try:
                await self._watch(method, version_seen, lambda o: self.view.pod_groups.apply(_typed(o, api)),
                                  lambda o: self.view.pod_groups.delete(_typed(o, api)))
            except _Expired:
                pass
            except Exception as exc:
                log.warning("watching PodGroups of %s failed (%s); relisting in 1s", api, exc)
                await asyncio.sleep(1.0)

    async def _nodes_and_pods(self) -> None:
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


def _typed(obj: dict[str, Any], api: str) -> dict[str, Any]:
    """A PodGroup from a list or watch of `api`, with the apiVersion and kind a list's items may lack."""
    obj.setdefault("apiVersion", api)
    obj.setdefault("kind", "PodGroup")
    return obj


class _Expired(Exception):
    pass


class _HTTPError(Exception):
    def __init__(self, status: int, body: str):
        self.status = status
        super().__init__(f"HTTP {status}: {body}")
