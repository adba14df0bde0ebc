"""The admission webhook under load over real TLS, against a no-op floor measured in the same run.

    .venv/bin/python bench/webhook_load.py --seconds 10             # throughput and latency
    .venv/bin/python bench/webhook_load.py --seconds 10 --rotate 5  # plus certificate rotation under load

Two server processes are started from this file (`--serve webhook|noop`), each on 127.0.0.1 with TLS from
certs.issue.write_bundle: the real WebhookServer with the shipped policy, and the floor, a no-op aiohttp handler
with the same TLS context that parses the review JSON and answers "allowed". This process is the client: an
aiohttp ClientSession over HTTPS keep-alive posting the AdmissionReviews of bench/webhook_reviews.py (the Pods
and InferenceServices of deploy/samples/ as the API server sends them), each with a fresh request.uid, and
checking every answer (HTTP 200, the uid echoed, allowed).

1. Closed loop: `--concurrency` workers post back to back. The floor and the webhook take turns
   (`--rounds` turns each, `--seconds` in total per server), so a noisy neighbour hits both alike.
2. Open loop: requests sent at a fixed rate, whatever the answers, for `--seconds`/2 per server: at half of
   the webhook's own closed-loop throughput (`--open-at 0.25,0.5` adds other fractions); the floor at the
   same rate as the webhook.
   Both report req/s, p50/p99/max latency (client side: from sending the request to reading the answer), the
   server's CPU time per request, the share of the time the server was ready to run but waited for a CPU
   held by other processes (the machine is shared), the client's CPU use (near 100%: the client is the limit),
   and for the webhook the share of requests its handler answered within 1 ms (its own Prometheus histogram).
3. `--rotate N`: `--seconds` of closed-loop load on the webhook, plus `--churn` workers that open a new TLS
   connection for every request, while tls.crt and tls.key are replaced N times by a new serving certificate
   from the same CA (new files written beside them, then os.replace; `--rotate-style files` swaps tls.crt then,
   `--rotate-gap` later, tls.key; `secret` swaps both at once through a `..data` symlink as a Secret volume
   does). The server checks the files every `--reload-interval` seconds. After each rotation, fresh
   connections are opened until one is served the new certificate (verified against ca.crt). Reports
   rotations, requests, failures, and how long until new connections got the new certificate.

`--compare DIR` also runs the webhook from an older copy of the code as `before`, in the same run:
`git archive COMMIT webhook infergate | tar -x -C DIR`.

Targets (exit code 1 when one is missed, or when any request failed): webhook throughput >= 50% of the
floor's; webhook p99 < 5 ms at half of its own maximum throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
# A server started for --compare imports the project's packages from an older copy first.
if os.environ.get("INFERGATE_BENCH_SRC"):
    sys.path.insert(0, os.environ["INFERGATE_BENCH_SRC"])

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402

from certs.issue import issue_serving_cert, load_ca, write_bundle  # noqa: E402
from infergate.tls import ReloadingTLS  # noqa: E402
from webhook_reviews import UID_PLACEHOLDER, review_bodies  # noqa: E402

HOST = "127.0.0.1"
THROUGHPUT_TARGET = 0.5  # of the floor
P99_TARGET_MS = 5.0  # at half of the webhook's own maximum throughput
HEADERS = {"Content-Type": "application/json"}


# --- the servers (child processes) ------------------------------------------------------------------------


async def _noop_mutate(request: web.Request) -> web.Response:
    review = json.loads(await request.read())
    answer = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
              "response": {"uid": review["request"]["uid"], "allowed": True}}
    return web.json_response(answer)


def cpu_wait() -> float:
    """Seconds this process was ready to run but waited for a CPU (Linux; 0 elsewhere)."""
    try:
        return int(Path("/proc/self/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


_GC: dict[str, Any] = {"collections": [0, 0, 0], "pause": [0.0, 0.0, 0.0], "max": [0.0, 0.0, 0.0], "_t": 0.0}


def _gc_callback(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _GC["_t"] = time.perf_counter()
        return
    pause, gen = time.perf_counter() - _GC["_t"], info["generation"]
    _GC["collections"][gen] += 1
    _GC["pause"][gen] += pause
    _GC["max"][gen] = max(_GC["max"][gen], pause)


async def _stats(request: web.Request) -> web.Response:
    tls: ReloadingTLS = request.app["bench_tls"]
    gc_stats = {k: list(v) for k, v in _GC.items() if not k.startswith("_")}
    _GC["max"] = [0.0, 0.0, 0.0]  # the longest pause since the last ask
    return web.json_response({"cpu": time.process_time(), "waited": cpu_wait(), "reloads": tls.reloads, "gc": gc_stats})


def serve(kind: str, tls_dir: Path, reload_interval: float, profile: str | None = None) -> None:
    """Run one server; print `PORT n` on stdout once it listens."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        tls = ReloadingTLS(tls_dir / "tls.crt", tls_dir / "tls.key", interval=reload_interval)
        watch_here = False
    except TypeError:  # an older ReloadingTLS (--compare) without `interval`: watch the files here
        tls = ReloadingTLS(tls_dir / "tls.crt", tls_dir / "tls.key")
        watch_here = kind == "webhook"
    if kind == "webhook":
        from policies import SHIPPED_POLICY_DIR, load_policy
        from webhook.server import WebhookServer

        app = WebhookServer(load_policy(SHIPPED_POLICY_DIR), tls).app()  # watches the TLS files itself
    else:
        app = web.Application()
        app.router.add_post("/mutate", _noop_mutate)
    app["bench_tls"] = tls
    app.router.add_get("/bench-stats", _stats)
    gc.callbacks.append(_gc_callback)

    async def run() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, HOST, 0, ssl_context=tls.context)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        if watch_here:
            watcher = asyncio.create_task(tls.watch(reload_interval))  # noqa: F841 - runs until the end
        print(f"PORT {port}", flush=True)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await runner.cleanup()

    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.runcall(asyncio.run, run())
        profiler.dump_stats(profile)
    else:
        asyncio.run(run())


