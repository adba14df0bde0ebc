"""`infergate extender`: the kube-scheduler extender over aiohttp, a thin layer over extender.scheduler.

kube-scheduler calls /filter and /prioritize for every GPU pod (managedResources), then /bind for the node it
chose, and /preempt when it looks for victims. Each endpoint parses the wire format (extender.protocol), asks
the Scheduler, encodes its plain answer and counts the call; the shared machinery (metrics registry, policy
watcher, health, background tasks, TLS) is infergate.serving's Scaffold.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import Counter, Gauge, Histogram
from pydantic import BaseModel, ValidationError

from extender.binder import Binder
from extender.core import Scorer
from extender.gangs import GangBook
from extender.gpumap import FilterReasons, History, figures
from extender.gpumap.http import routes as gpumap_routes
from extender.podspec import pod_key
from extender.protocol import (
    ExtenderArgs,
    ExtenderBindingArgs,
    ExtenderPreemptionArgs,
    encode,
    filter_result,
    host_priorities,
)
from extender.scheduler import Scheduler
from extender.view import ClusterView
from infergate.http import read_body
from infergate.serving import Scaffold
from infergate.tls import ReloadingTLS
from policies.loader import Policy

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024 * 1024  # a Nodes-shaped call carries every candidate Node object
# prioritize-without-gpus: the scheduler profile's second, score-only extender entry, which kube-scheduler calls
# for every pod; pods with GPUs are the first entry's (filter, prioritize, bind, preempt by managedResources), so
# here they score 0 everywhere and only pods without GPUs are ranked. They are bound by kube-scheduler itself.
VERBS = ("filter", "prioritize", "bind", "preempt", "prioritize-without-gpus")


class ExtenderMetrics:
    def __init__(self, scaffold: Scaffold) -> None:
        registry = scaffold.registry
        self.requests = Counter("infergate_extender_requests", "Extender calls by verb and result", ["verb", "result"], registry=registry)
        self.latency = Histogram(
            "infergate_extender_request_seconds", "Time to answer an extender call", ["verb"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5), registry=registry,
        )
        self.gpu_allocated = Gauge("infergate_gpu_allocated_milli", "GPU milli held by pods", registry=registry)
        self.gpu_reserved = Gauge("infergate_gpu_reserved_milli", "GPU milli reserved for gangs not yet bound", registry=registry)
        self.gpu_capacity = Gauge("infergate_gpu_capacity_milli", "GPU milli of all nodes in view", registry=registry)
        self.unreadable = Gauge("infergate_unreadable_objects", "Pods and nodes the extender could not read", registry=registry)
        self.gpu_stranded = Gauge("infergate_gpu_stranded_milli", "Free GPU milli on partly used GPUs (no whole-GPU pod can use it)", registry=registry)
        self.ready = Gauge("infergate_extender_ready", "1 once the view is synced with the API server (what /readyz answers)", registry=registry)
        self.reservations = Gauge("infergate_gang_reservations", "Gang reservations held, not yet fully bound", registry=registry)
        self.reservations_expired = Counter("infergate_gang_reservations_expired", "Gang reservations released because the gang did not complete in time", registry=registry)


class BadRequest(ValueError):
    pass


Answer = tuple[bytes | dict[str, Any], str]  # an answer (maybe encoded already) and its result for metrics


class ExtenderServer:
    """One extender process: the Scheduler behind four endpoints, in the server scaffold."""

    def __init__(self, policy: Policy, view: ClusterView, binder: Binder, scorer: Scorer | None = None,
                 policy_dir: str | Path | None = None, tls: ReloadingTLS | None = None,
                 maintain_interval: float = 2.0, relearn_every: float = 300.0):
        self.scaffold = Scaffold(policy, policy_dir=policy_dir, tls=tls, max_body_bytes=MAX_BODY_BYTES)
        self.metrics = ExtenderMetrics(self.scaffold)
        self.scheduler = Scheduler(policy, view, binder, scorer)
        self.view = view
        self.binder = binder
        self.maintain_interval = maintain_interval
        self.relearn_every = relearn_every
        self.scaffold.policy_hooks.append(self.scheduler.apply_scheduling)
        self.scaffold.not_ready = lambda: None if view.synced else "not synced with the API server yet"
        self.scaffold.before_metrics.append(self.refresh_gauges)
        self.scaffold.companions["maintain"] = self.maintain
        self._verbs: dict[str, Callable[[bytes], Awaitable[Answer]]] = {
            "filter": self._filter, "prioritize": self._prioritize, "bind": self._bind, "preempt": self._preempt,
            "prioritize-without-gpus": self._prioritize_without_gpus,
        }
        for verb in VERBS:
            self.scaffold.route("POST", f"/{verb}", self._endpoint(verb))
        self.gpu_history = History()
        self.filter_reasons = FilterReasons()  # why each pending pod was last refused, for the GPU map
        for route in gpumap_routes(self):
            self.scaffold.route(route.method, route.path, route.handler)

    def app(self) -> web.Application:
        return self.scaffold.app()

    @property
    def policy(self) -> Policy:
        return self.scaffold.policy

    # What the GPU map reads (extender.gpumap.http.MapSource).
    @property
    def gangs(self) -> GangBook:
        return self.scheduler.gangs

    @property
    def policies(self):
        return self.scaffold.policies

    # ------------------------------------------------------------------------------------------------- HTTP
    def _endpoint(self, verb: str):
        async def serve(request: web.Request) -> web.Response:
            started = time.perf_counter()
            body = await read_body(request, self.scaffold.body_timeout)
            answer, result = await self.answer(verb, body)
            if result == "bad-request":
                self.metrics.requests.labels(verb, result).inc()
                return web.Response(body=encode(answer), status=400, content_type="application/json")
            self.metrics.requests.labels(verb, result).inc()
            self.metrics.latency.labels(verb).observe(time.perf_counter() - started)
            return web.Response(body=answer if isinstance(answer, bytes) else encode(answer), content_type="application/json")

        return serve

    async def answer(self, verb: str, body: bytes) -> Answer:
        """The answer to one call, as the endpoint sends it (JSON, or bytes already encoded), and its result."""
        try:
            return await self._verbs[verb](body)
        except BadRequest as exc:
            return {"Error": str(exc)}, "bad-request"
        except Exception:  # a bug of ours: this call fails with a reason, the server keeps serving, never a 5xx
            log.exception("the extender could not answer a %s call", verb)
            return {"Error": f"infergate extender: internal error answering {verb}; its log has the details"}, "internal-error"

    @staticmethod
    def _parse(model: type[BaseModel], body: bytes) -> Any:
        try:
            return model.model_validate_json(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(body)"
            raise BadRequest(f"not a {model.__name__}: {where}: {first['msg']}") from None

    async def _filter(self, body: bytes) -> Answer:
        args: ExtenderArgs = self._parse(ExtenderArgs, body)
        names = args.candidate_names()
        answer = await self.scheduler.filter(args.Pod, names)
        key = pod_key(args.Pod)
        if key != "(unnamed)":
            self.filter_reasons.record(key, len(names), answer.fits, answer.failed or answer.unresolvable)
        return filter_result(args, answer.fits, answer.failed, answer.unresolvable), answer.result

    async def _prioritize(self, body: bytes, gpu_pods: bool = True) -> Answer:
        args: ExtenderArgs = self._parse(ExtenderArgs, body)
        answer = self.scheduler.prioritize(args.Pod, args.candidate_names(), gpu_pods=gpu_pods)
        return host_priorities(answer.names, answer.scores), answer.result

    async def _prioritize_without_gpus(self, body: bytes) -> Answer:
        return await self._prioritize(body, gpu_pods=False)

    async def _bind(self, body: bytes) -> Answer:
        args: ExtenderBindingArgs = self._parse(ExtenderBindingArgs, body)
        answer = await self.scheduler.bind(args.PodNamespace, args.PodName, args.PodUID, args.Node)
        return {"Error": answer.error}, answer.result

    async def _preempt(self, body: bytes) -> Answer:
        args: ExtenderPreemptionArgs = self._parse(ExtenderPreemptionArgs, body)
        candidates = {name: [p.UID for p in v.Pods] for name, v in (args.NodeNameToMetaVictims or {}).items()}
        for name, victims in (args.NodeNameToVictims or {}).items():
            candidates[name] = victims.uids()
        answer = self.scheduler.preempt(args.Pod, candidates)
        for key in answer.also_evict:  # the rest of each victim's gang, on other nodes, goes with it
            self.scaffold.spawn(f"evict {key}", self.scheduler.evict(key))
        metas = {node: {"Pods": [{"UID": uid} for uid in uids], "NumPDBViolations": 0} for node, uids in answer.victims.items()}
        return {"NodeNameToMetaVictims": metas}, answer.result

    # ---------------------------------------------------------------------------------------------- upkeep
    async def maintain(self) -> None:
        """Release what nobody will use, and now and then relearn the workload's pod shapes. A pass that fails
        is logged and the next one runs (the scaffold also restarts the loop should it end)."""
        learned = 0.0
        while True:
            await asyncio.sleep(self.maintain_interval)
            try:
                if time.monotonic() - learned > self.relearn_every and self.view.synced:
                    learned = time.monotonic()
                    await self.scheduler.relearn_workload()
                self.metrics.reservations_expired.inc(len(await self.scheduler.expire()))
                await self.scheduler.describe_missing_members()
                self.refresh_gauges()
            except Exception:
                log.exception("a maintenance pass failed; the next one runs in %.0fs", self.maintain_interval)

    def refresh_gauges(self) -> None:
        """Bring the cluster gauges up to date; run before every scrape (either port), not per call."""
        now = figures(self.view.state, self.scheduler.gangs.reserved_milli())
        self.metrics.gpu_allocated.set(now.allocated)
        self.metrics.gpu_reserved.set(now.reserved)
        self.metrics.gpu_capacity.set(now.capacity)
        self.metrics.gpu_stranded.set(now.stranded)
        self.metrics.unreadable.set(self.view.problems)
        self.metrics.ready.set(1 if self.view.synced else 0)
        self.metrics.reservations.set(len(self.scheduler.gangs.reservations))
        if self.view.synced:
            self.gpu_history.record(time.monotonic(), now)
