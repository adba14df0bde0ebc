"""`infergate extender`: the kube-scheduler extender over aiohttp.

kube-scheduler calls /filter and /prioritize for every GPU pod (managedResources), then /bind for the node it
chose. Every decision reads and writes one ClusterView; the handlers never await between a fit check and the
allocation that follows it, so two binds can never take the same GPU.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import BaseModel, ValidationError

from extender.binder import Binder, BindError
from extender.core import PlacementError, PodRequest, Scorer, choose, filter_nodes, make_scorer, prioritize
from extender.podspec import PodSpecError, pod_request
from extender.protocol import ExtenderArgs, ExtenderBindingArgs, ExtenderPreemptionArgs, filter_result
from extender.view import ClusterView
from infergate import constants
from policies.loader import Policy

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024 * 1024  # a Nodes-shaped call carries every candidate Node object
VERBS = ("filter", "prioritize", "bind", "preempt")


@dataclass
class ExtenderMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.requests = Counter("infergate_extender_requests", "Extender calls by verb and result", ["verb", "result"], registry=self.registry)
        self.latency = Histogram(
            "infergate_extender_request_seconds", "Time to answer an extender call", ["verb"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5), registry=self.registry,
        )
        self.gpu_allocated = Gauge("infergate_gpu_allocated_milli", "GPU milli held by pods", registry=self.registry)
        self.gpu_reserved = Gauge("infergate_gpu_reserved_milli", "GPU milli reserved for gangs not yet bound", registry=self.registry)
        self.gpu_capacity = Gauge("infergate_gpu_capacity_milli", "GPU milli of all nodes in view", registry=self.registry)
        self.unreadable = Gauge("infergate_unreadable_objects", "Pods and nodes the extender could not read", registry=self.registry)


class BadRequest(ValueError):
    pass


class ExtenderServer:
    """All state of one extender process: the view of the cluster, the scorer, the binder and the metrics."""

    def __init__(self, policy: Policy, view: ClusterView, binder: Binder, scorer: Scorer | None = None):
        self.policy = policy
        self.view = view
        self.binder = binder
        self.scorer = scorer or make_scorer(policy.cluster.spec.scheduling.scorer)
        self.metrics = ExtenderMetrics()
        # Coroutines to run beside the server (the watch, expiry of stale bindings), started with the app.
        self.companions: list[Any] = []
        self.background: list[asyncio.Task[Any]] = []

    # ------------------------------------------------------------------------------------------------- app
    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_post("/filter", self._endpoint("filter", self.filter))
        app.router.add_post("/prioritize", self._endpoint("prioritize", self.prioritize))
        app.router.add_post("/bind", self._endpoint("bind", self.bind))
        app.router.add_post("/preempt", self._endpoint("preempt", self.preempt))
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/metrics", self.metrics_page)
        app.on_startup.append(self._start_background)
        app.on_cleanup.append(self._stop_background)
        return app

    async def _start_background(self, _app: web.Application) -> None:
        self.background = [asyncio.create_task(companion) for companion in self.companions]

    async def _stop_background(self, _app: web.Application) -> None:
        for task in self.background:
            task.cancel()
        await asyncio.gather(*self.background, return_exceptions=True)

    def _endpoint(self, verb: str, handler):
        async def serve(request: web.Request) -> web.Response:
            started = time.perf_counter()
            try:
                body = await request.read()
                answer, result = await handler(body)
            except BadRequest as exc:
                self.metrics.requests.labels(verb, "bad-request").inc()
                return web.json_response({"Error": str(exc)}, status=400)
            self.metrics.requests.labels(verb, result).inc()
            self.metrics.latency.labels(verb).observe(time.perf_counter() - started)
            return web.Response(body=json.dumps(answer, separators=(",", ":")), content_type="application/json")

        return serve

    @staticmethod
    def _parse(model: type[BaseModel], body: bytes) -> Any:
        try:
            return model.model_validate_json(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(body)"
            raise BadRequest(f"not a {model.__name__}: {where}: {first['msg']}") from None

    # ----------------------------------------------------------------------------------------------- verbs
    def _request_of(self, pod: dict[str, Any]) -> PodRequest | str:
        try:
            return pod_request(pod)
        except PodSpecError as exc:
            return str(exc)

    async def filter(self, body: bytes) -> tuple[dict[str, Any], str]:
        args: ExtenderArgs = self._parse(ExtenderArgs, body)
        names = args.candidate_names()
        request = self._request_of(args.Pod)
        if isinstance(request, str):
            return filter_result(args, [], {}, dict.fromkeys(names, request)), "unresolvable"
        if not request.wants_gpu:
            return filter_result(args, names, {}), "ok"
        result = filter_nodes(self.view.state, request, names)
        return filter_result(args, result.fits, result.failed), "ok" if result.fits else "no-fit"

    async def prioritize(self, body: bytes) -> tuple[list[dict[str, Any]], str]:
        args: ExtenderArgs = self._parse(ExtenderArgs, body)
        names = args.candidate_names()
        request = self._request_of(args.Pod)
        if isinstance(request, str) or not request.wants_gpu:
            return [{"Host": name, "Score": 0} for name in names], "ok"
        scores = prioritize(self.view.state, request, names, self.scorer)
        return [{"Host": name, "Score": scores[name]} for name in names], "ok"

    async def bind(self, body: bytes) -> tuple[dict[str, Any], str]:
        args: ExtenderBindingArgs = self._parse(ExtenderBindingArgs, body)
        key = f"{args.PodNamespace}/{args.PodName}"
        facts = self.view.facts.get(key)
        if facts is not None and facts.node == args.Node:
            return {"Error": ""}, "already-bound"  # a retry of a bind that succeeded
        request = self.view.requests.get(key)
        if request is None:  # the watch has not shown this pod yet
            pod = await self.binder.get_pod(args.PodNamespace, args.PodName)
            if pod is None:
                return {"Error": f"pod {key} not found"}, "error"
            self.view.apply_pod(pod)
            request = self.view.requests.get(key)
            if request is None:
                return {"Error": f"pod {key} cannot be read"}, "error"
        try:
            alloc = self.view.assume(key, args.PodUID, request, args.Node, self._gpu_choice(request, args.Node, key))
        except PlacementError as exc:
            return {"Error": f"cannot bind pod {key} to node {args.Node}: {exc}"}, "conflict"
        try:
            if request.is_fractional:
                await self.binder.annotate(args.PodNamespace, args.PodName, {constants.GPU_INDEX_ANNOTATION: str(alloc.gpu_indices[0])})
            await self.binder.bind(args.PodNamespace, args.PodName, args.PodUID, args.Node)
        except BindError as exc:
            pod = await self.binder.get_pod(args.PodNamespace, args.PodName)
            if pod is not None and (pod.get("spec") or {}).get("nodeName") == args.Node:
                return {"Error": ""}, "already-bound"
            self.view.forget(key)
            return {"Error": f"binding pod {key} to node {args.Node} failed: {exc}"}, "error"
        self._refresh_gauges()
        return {"Error": ""}, "ok"

    def _gpu_choice(self, request: PodRequest, node: str, key: str) -> tuple[int, ...] | None:
        """The GPU a share goes to: the one it already holds (a retried bind), else the scorer's pick."""
        held = self.view.state.allocation(key)
        if held is not None:
            return held.gpu_indices
        if not request.is_fractional or not self.view.state.has_node(node):
            return None
        rows = np.array([self.view.state.row(node)])
        choice = choose(self.view.state, request, self.scorer, rows=rows)
        return choice.gpu_indices if choice is not None else None

    async def preempt(self, body: bytes) -> tuple[dict[str, Any], str]:
        args: ExtenderPreemptionArgs = self._parse(ExtenderPreemptionArgs, body)
        victims = args.NodeNameToMetaVictims or {}
        return {"NodeNameToMetaVictims": {name: v.model_dump() for name, v in victims.items()}}, "ok"

    # --------------------------------------------------------------------------------------------- health
    def _refresh_gauges(self) -> None:
        used, capacity = self.view.gpu_totals()
        self.metrics.gpu_allocated.set(used)
        self.metrics.gpu_capacity.set(capacity)
        self.metrics.unreadable.set(self.view.problems)

    async def healthz(self, _request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def readyz(self, _request: web.Request) -> web.Response:
        if not self.view.synced:
            return web.Response(status=503, text="not synced with the API server yet")
        return web.Response(text="ok")

    async def metrics_page(self, _request: web.Request) -> web.Response:
        self._refresh_gauges()
        return web.Response(body=generate_latest(self.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})