class ServerProcess:
    def __init__(self, kind: str, tls_dir: Path, reload_interval: float, log_dir: Path, src: str | None = None,
                 profile: Path | None = None):
        self.kind = kind
        self.log_path = log_dir / f"{kind}{'-' + Path(src).name if src else ''}.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115
        command = [sys.executable, __file__, "--serve", kind, "--tls-dir", str(tls_dir), "--reload-interval", str(reload_interval)]
        if profile:
            command += ["--profile-file", str(profile)]
        env = dict(os.environ)
        env.pop("INFERGATE_BENCH_SRC", None)
        if src:
            env["INFERGATE_BENCH_SRC"] = str(Path(src).resolve())
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=self._log, text=True, cwd=ROOT, env=env)
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"the {kind} server did not start; see {self.log_path}:\n{self.log_path.read_text()}")
        self.url = f"https://{HOST}:{int(line.split()[1])}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def log_lines(self, word: str) -> list[str]:
        return [line.rstrip() for line in self.log_path.read_text().splitlines() if word in line]


# --- the client -------------------------------------------------------------------------------------------


@dataclass
class Run:
    """The requests of one measurement."""

    latencies: list[float] = field(default_factory=list)  # seconds, of the requests that succeeded
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0  # wall time of the measurement
    server_cpu: float = 0.0  # seconds of the server process's CPU time
    client_cpu: float = 0.0  # seconds of this process's CPU time
    client_waited: float = 0.0  # seconds this process was ready to run but waited for a CPU
    server_waited: float = 0.0  # seconds the server was ready to run but waited for a CPU (other processes)
    handler_buckets: dict[float, float] = field(default_factory=dict)  # the webhook's own latency histogram
    gc_collections: int = 0  # the server's full (generation 2) garbage collections
    gc_max_pause: float = 0.0  # seconds, the longest garbage collection pause of the server (any generation)

    def add(self, other: Run) -> None:
        self.latencies += other.latencies
        self.failures += other.failures
        self.seconds += other.seconds
        self.server_cpu += other.server_cpu
        self.client_cpu += other.client_cpu
        self.gc_collections += other.gc_collections
        self.server_waited += other.server_waited
        self.client_waited += other.client_waited
        self.gc_max_pause = max(self.gc_max_pause, other.gc_max_pause)
        for bound, count in other.handler_buckets.items():
            self.handler_buckets[bound] = self.handler_buckets.get(bound, 0.0) + count

    @property
    def requests(self) -> int:
        return len(self.latencies) + len(self.failures)

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        """The q-th percentile latency in milliseconds."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] * 1e3

    def handler_within(self) -> dict[str, float]:
        """Share of requests (%) whose handler (parse, decide, answer; no HTTP or TLS) took at most 1, 2, 5 ms,
        from the webhook's own Prometheus histogram."""
        total = self.handler_buckets.get(float("inf"), 0.0)
        if not total:
            return {}
        return {f"{bound * 1e3:g}": round(self.handler_buckets.get(bound, 0.0) / total * 100, 2) for bound in (0.001, 0.002, 0.005)}

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.requests, "failures": len(self.failures), "seconds": round(self.seconds, 2),
            "rps": round(self.rps, 1), "p50_ms": round(self.pct(50), 3), "p99_ms": round(self.pct(99), 3),
            "max_ms": round(max(self.latencies) * 1e3, 3) if self.latencies else None,
            "server_cpu_us_per_request": round(self.server_cpu / max(1, self.requests) * 1e6, 1),
            "client_cpu_pct": round(self.client_cpu / self.seconds * 100, 1) if self.seconds else None,
            "client_cpu_wait_pct": round(self.client_waited / self.seconds * 100, 1) if self.seconds else None,
            "server_cpu_wait_pct": round(self.server_waited / self.seconds * 100, 1) if self.seconds else None,
            "handler_within_ms": self.handler_within(),
            "server_full_gcs": self.gc_collections, "server_gc_max_pause_ms": round(self.gc_max_pause * 1e3, 2),
        }


