"""What every infergate server has around its own endpoints (in the manner of kopf's webhook kit): one metrics
registry, the policy in force and its watcher, /healthz, /readyz and /metrics, background tasks that are
restarted when they fail, and TLS whose files may be replaced on disk.

A server builds one Scaffold, registers its routes, companions and policy hooks, and serves `scaffold.app()`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest

from infergate.http import BODY_TIMEOUT_SECONDS
from infergate.tls import ReloadingTLS
from policies.loader import Policy
from policies.reload import PolicyWatcher

log = logging.getLogger(__name__)

Companion = Callable[[], Awaitable[Any]]


class Scaffold:
    """One server process's shared machinery. Routes and companions are added before `app()` is called."""

    def __init__(self, policy: Policy, *, policy_dir: str | Path | None = None, tls: ReloadingTLS | None = None,
                 max_body_bytes: int, policy_interval: float = 2.0, restart_delay: float = 1.0):
        self.registry = CollectorRegistry()
        self.policy_loads = Counter("infergate_policy_loads", "Policy loads by result", ["result"], registry=self.registry)
        self.restarts = Counter("infergate_background_restarts", "Background tasks restarted after they failed or ended",
                                ["task"], registry=self.registry)
        self.policy_loads.labels("ok").inc()
        # With a directory, the policy in force follows it (see policies/reload.py).
        self.policies = PolicyWatcher(policy_dir or policy.source, policy, self._count_load)
        self.watch_policy = policy_dir is not None
        self.policy_interval = policy_interval
        self.restart_delay = restart_delay
        self.tls = tls
        self.max_body_bytes = max_body_bytes
        self.body_timeout = BODY_TIMEOUT_SECONDS
        # Called with each new policy once it is in force; one that raises is logged, the others still run.
        self.policy_hooks: list[Callable[[Policy], None]] = []
        # None when ready to serve, else why not (answered by /readyz with 503).
        self.not_ready: Callable[[], str | None] = lambda: None
        # Run before /metrics is rendered, to bring gauges up to date.
        self.before_metrics: list[Callable[[], None]] = []
        self.companions: dict[str, Companion] = {}
        self.background: list[asyncio.Task[Any]] = []
        self._routes: list[tuple[str, str, Any]] = []

    def _count_load(self, result: str) -> None:
        self.policy_loads.labels(result).inc()

    @property
    def policy(self) -> Policy:
        return self.policies.policy

    # ------------------------------------------------------------------------------------------------ policy
    def check_policy(self) -> bool:
        """Reload the policy directory if it changed, then tell the hooks; True when a new policy is in force."""
        if not self.policies.check():
            return False
        for hook in self.policy_hooks:
            try:
                hook(self.policies.policy)
            except Exception:  # a hook's bug must not stop the others nor the watcher
                log.exception("applying the reloaded policy failed in %s", getattr(hook, "__qualname__", hook))
        return True

    async def _watch_policy(self) -> None:
        while True:
            await asyncio.sleep(self.policy_interval)
            self.check_policy()

    # ------------------------------------------------------------------------------------------------ tasks
    async def _supervise(self, name: str, companion: Companion) -> None:
        """Run a companion for the server's lifetime: one that fails or returns is logged, counted and restarted,
        so a bug in one pass of a loop never silently ends what it maintains."""
        while True:
            try:
                await companion()
                log.error("background task %s ended; restarting it", name)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background task %s failed; restarting it", name)
            self.restarts.labels(name).inc()
            await asyncio.sleep(self.restart_delay)

    def spawn(self, name: str, coroutine: Awaitable[Any]) -> asyncio.Task[Any]:
        """A one-off task owned by the server (cancelled at shutdown), e.g. an eviction."""
        task = asyncio.ensure_future(coroutine)
        self.background = [t for t in self.background if not t.done()]
        self.background.append(task)
        task.set_name(name)
        return task

    async def _start(self, _app: web.Application) -> None:
        companions = dict(self.companions)
        if self.tls is not None:
            companions.setdefault("tls", self.tls.watch)
        if self.watch_policy:
            companions.setdefault("policy", self._watch_policy)
        for name, companion in companions.items():
            self.spawn(name, self._supervise(name, companion))

    async def _stop(self, _app: web.Application) -> None:
        for task in self.background:
            task.cancel()
        await asyncio.gather(*self.background, return_exceptions=True)
        self.background.clear()

    # ------------------------------------------------------------------------------------------------- HTTP
    def route(self, method: str, path: str, handler: Any) -> None:
        self._routes.append((method, path, handler))

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.max_body_bytes)
        for method, path, handler in self._routes:
            app.router.add_route(method, path, handler)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/metrics", self.metrics_page)
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)
        return app

    async def healthz(self, _request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def readyz(self, _request: web.Request) -> web.Response:
        reason = self.not_ready()
        if reason is not None:
            return web.Response(status=503, text=reason)
        return web.Response(text="ok")

    async def metrics_page(self, _request: web.Request) -> web.Response:
        for refresh in self.before_metrics:
            refresh()
        return web.Response(body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    @property
    def ssl_context(self) -> Any:
        return self.tls.context if self.tls is not None else None

    async def start(self, host: str, port: int) -> web.AppRunner:
        """Serve in the running loop; the caller keeps the runner and calls `cleanup()` on it."""
        runner = web.AppRunner(self.app(), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port, ssl_context=self.ssl_context).start()
        return runner

    async def start_metrics(self, port: int) -> web.AppRunner:
        """GET /metrics alone on every address at `port`, same TLS: for Prometheus to scrape a server whose main
        port listens on loopback only."""
        app = web.Application()
        app.router.add_get("/metrics", self.metrics_page)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, None, port, ssl_context=self.ssl_context).start()
        return runner

    def run(self, host: str, port: int) -> None:
        """Serve until interrupted, in a loop of its own."""
        web.run_app(self.app(), host=host, port=port, ssl_context=self.ssl_context, access_log=None, print=None)
