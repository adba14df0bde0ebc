"""The extender at scale: 5,000 GPU nodes and 50,000 pods in view, over real HTTP.

    .venv/bin/python bench/extender_scale.py [--nodes 5000] [--pods 50000] [--rounds 30] [--binds 300]
                                             [--json OUT] [--profile]

What it does, all in one run on this machine:

1. Generates the cluster (bench/extender_cluster.py: 8-GPU H100/A100 and 4-GPU L40S nodes in racks and zones;
   bound whole-GPU, fractional and CPU-only pods; pending GPU pods) and writes it as one `kind: List` JSON file.
2. Load, two ways, each in a fresh `infergate extender` process:
   - `--snapshot FILE`: seconds from process start to /readyz, and RSS;
   - list+watch: `--kubeconfig` pointed at a fake API server in this process that serves the same objects as
     paged lists (500 per page, raw JSON like the real one) and then holds the watches open: seconds to
     /readyz, and RSS. This is the production path.
3. Latency, against the `--snapshot` process (bind goes through its SnapshotBinder): filter and prioritize
   with all 5,000 node names (the nodeCacheCapable shape) for pods of several shapes, then bind cycles
   (filter, prioritize the nodes that fit, bind the best) for pending pods. p50/p99 measured by the client
   around each HTTP request on a kept-alive connection, as kube-scheduler calls.
4. The floor, measured interleaved with step 3: an aiohttp server in its own process whose handlers only
   parse the request into ExtenderArgs (the same pydantic model) and echo the names.

Targets: filter and prioritize p99 <= 10 ms each; RSS <= 1 GiB; load in seconds. Exit code 1 when one is missed.
`--profile` also profiles the handlers and the load in this process (cProfile, top functions).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from extender_cluster import Cluster, generate  # noqa: E402

GIB = 1 << 30
TARGET_P99_MS = 10.0
TARGET_RSS = GIB
LIST_PAGE = 500


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_of(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a process, in bytes."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) * 1024
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


# ------------------------------------------------------------------------------------------------ floor
def serve_floor(port: int) -> None:
    """The floor: parse the request into ExtenderArgs and echo the names; nothing else."""
    from aiohttp import web

    from extender.protocol import ExtenderArgs

    try:  # the same encoder as the server uses
        from extender.protocol import encode
    except ImportError:  # an extender from before the encoder was shared
        def encode(answer: Any) -> bytes:
            return json.dumps(answer, separators=(",", ":")).encode()

    async def filter_(request: web.Request) -> web.Response:
        args = ExtenderArgs.model_validate_json(await request.read())
        names = args.candidate_names()
        body = {"NodeNames": names, "Nodes": None, "FailedNodes": {}, "FailedAndUnresolvableNodes": {}, "Error": ""}
        return web.Response(body=encode(body), content_type="application/json")

    async def prioritize(request: web.Request) -> web.Response:
        args = ExtenderArgs.model_validate_json(await request.read())
        body = [{"Host": n, "Score": 0} for n in args.candidate_names()]
        return web.Response(body=encode(body), content_type="application/json")

    async def healthz(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application(client_max_size=64 << 20)
    app.router.add_post("/filter", filter_)
    app.router.add_post("/prioritize", prioritize)
    app.router.add_get("/readyz", healthz)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


# ------------------------------------------------------------------------------------- fake API server
class FakeApiServer:
    """Serves Nodes and Pods as paged lists (pre-encoded), holds watches open, accepts bindings and patches."""

    def __init__(self, cluster: Cluster):
        self.pages: dict[str, list[bytes]] = {}
        for kind, items in (("nodes", cluster.nodes), ("pods", cluster.pods)):
            chunks = [items[i:i + LIST_PAGE] for i in range(0, len(items), LIST_PAGE)] or [[]]
            pages = []
            for n, chunk in enumerate(chunks):
                meta: dict[str, Any] = {"resourceVersion": "900000"}
                if n + 1 < len(chunks):
                    meta["continue"] = f"{kind}-{n + 1}"
                pages.append(json.dumps({"kind": "List", "apiVersion": "v1", "metadata": meta, "items": chunk},
                                        separators=(",", ":")).encode())
            self.pages[kind] = pages
        self.pods = {f"{p['metadata']['namespace']}/{p['metadata']['name']}": p for p in cluster.pods}
        self.lists = 0
        self.runner = None
        self.port = 0

    async def start(self) -> int:
        from aiohttp import web

        app = web.Application(client_max_size=64 << 20)
        app.router.add_get("/api/v1/nodes", lambda r: self._list(r, "nodes"))
        app.router.add_get("/api/v1/pods", lambda r: self._list(r, "pods"))
        app.router.add_get("/api/v1/namespaces/{ns}/pods/{name}", self._get_pod)
        app.router.add_patch("/api/v1/namespaces/{ns}/pods/{name}", self._ok)
        app.router.add_post("/api/v1/namespaces/{ns}/bindings", self._created)
        app.router.add_post("/api/v1/namespaces/{ns}/pods/{name}/binding", self._created)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        self.port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self.port

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def _list(self, request, kind: str):
        from aiohttp import web

        if request.query.get("watch", "").lower() in ("true", "1"):
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            await response.prepare(request)
            await asyncio.sleep(float(request.query.get("timeoutSeconds", "300")))
            return response
        token = request.query.get("continue")
        index = int(token.rsplit("-", 1)[1]) if token else 0
        self.lists += 1
        return web.Response(body=self.pages[kind][index], content_type="application/json")

    async def _get_pod(self, request):
        from aiohttp import web

        pod = self.pods.get(f"{request.match_info['ns']}/{request.match_info['name']}")
        if pod is None:
            return web.json_response({"kind": "Status", "code": 404, "message": "not found"}, status=404)
        return web.json_response(pod)

    async def _ok(self, request):
        from aiohttp import web

        await request.read()
        return web.json_response({"kind": "Pod", "apiVersion": "v1"})

    async def _created(self, request):
        from aiohttp import web

        await request.read()
        return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Success", "code": 201}, status=201)


def write_kubeconfig(path: Path, port: int) -> Path:
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "fake", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "bench", "user": {"token": "bench"}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "bench"}}],
        "current-context": "fake",
    }))
    return path


# ------------------------------------------------------------------------------------------- processes
class Process:
    def __init__(self, argv: list[str], port: int, log: Path):
        self.port = port
        self.log = log
        self.started = time.perf_counter()
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                         cwd=str(ROOT))

    async def wait_ready(self, session, timeout: float = 600) -> float:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"process exited ({self.proc.returncode}); see {self.log}:\n"
                                   + self.log.read_text()[-3000:])
            try:
                async with session.get(f"http://127.0.0.1:{self.port}/readyz") as response:
                    if response.status == 200:
                        return time.perf_counter() - self.started
            except OSError:
                pass
            await asyncio.sleep(0.05)
        raise RuntimeError(f"not ready after {timeout}s; see {self.log}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def extender_argv(source: list[str], port: int) -> list[str]:
    return [sys.executable, "-m", "infergate.cli", "extender", "--policy", str(ROOT / "policies"), *source,
            "--host", "127.0.0.1", "--port", str(port)]


# -------------------------------------------------------------------------------------------- requests
def pick_shapes(cluster: Cluster) -> dict[str, dict[str, Any]]:
    """One pending pod per shape the scheduler would send."""
    shapes: dict[str, dict[str, Any]] = {}
    for pod in cluster.pending:
        resources = pod["spec"]["containers"][0]["resources"]["requests"]
        gpus = int(resources.get("nvidia.com/gpu", 0))
        share = int(resources.get("infergate.io/gpu-milli", 0))
        affinity = pod["spec"].get("affinity")
        product = affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0][
            "matchExpressions"][0]["values"][0].split("-")[1] if affinity else None
        name = f"{gpus}gpu" if gpus else f"{share}m" if share else "cpu"
        if product:
            name += f"-{product}"
        shapes.setdefault(name, pod)
    wanted = ["1gpu", "2gpu", "4gpu", "8gpu", "8gpu-H100", "1gpu-A100", "250m", "500m", "500m-H100"]
    return {name: shapes[name] for name in wanted if name in shapes}


async def timed_post(session, url: str, body: bytes) -> tuple[float, bytes]:
    started = time.perf_counter()
    async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as response:
        data = await response.read()
        if response.status != 200:
            raise RuntimeError(f"{url}: HTTP {response.status}: {data[:300]!r}")
    return (time.perf_counter() - started) * 1000, data


async def measure_latency(session, ext_port: int, floor_port: int, cluster: Cluster, rounds: int,
                          binds: int) -> dict[str, Any]:
    names = cluster.node_names
    shapes = pick_shapes(cluster)
    bodies = {name: json.dumps({"Pod": pod, "NodeNames": names}, separators=(",", ":")).encode()
              for name, pod in shapes.items()}
    ext, floor = f"http://127.0.0.1:{ext_port}", f"http://127.0.0.1:{floor_port}"
    samples: dict[str, list[float]] = {k: [] for k in ("filter", "prioritize", "floor-filter", "floor-prioritize",
                                                       "cycle filter", "cycle prioritize", "bind", "cycle")}
    per_shape: dict[str, dict[str, Any]] = {}
    # warm-up: one call per shape and verb (first calls fill the scorer's caches), reported separately
    cold: dict[str, float] = {}
    for name, body in bodies.items():
        ms, data = await timed_post(session, f"{ext}/filter", body)
        cold[f"filter {name}"] = ms
        result = json.loads(data)
        per_shape[name] = {"fits": len(result["NodeNames"] or []), "failed": len(result["FailedNodes"]),
                           "response_kb": round(len(data) / 1024, 1)}
        ms, _ = await timed_post(session, f"{ext}/prioritize", body)
        cold[f"prioritize {name}"] = ms
        await timed_post(session, f"{floor}/filter", body)
        await timed_post(session, f"{floor}/prioritize", body)
    shape_ms: dict[str, dict[str, list[float]]] = {n: {"filter": [], "prioritize": []} for n in bodies}
    server_before = await server_seconds(session, ext)
    for _ in range(rounds):
        for name, body in bodies.items():
            ms, _ = await timed_post(session, f"{floor}/filter", body)
            samples["floor-filter"].append(ms)
            ms, _ = await timed_post(session, f"{ext}/filter", body)
            samples["filter"].append(ms)
            shape_ms[name]["filter"].append(ms)
            ms, _ = await timed_post(session, f"{floor}/prioritize", body)
            samples["floor-prioritize"].append(ms)
            ms, _ = await timed_post(session, f"{ext}/prioritize", body)
            samples["prioritize"].append(ms)
            shape_ms[name]["prioritize"].append(ms)
    server_after = await server_seconds(session, ext)
    server_mean = {verb: round((server_after[verb][0] - server_before[verb][0])
                               / max(1, server_after[verb][1] - server_before[verb][1]) * 1000, 2)
                   for verb in ("filter", "prioritize")}
    for name, verbs in shape_ms.items():
        per_shape[name].update({f"{v}_p50_ms": round(pct(s, 0.5), 2) for v, s in verbs.items()})
        per_shape[name].update({f"{v}_p99_ms": round(pct(s, 0.99), 2) for v, s in verbs.items()})
    # bind cycles: what kube-scheduler does for each pending pod
    placed = unplaced = 0
    for pod in cluster.pending[:binds]:
        started = time.perf_counter()
        body = json.dumps({"Pod": pod, "NodeNames": names}, separators=(",", ":")).encode()
        ms, data = await timed_post(session, f"{ext}/filter", body)
        samples["cycle filter"].append(ms)
        fits = json.loads(data)["NodeNames"] or []
        if not fits:
            unplaced += 1
            continue
        body = json.dumps({"Pod": pod, "NodeNames": fits}, separators=(",", ":")).encode()
        ms, data = await timed_post(session, f"{ext}/prioritize", body)
        samples["cycle prioritize"].append(ms)
        best = max(json.loads(data), key=lambda s: s["Score"])["Host"]
        meta = pod["metadata"]
        bind = json.dumps({"PodName": meta["name"], "PodNamespace": meta["namespace"], "PodUID": meta["uid"],
                           "Node": best}).encode()
        ms, data = await timed_post(session, f"{ext}/bind", bind)
        if json.loads(data).get("Error"):
            raise RuntimeError(f"bind failed: {data!r}")
        samples["bind"].append(ms)
        samples["cycle"].append((time.perf_counter() - started) * 1000)
        placed += 1
    summary = {verb: {"n": len(v), "p50_ms": round(pct(v, 0.5), 2), "p99_ms": round(pct(v, 0.99), 2),
                      "mean_ms": round(statistics.fmean(v), 2) if v else None}
               for verb, v in samples.items()}
    summary["filter"]["server_mean_ms"] = server_mean["filter"]
    summary["prioritize"]["server_mean_ms"] = server_mean["prioritize"]
    return {"verbs": summary, "shapes": per_shape, "cold_ms": {k: round(v, 1) for k, v in cold.items()},
            "binds": {"placed": placed, "no_fit": unplaced}}


async def server_seconds(session, base: str) -> dict[str, tuple[float, float]]:
    """(seconds, calls) per verb from the extender's own latency histogram: the time inside the server."""
    async with session.get(f"{base}/metrics") as response:
        text = await response.text()
    out = {verb: [0.0, 0.0] for verb in ("filter", "prioritize")}
    for line in text.splitlines():
        for verb in out:
            if line.startswith(f'infergate_extender_request_seconds_sum{{verb="{verb}"}}'):
                out[verb][0] = float(line.split()[-1])
            elif line.startswith(f'infergate_extender_request_seconds_count{{verb="{verb}"}}'):
                out[verb][1] = float(line.split()[-1])
    return {verb: (v[0], v[1]) for verb, v in out.items()}