class Client:
    def __init__(self, ca_file: Path, bodies: list[bytes]):
        self.ssl = ssl.create_default_context(cafile=str(ca_file))
        self.bodies = bodies
        self._next = 0

    def session(self, limit: int, *, fresh_connections: bool = False) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(ssl=self.ssl, limit=limit, force_close=fresh_connections)
        return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30))

    async def post(self, session: aiohttp.ClientSession, url: str, run: Run) -> None:
        body = self.bodies[self._next % len(self.bodies)]
        self._next += 1
        uid = str(uuid.uuid4())
        data = body.replace(UID_PLACEHOLDER.encode(), uid.encode(), 1)
        started = time.perf_counter()
        try:
            async with session.post(url + "/mutate", data=data, headers=HEADERS) as resp:
                raw = await resp.read()
                if resp.status != 200:
                    run.failures.append(f"HTTP {resp.status}: {raw[:200]!r}")
                    return
            answer = json.loads(raw)["response"]
            if answer.get("uid") != uid or answer.get("allowed") is not True:
                run.failures.append(f"wrong answer: {raw[:200]!r}")
                return
        except Exception as exc:  # noqa: BLE001 - every failure is counted and reported
            run.failures.append(f"{type(exc).__name__}: {exc}")
            return
        run.latencies.append(time.perf_counter() - started)

    async def warm_up(self, session: aiohttp.ClientSession, url: str, connections: int, seconds: float = 0.5) -> None:
        """Open the connections and get both processes past their first requests."""
        scratch = Run()
        stop = time.perf_counter() + seconds
        async def loop() -> None:
            while time.perf_counter() < stop:
                await self.post(session, url, scratch)
        await asyncio.gather(*(loop() for _ in range(connections)))
        if scratch.failures:
            raise RuntimeError(f"{url}: warm-up requests failed: {scratch.failures[:3]}")

    async def closed_loop(self, session: aiohttp.ClientSession, url: str, workers: int, seconds: float) -> Run:
        run = Run()
        async with Meter(session, url, run):
            stop = time.perf_counter() + seconds
            async def worker() -> None:
                while time.perf_counter() < stop:
                    await self.post(session, url, run)
            await asyncio.gather(*(worker() for _ in range(workers)))
        return run

    async def open_loop(self, session: aiohttp.ClientSession, url: str, rate: float, seconds: float) -> Run:
        """Send at a fixed rate whatever the answers; latency counts from the moment a request is sent."""
        run = Run()
        async with Meter(session, url, run):
            pending: set[asyncio.Task[None]] = set()
            start = time.perf_counter()
            for i in range(int(rate * seconds)):
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                task = asyncio.create_task(self.post(session, url, run))
                pending.add(task)
                task.add_done_callback(pending.discard)
            if pending:
                await asyncio.wait(pending)
        return run


