"""`infergate webhook`: the admission webhook over aiohttp HTTPS."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram

from infergate.http import read_body
from infergate.serving import Scaffold
from infergate.tls import ReloadingTLS
from policies.loader import Policy
from webhook.admission import Decision, decide
from webhook.review import BadReview, dumps, parse_review, response

log = logging.getLogger(__name__)

# Bodies larger than this are refused with 413: two copies of the largest object etcd stores fit well within.
MAX_BODY_BYTES = 8 * 1024 * 1024


@dataclass
class WebhookMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.requests = Counter(
            "infergate_webhook_requests",
            "Admission requests by endpoint, object kind, operation and result",
            ["endpoint", "kind", "operation", "result"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "infergate_webhook_request_seconds",
            "Time to answer an admission request",
            ["endpoint"],
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=self.registry,
        )
        self.bad_requests = Counter(
            "infergate_webhook_bad_requests", "Bodies that were not AdmissionReviews", registry=self.registry
        )
        # reason: the status reason of the denial (NotFound, Forbidden, Invalid, InternalError ...), a short fixed set.
        self.denials = Counter(
            "infergate_webhook_denials", "Denied admission requests by endpoint, object kind and reason",
            ["endpoint", "kind", "reason"], registry=self.registry,
        )
        # The labelled children, looked up once: labels() validates and locks on every call.
        self._counted: dict[tuple[str, str, str, str], Any] = {}
        self._timed: dict[str, Any] = {}

    def count(self, endpoint: str, kind: str, operation: str, result: str, seconds: float) -> None:
        """One answered admission request: its counter and its latency."""
        key = (endpoint, kind, operation, result)
        counter = self._counted.get(key)
        if counter is None:
            counter = self._counted[key] = self.requests.labels(*key)
        counter.inc()
        histogram = self._timed.get(endpoint)
        if histogram is None:
            histogram = self._timed[endpoint] = self.latency.labels(endpoint)
        histogram.observe(seconds)


class WebhookServer:
    """All state of one webhook process: the policy in force, the metrics and the TLS files (the shared
    machinery is infergate.serving's Scaffold)."""

    def __init__(self, policy: Policy, tls: ReloadingTLS | None = None, policy_dir: str | Path | None = None):
        # With a directory, the policy in force follows it (see policies/reload.py); requests read it once each.
        self.scaffold = Scaffold(policy, policy_dir=policy_dir, tls=tls, max_body_bytes=MAX_BODY_BYTES)
        self.metrics = WebhookMetrics(self.scaffold.registry)
        self.scaffold.route("POST", "/mutate", self.mutate)
        self.scaffold.route("POST", "/validate", self.validate)

    @property
    def tls(self) -> ReloadingTLS | None:
        return self.scaffold.tls

    @property
    def policies(self):
        return self.scaffold.policies

    @property
    def policy(self) -> Policy:
        return self.scaffold.policy

    @property
    def body_timeout(self) -> float:
        return self.scaffold.body_timeout

    @body_timeout.setter
    def body_timeout(self, seconds: float) -> None:
        self.scaffold.body_timeout = seconds

    def app(self) -> web.Application:
        return self.scaffold.app()

    async def mutate(self, request: web.Request) -> web.Response:
        return await self._review(request, "mutate", mutate=True)

    async def validate(self, request: web.Request) -> web.Response:
        return await self._review(request, "validate", mutate=False)

    async def _review(self, request: web.Request, endpoint: str, *, mutate: bool) -> web.Response:
        started = time.perf_counter()
        try:
            body = await read_body(request, self.body_timeout)
            review = parse_review(body)
        except BadReview as exc:
            self.metrics.bad_requests.inc()
            return web.json_response({"error": str(exc)}, status=400)
        admission = review.request
        try:
            decision = decide(admission, self.policy, mutate=mutate)
        except Exception:  # a bug of ours: refuse this object, keep serving, and say so in the log
            log.exception("could not decide %s %s", admission.kind.kind, admission.uid)
            decision = Decision(
                admission.kind.kind, allowed=False, code=500, reason="InternalError",
                message="infergate could not process this object; the webhook log has the details",
            )
        if not decision.allowed:
            log.info("denied %s %s: %s", admission.kind.kind, admission.uid, decision.message)
            self.metrics.denials.labels(endpoint, decision.kind, decision.reason or "Denied").inc()
        answer = response(
            admission.uid,
            patch=decision.patch,
            warnings=decision.warnings,
            denied=None if decision.allowed else (decision.code, decision.reason, decision.message),
        )
        self.metrics.count(endpoint, decision.kind, admission.operation, decision.result, time.perf_counter() - started)
        return web.Response(body=dumps(answer), content_type="application/json", charset="utf-8")


def serve(server: WebhookServer, host: str, port: int) -> None:
    server.scaffold.run(host, port)