async def bind_via_api(session, ext_port: int, cluster: Cluster, count: int) -> dict[str, Any]:
    """Binds of the list+watch extender: KubeBinder calls the (fake, instant) API server."""
    names = cluster.node_names
    times: list[float] = []
    for pod in cluster.pending[-count:]:
        body = json.dumps({"Pod": pod, "NodeNames": names}, separators=(",", ":")).encode()
        _, data = await timed_post(session, f"http://127.0.0.1:{ext_port}/filter", body)
        fits = json.loads(data)["NodeNames"] or []
        if not fits:
            continue
        meta = pod["metadata"]
        bind = json.dumps({"PodName": meta["name"], "PodNamespace": meta["namespace"], "PodUID": meta["uid"],
                           "Node": fits[0]}).encode()
        ms, data = await timed_post(session, f"http://127.0.0.1:{ext_port}/bind", bind)
        if json.loads(data).get("Error"):
            raise RuntimeError(f"bind failed: {data!r}")
        times.append(ms)
    return {"n": len(times), "p50_ms": round(pct(times, 0.5), 2), "p99_ms": round(pct(times, 0.99), 2)}


# ------------------------------------------------------------------------------------------- profiling
def profile_in_process(cluster: Cluster, snapshot: Path) -> None:
    from extender.binder import SnapshotBinder
    from extender.server import ExtenderServer
    from extender.sources import load_snapshot
    from extender.view import ClusterView
    from policies import load_policy

    def top(profiler: cProfile.Profile, title: str, n: int = 22) -> None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(n)
        print(f"\n--- profile: {title} (by own time)")
        print("\n".join(out.getvalue().splitlines()[4:]))

    view = ClusterView()
    profiler = cProfile.Profile()
    profiler.enable()
    pods = load_snapshot(view, snapshot)
    profiler.disable()
    top(profiler, "load_snapshot")
    server = ExtenderServer(load_policy(ROOT / "policies"), view, SnapshotBinder(pods))
    names = cluster.node_names
    bodies = [json.dumps({"Pod": pod, "NodeNames": names}).encode() for pod in pick_shapes(cluster).values()]

    async def calls() -> None:
        for _ in range(5):
            for body in bodies:
                await server.answer("filter", body)
                await server.answer("prioritize", body)

    asyncio.run(calls())  # warm
    profiler = cProfile.Profile()
    profiler.enable()
    asyncio.run(calls())
    profiler.disable()
    top(profiler, "filter + prioritize, 5 rounds of every shape")