class Meter:
    """Wall time, server CPU time (asked from the server) and client CPU time around a measurement."""

    def __init__(self, session: aiohttp.ClientSession, url: str, run: Run):
        self.session, self.url, self.run = session, url, run

    async def _server_stats(self) -> dict[str, Any]:
        async with self.session.get(self.url + "/bench-stats") as resp:
            return await resp.json()

    async def _handler_buckets(self) -> dict[float, float]:
        """The webhook's own histogram of its handler time (/mutate), cumulative counts by upper bound."""
        async with self.session.get(self.url + "/metrics") as resp:
            if resp.status != 200:
                return {}
            text = await resp.text()
        buckets = {}
        for line in text.splitlines():
            if line.startswith('infergate_webhook_request_seconds_bucket{endpoint="mutate"'):
                bound = line.split('le="', 1)[1].split('"', 1)[0]
                buckets[float(bound)] = float(line.rsplit(" ", 1)[1])
        return buckets

    async def __aenter__(self) -> Meter:
        self.stats0 = await self._server_stats()
        self.buckets0 = await self._handler_buckets()
        self.client0 = time.process_time()
        self.wait0 = cpu_wait()
        self.t0 = time.perf_counter()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.run.seconds = time.perf_counter() - self.t0
        self.run.client_cpu = time.process_time() - self.client0
        self.run.client_waited = cpu_wait() - self.wait0
        stats = await self._server_stats()
        self.run.server_cpu = stats["cpu"] - self.stats0["cpu"]
        self.run.server_waited = stats["waited"] - self.stats0["waited"]
        self.run.gc_collections = stats["gc"]["collections"][2] - self.stats0["gc"]["collections"][2]
        self.run.gc_max_pause = max(stats["gc"]["max"])
        buckets = await self._handler_buckets()
        self.run.handler_buckets = {b: n - self.buckets0.get(b, 0.0) for b, n in buckets.items()}


# --- certificate rotation ---------------------------------------------------------------------------------


def secret_layout(tls_dir: Path) -> Path:
    """Turn tls.crt/tls.key into symlinks through `..data`, as the kubelet lays out a Secret volume."""
    version = tls_dir / "..v0"
    version.mkdir()
    for name in ("tls.crt", "tls.key"):
        (tls_dir / name).replace(version / name)
        (tls_dir / name).symlink_to(Path("..data") / name)
    (tls_dir / "..data").symlink_to(version.name)
    return tls_dir


@dataclass
class Rotation:
    swapped_at: float
    new_cert_seen_after: float | None  # seconds from the last swap until a new connection got the new cert