# ------------------------------------------------------------------------------------------------ main
def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "?")
    mem = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal"))) // (1 << 20)
    return f"{os.cpu_count()} cores ({cpu}), {mem} GiB RAM, Python {sys.version.split()[0]}, load {os.getloadavg()[0]:.1f}"


async def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    import aiohttp

    report: dict[str, Any] = {"machine": machine(), "nodes": args.nodes, "pods": args.pods}
    started = time.perf_counter()
    snapshot = work / f"snapshot-{args.nodes}-{args.pods}-{args.seed}.json"
    if snapshot.exists():  # --keep DIR of an earlier run with the same parameters
        items = json.loads(snapshot.read_bytes())["items"]
        nodes = [i for i in items if i["kind"] == "Node"]
        pods = [i for i in items if i["kind"] == "Pod"]
        cluster = Cluster(nodes, pods, [p for p in pods if not p["spec"].get("nodeName")])
    else:
        cluster = generate(args.nodes, args.pods, seed=args.seed)
        with open(snapshot, "w") as out:
            json.dump({"apiVersion": "v1", "kind": "List", "items": cluster.nodes + cluster.pods}, out,
                      separators=(",", ":"))
    report["generate_s"] = round(time.perf_counter() - started, 1)
    report["snapshot_mb"] = round(snapshot.stat().st_size / 1e6, 1)
    report["pending"] = len(cluster.pending)
    print(f"generated {args.nodes} nodes, {args.pods} pods ({len(cluster.pending)} pending), "
          f"{report['snapshot_mb']} MB JSON in {report['generate_s']}s", flush=True)

    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        # list+watch load against the fake API server
        api = FakeApiServer(cluster)
        api_port = await api.start()
        kubeconfig = write_kubeconfig(work / "fake.kubeconfig", api_port)
        port = free_port()
        proc = Process(extender_argv(["--kubeconfig", str(kubeconfig)], port), port, work / "extender-list.log")
        try:
            ready = await proc.wait_ready(session)
            memory = rss_of(proc.proc.pid)
            pages = api.lists
            await asyncio.sleep(3)  # the watches are open now: nothing may list again
            report["load_list"] = {"ready_s": round(ready, 2), "rss_mib": memory["VmRSS"] >> 20,
                                   "peak_rss_mib": memory["VmHWM"] >> 20, "list_pages": pages,
                                   "relisted_pages_after_ready": api.lists - pages}
            if api.lists != pages:
                raise RuntimeError(f"the extender listed again after it was ready; see {proc.log}")
            print(f"list+watch: ready in {ready:.2f}s, RSS {memory['VmRSS'] >> 20} MiB "
                  f"(peak {memory['VmHWM'] >> 20} MiB)", flush=True)
            if args.load_only:
                return report
            report["bind_via_api"] = await bind_via_api(session, port, cluster, min(100, len(cluster.pending) // 4))
        finally:
            proc.stop()
            await api.stop()

        # snapshot load, then the latency runs against it, interleaved with the floor
        floor_port = free_port()
        floor = Process([sys.executable, __file__, "--serve-floor", str(floor_port)], floor_port, work / "floor.log")
        port = free_port()
        proc = Process(extender_argv(["--snapshot", str(snapshot)], port), port, work / "extender-snapshot.log")
        try:
            ready = await proc.wait_ready(session)
            memory = rss_of(proc.proc.pid)
            report["load_snapshot"] = {"ready_s": round(ready, 2), "rss_mib": memory["VmRSS"] >> 20,
                                       "peak_rss_mib": memory["VmHWM"] >> 20}
            print(f"snapshot: ready in {ready:.2f}s, RSS {memory['VmRSS'] >> 20} MiB "
                  f"(peak {memory['VmHWM'] >> 20} MiB)", flush=True)
            await floor.wait_ready(session)
            connector = aiohttp.TCPConnector(limit=1)
            async with aiohttp.ClientSession(timeout=timeout, connector=connector) as calls:
                report["latency"] = await measure_latency(calls, port, floor_port, cluster, args.rounds, args.binds)
            memory = rss_of(proc.proc.pid)
            report["load_snapshot"]["rss_after_calls_mib"] = memory["VmRSS"] >> 20
        finally:
            proc.stop()
            floor.stop()
    if args.profile:
        report["_profile"] = (cluster, snapshot)
    return report


def print_report(report: dict[str, Any]) -> list[str]:
    lat = report["latency"]
    print(f"\nmachine: {report['machine']}")
    print(f"{report['nodes']} nodes, {report['pods']} pods ({report['pending']} pending), "
          f"snapshot {report['snapshot_mb']} MB")
    ls, sn = report["load_list"], report["load_snapshot"]
    print(f"load list+watch: {ls['ready_s']}s to ready, RSS {ls['rss_mib']} MiB (peak {ls['peak_rss_mib']} MiB)")
    print(f"load --snapshot: {sn['ready_s']}s to ready, RSS {sn['rss_mib']} MiB (peak {sn['peak_rss_mib']} MiB, "
          f"{sn['rss_after_calls_mib']} MiB after the calls)")
    print(f"\n{'verb':<18}{'n':>6}{'p50 ms':>10}{'p99 ms':>10}{'mean ms':>10}{'in server':>11}")
    for verb, s in lat["verbs"].items():
        print(f"{verb:<18}{s['n']:>6}{s['p50_ms']:>10}{s['p99_ms']:>10}{s['mean_ms'] or '-':>10}"
              f"{s.get('server_mean_ms', ''):>11}")
    api = report["bind_via_api"]
    print(f"{'bind (KubeBinder)':<18}{api['n']:>6}{api['p50_ms']:>10}{api['p99_ms']:>10}")
    print(f"\n{'shape':<12}{'fits':>6}{'failed':>8}{'resp KB':>9}{'filter p50':>12}{'p99':>8}{'prio p50':>10}{'p99':>8}")
    for name, s in lat["shapes"].items():
        print(f"{name:<12}{s['fits']:>6}{s['failed']:>8}{s['response_kb']:>9}{s['filter_p50_ms']:>12}"
              f"{s['filter_p99_ms']:>8}{s['prioritize_p50_ms']:>10}{s['prioritize_p99_ms']:>8}")
    print("\nfirst call per shape (cold caches), ms: " + ", ".join(f"{k} {v}" for k, v in lat["cold_ms"].items()))
    missed = []
    for verb in ("filter", "prioritize"):
        if lat["verbs"][verb]["p99_ms"] > TARGET_P99_MS:
            missed.append(f"{verb} p99 {lat['verbs'][verb]['p99_ms']} ms > {TARGET_P99_MS} ms")
    for what, load in (("list+watch", ls), ("snapshot", sn)):
        if load["rss_mib"] << 20 > TARGET_RSS:
            missed.append(f"{what} RSS {load['rss_mib']} MiB > 1 GiB")
    print("\ntargets: " + ("all met" if not missed else "MISSED: " + "; ".join(missed)))
    return missed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--pods", type=int, default=50000)
    parser.add_argument("--rounds", type=int, default=30, help="rounds over every pod shape for filter/prioritize")
    parser.add_argument("--binds", type=int, default=300, help="bind cycles (filter, prioritize, bind)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", metavar="OUT", help="write the figures as JSON")
    parser.add_argument("--profile", action="store_true", help="also profile load and handlers in-process")
    parser.add_argument("--keep", metavar="DIR", help="work in DIR and keep the snapshot and logs")
    parser.add_argument("--load-only", action="store_true", help="stop after the list+watch load")
    parser.add_argument("--serve-floor", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_floor:
        serve_floor(args.serve_floor)
        return 0
    with tempfile.TemporaryDirectory(prefix="extender-scale-") as tmp:
        work = Path(args.keep) if args.keep else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        report = asyncio.run(run(args, work))
        profile = report.pop("_profile", None)
        if profile:
            profile_in_process(*profile)
    if args.load_only:
        print(json.dumps(report, indent=2))
        return 0
    missed = print_report(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