class Rotator:
    def __init__(self, tls_dir: Path, ca_file: Path, url: str, style: str, gap: float, reload_interval: float):
        self.tls_dir, self.style, self.gap = tls_dir, style, gap
        self.ca = load_ca(tls_dir / "ca.crt", tls_dir / "ca.key")
        self.ssl = ssl.create_default_context(cafile=str(ca_file))
        self.port = int(url.rsplit(":", 1)[1])
        self.timeout = max(5.0, 10 * reload_interval)
        self.rotations: list[Rotation] = []
        self.problems: list[str] = []

    async def rotate_once(self, serial: int) -> None:
        from cryptography.hazmat.primitives.serialization import Encoding

        from certs.issue import cert_pem, key_pem

        leaf = issue_serving_cert(self.ca, ["localhost"], [HOST])
        crt, key = cert_pem(leaf.cert), key_pem(leaf.key)
        if self.style == "secret":
            version = self.tls_dir / f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{time.time_ns()}"
            version.mkdir()
            previous = (self.tls_dir / "..data").resolve()
            (version / "tls.crt").write_bytes(crt)
            (version / "tls.key").write_bytes(key)
            os.chmod(version / "tls.key", 0o600)
            link = self.tls_dir / "..data_tmp"
            link.symlink_to(version.name)
            os.replace(link, self.tls_dir / "..data")  # both files change at once
            shutil.rmtree(previous)  # as the kubelet does
        else:
            for name, data in (("tls.crt", crt), ("tls.key", key)):
                tmp = self.tls_dir / f".{name}.new"
                tmp.write_bytes(data)
                os.chmod(tmp, 0o600 if name == "tls.key" else 0o644)
            os.replace(self.tls_dir / ".tls.crt.new", self.tls_dir / "tls.crt")
            await asyncio.sleep(self.gap)
            os.replace(self.tls_dir / ".tls.key.new", self.tls_dir / "tls.key")
        swapped = time.perf_counter()
        wanted = leaf.cert.public_bytes(Encoding.DER)
        while time.perf_counter() - swapped < self.timeout:
            try:
                _, writer = await asyncio.open_connection(HOST, self.port, ssl=self.ssl, server_hostname=HOST)
                served = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
                writer.close()
            except (OSError, ssl.SSLError) as exc:
                self.problems.append(f"rotation {serial}: a new connection failed: {type(exc).__name__}: {exc}")
                served = None
            if served == wanted:
                self.rotations.append(Rotation(swapped, time.perf_counter() - swapped))
                return
            await asyncio.sleep(0.01)
        self.rotations.append(Rotation(swapped, None))
        self.problems.append(f"rotation {serial}: new connections did not get the new certificate within {self.timeout:.0f} s")

    async def run(self, count: int, seconds: float) -> None:
        spacing = seconds / (count + 1)
        for serial in range(1, count + 1):
            await asyncio.sleep(spacing)
            await self.rotate_once(serial)


# --- the benchmark ----------------------------------------------------------------------------------------


HEADER = (f"  {'server':<8} {'req/s':>6} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'CPU us/req':>10} "
          f"{'CPU wait':>8} {'client CPU (wait)':>17} {'handler<=1ms':>12} {'requests':>8} {'failed':>6}")


def fmt(name: str, run: Run) -> str:
    """One row under HEADER. CPU us/req and CPU wait are the server process's: its CPU time per request, and
    the share of the time it was ready to run but waited for a CPU taken by other processes."""
    s = run.summary()
    within = s["handler_within_ms"].get("1")
    return (f"  {name:<8} {s['rps']:6.0f} {s['p50_ms']:7.2f} {s['p99_ms']:7.2f} {s['max_ms'] or 0:7.2f} "
            f"{s['server_cpu_us_per_request']:10.0f} {s['server_cpu_wait_pct']:7.0f}% "
            f"{s['client_cpu_pct']:9.0f}% ({s['client_cpu_wait_pct']:3.0f}%) "
            f"{f'{within:.2f}%' if within is not None else '-':>12} {s['requests']:8d} {s['failures']:6d}")


async def measure(args: argparse.Namespace, tls_dir: Path, servers: dict[str, ServerProcess], bodies: list[bytes]) -> dict[str, Any]:
    client = Client(tls_dir / "ca.crt", bodies)
    results: dict[str, Any] = {}
    failures: list[str] = []
    sessions = {kind: client.session(args.concurrency) for kind in servers}
    try:
        for kind, server in servers.items():
            await client.warm_up(sessions[kind], server.url, args.concurrency)
        closed = {kind: Run() for kind in servers}
        for _ in range(args.rounds):
            for kind, server in servers.items():
                closed[kind].add(await client.closed_loop(sessions[kind], server.url, args.concurrency, args.seconds / args.rounds))
    finally:
        for session in sessions.values():
            await session.close()
    print(f"closed loop, {args.concurrency} concurrent keep-alive connections, {args.seconds:g} s per server in {args.rounds} turns:")
    print(HEADER)
    for kind in servers:
        print(fmt(kind, closed[kind]))
        failures += closed[kind].failures
    ratios = {kind: closed[kind].rps / closed["noop"].rps for kind in servers if kind != "noop"}
    cpu = {kind: closed[kind].summary()["server_cpu_us_per_request"] for kind in servers}
    for kind, ratio in ratios.items():
        print(f"  {kind} throughput = {ratio * 100:.0f}% of the floor (target >= {THROUGHPUT_TARGET * 100:.0f}%); "
              f"server CPU per request = {cpu[kind] / max(1e-9, cpu['noop']):.1f}x the floor's")
    ratio = ratios["webhook"]

    # Open loop: each webhook at a fraction of its own maximum (the target: half); the floor at the webhook's rate.
    opened: dict[float, dict[str, Run]] = {}
    for fraction in args.open_at:
        rates = {kind: closed["webhook" if kind == "noop" else kind].rps * fraction for kind in servers}
        opened[fraction] = {kind: Run() for kind in servers}
        turn_p99: dict[str, list[float]] = {kind: [] for kind in servers}
        sessions = {kind: client.session(32) for kind in servers}
        try:
            for kind, server in servers.items():
                await client.warm_up(sessions[kind], server.url, 8, 0.3)
            for _ in range(args.open_turns):
                for kind, server in servers.items():
                    run = await client.open_loop(sessions[kind], server.url, rates[kind], args.seconds / 2 / args.open_turns)
                    opened[fraction][kind].add(run)
                    turn_p99[kind].append(run.pct(99))
        finally:
            for session in sessions.values():
                await session.close()
        for kind in servers:
            failures += opened[fraction][kind].failures
        before_rate = f"; before: {rates['before']:.0f} req/s" if "before" in rates else ""
        print(f"open loop at {fraction:g} of the webhook's closed-loop throughput ({rates['webhook']:.0f} req/s{before_rate}), "
              f"{args.seconds / 2:g} s per server in {args.open_turns} turns:")
        print(HEADER)
        for kind in servers:
            print(fmt(kind, opened[fraction][kind]))
        for kind in servers:
            print(f"    p99 per turn, {kind}: {' '.join(f'{p:.1f}' for p in turn_p99[kind])} ms")
        results.setdefault("open", {})[f"{fraction:g}"] = {
            kind: {"rate": round(rates[kind], 1), **run.summary(), "p99_per_turn_ms": [round(p, 2) for p in turn_p99[kind]]}
            for kind, run in opened[fraction].items()
        }
    half = opened.get(0.5)
    p99 = half["webhook"].pct(99) if half else float("nan")
    if half:
        print(f"  webhook p99 at half its maximum throughput = {p99:.2f} ms (target < {P99_TARGET_MS:g} ms)")

    results.update(
        closed={kind: run.summary() for kind, run in closed.items()},
        throughput_ratio={kind: round(r, 3) for kind, r in ratios.items()},
        p99_at_half_ms={kind: round(half[kind].pct(99), 3) for kind in servers if kind != "noop"} if half else None,
    )
    results["ok"] = ratio >= THROUGHPUT_TARGET and (not half or p99 < P99_TARGET_MS) and not failures
    for failure in sorted(set(failures))[:10]:
        print(f"  failure: {failure}")
    return results


async def measure_rotation(args: argparse.Namespace, tls_dir: Path, server: ServerProcess, bodies: list[bytes]) -> dict[str, Any]:
    client = Client(tls_dir / "ca.crt", bodies)
    rotator = Rotator(tls_dir, tls_dir / "ca.crt", server.url, args.rotate_style, args.rotate_gap, args.reload_interval)
    reloads0 = await _reloads(client, server.url)
    kept, fresh = Run(), Run()
    async with client.session(args.concurrency) as keep_alive, client.session(args.churn, fresh_connections=True) as churn:
        await client.warm_up(keep_alive, server.url, args.concurrency)
        stop = time.perf_counter() + args.seconds

        async def worker(session: aiohttp.ClientSession, run: Run) -> None:
            while time.perf_counter() < stop:
                await client.post(session, server.url, run)

        started = time.perf_counter()
        await asyncio.gather(
            rotator.run(args.rotate, args.seconds),
            *(worker(keep_alive, kept) for _ in range(args.concurrency)),
            *(worker(churn, fresh) for _ in range(args.churn)),
        )
        kept.seconds = fresh.seconds = time.perf_counter() - started
    reloads = await _reloads(client, server.url) - reloads0
    seen = [r.new_cert_seen_after for r in rotator.rotations if r.new_cert_seen_after is not None]
    print(f"certificate rotation under load: {args.rotate} rotations ({args.rotate_style}"
          f"{f', tls.key {args.rotate_gap:g} s after tls.crt' if args.rotate_style == 'files' else ''}), "
          f"server checks the files every {args.reload_interval:g} s, {args.seconds:g} s:")
    for name, run in (("keep-alive connections", kept), ("a new connection per request", fresh)):
        s = run.summary()
        print(f"  {name:<29} {s['rps']:6.0f} req/s   p50 {s['p50_ms']:6.2f} ms   p99 {s['p99_ms']:6.2f} ms   "
              f"({s['requests']} requests, {s['failures']} failed)")
    print(f"  server reloads: {reloads}; new connections got each new certificate after "
          f"{', '.join(f'{s * 1e3:.0f}' for s in seen)} ms (verified against ca.crt)")
    half_swapped = server.log_lines("not reloaded")
    if half_swapped:
        print(f"  {len(half_swapped)} checks found the files half swapped and kept the old certificate, e.g.:\n"
              f"    {half_swapped[0]}")
    failures = kept.failures + fresh.failures
    for failure in sorted(set(failures))[:10]:
        print(f"  failure: {failure} (x{failures.count(failure)})")
    kinds = [p.split(": ", 1)[1] for p in rotator.problems]
    for problem in sorted(set(kinds)):
        print(f"  rotation problem: {problem} (x{kinds.count(problem)})")
    ok = not failures and not rotator.problems and len(seen) == args.rotate
    print(f"  {'OK' if ok else 'FAILED'}: {len(rotator.rotations)} rotations, {kept.requests + fresh.requests} requests, "
          f"{len(failures)} failed, {len(rotator.problems)} rotation problems")
    return {
        "rotations": len(rotator.rotations), "reloads": reloads,
        "keep_alive": kept.summary(), "new_connections": fresh.summary(),
        "failures": len(failures), "rotation_problems": rotator.problems,
        "new_cert_seen_after_ms": [round(s * 1e3, 1) for s in seen], "ok": ok,
    }


async def _reloads(client: Client, url: str) -> int:
    async with client.session(1) as session, session.get(url + "/bench-stats") as resp:
        return (await resp.json())["reloads"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="closed-loop time per server (default 10)")
    parser.add_argument("--concurrency", type=int, default=4, help="closed-loop workers = keep-alive connections (default 4)")
    parser.add_argument("--rounds", type=int, default=2, help="turns the floor and the webhook take (default 2)")
    parser.add_argument("--open-at", type=lambda text: [float(f) for f in text.split(",")], default=[0.5],
                        metavar="F[,F]", help="open-loop rates as fractions of the webhook's maximum (default 0.5)")
    parser.add_argument("--open-turns", type=int, default=5, help="turns the servers take in the open loop (default 5)")
    parser.add_argument("--plain", action="store_true", help="post the sample manifests as written, without API-server defaults")
    parser.add_argument("--rotate", type=int, default=0, metavar="N", help="also rotate the certificate N times under load")
    parser.add_argument("--rotate-only", action="store_true", help="only the rotation measurement (5 rotations unless --rotate)")
    parser.add_argument("--rotate-style", choices=("files", "secret"), default="files")
    parser.add_argument("--rotate-gap", type=float, default=0.05, help="seconds between swapping tls.crt and tls.key (files)")
    parser.add_argument("--churn", type=int, default=2, help="rotation: workers opening a new connection per request")
    parser.add_argument("--reload-interval", type=float, default=0.05, help="seconds between the server's checks of the TLS files")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("--compare", metavar="DIR", help="also measure the packages in DIR (an older copy of webhook/ and "
                        "infergate/, e.g. from `git archive`) as `before`, in the same run")
    parser.add_argument("--serve", choices=("webhook", "noop"), help=argparse.SUPPRESS)
    parser.add_argument("--profile-file", help=argparse.SUPPRESS)
    parser.add_argument("--profile-servers", metavar="DIR", help="run the servers under cProfile; write DIR/KIND.prof")
    parser.add_argument("--tls-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.rotate_only and not args.rotate:
        args.rotate = 5
    if args.serve:
        serve(args.serve, args.tls_dir, args.reload_interval, args.profile_file)
        return 0

    bodies = [body for _, body in review_bodies(plain=args.plain)]
    print(f"infergate webhook load: {os.cpu_count()} CPUs (shared), Python {sys.version.split()[0]}, "
          f"aiohttp {aiohttp.__version__}, {ssl.OPENSSL_VERSION}; {len(bodies)} sample reviews, "
          f"mean body {sum(map(len, bodies)) / len(bodies):.0f} B{' (plain)' if args.plain else ''}")
    results: dict[str, Any] = {"cpus": os.cpu_count(), "plain": args.plain}
    ok = True
    with tempfile.TemporaryDirectory(prefix="infergate-bench-") as tmp:
        tls_dir = Path(tmp) / "tls"
        write_bundle(tls_dir, dns=["localhost"], ips=[HOST])
        if args.rotate_style == "secret":
            secret_layout(tls_dir)
        if not args.rotate_only:
            prof = Path(args.profile_servers).resolve() if args.profile_servers else None
            if prof:
                prof.mkdir(parents=True, exist_ok=True)
            servers = {
                kind: ServerProcess(kind, tls_dir, args.reload_interval, Path(tmp), profile=prof / f"{kind}.prof" if prof else None)
                for kind in ("noop", "webhook")
            }
            if args.compare:
                servers["before"] = ServerProcess("webhook", tls_dir, args.reload_interval, Path(tmp), args.compare,
                                                  profile=prof / "before.prof" if prof else None)
            try:
                results["load"] = asyncio.run(measure(args, tls_dir, servers, bodies))
            finally:
                for server in servers.values():
                    server.stop()
            ok = ok and results["load"]["ok"]
        if args.rotate or args.rotate_only:
            for label, src in ((("before", args.compare),) if args.compare else ()) + (("webhook", None),):
                print(f"[{label}{': ' + src if src else ''}]")
                server = ServerProcess("webhook", tls_dir, args.reload_interval, Path(tmp), src)
                try:
                    results[f"rotation_{label}" if src else "rotation"] = asyncio.run(measure_rotation(args, tls_dir, server, bodies))
                finally:
                    server.stop()
            ok = ok and results["rotation"]["ok"]
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    print("all targets met" if ok else "TARGET MISSED or requests failed (see above)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
