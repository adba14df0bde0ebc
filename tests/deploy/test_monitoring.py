"""deploy/monitoring/: every PromQL expression of the Grafana dashboard and the PrometheusRule parses, and every
metric it names, with every label it selects or groups by, is one the servers really expose on /metrics.

Both servers run in-process (the webhook with the shipped policy, the extender on a few nodes and pods), are
sent the calls that make their labelled series appear, and their /metrics pages are parsed as Prometheus
parses them.
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from certs.issue import write_bundle
from devcluster.cluster import Component, free_port
from extender.binder import SnapshotBinder
from extender.server import ExtenderServer
from extender.view import ClusterView
from tests.deploy.conftest import DEPLOY, flag, pod_containers
from tests.kube_objects import node, pod
from tests.webhook.test_server import review
from webhook.server import WebhookServer

MONITORING = DEPLOY / "monitoring"
# Labels Prometheus adds at scrape time (target labels of a Kubernetes pod scrape).
TARGET_LABELS = {"job", "instance", "namespace", "pod", "container", "service", "endpoint"}
# Grafana's variables, as Prometheus would get them.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "6h"}

Exposed = dict[str, set[str]]  # sample name -> label names seen


def queries() -> Iterator[tuple[str, str]]:
    """(where, expr) of every query in deploy/monitoring."""
    rule = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    for group in rule["spec"]["groups"]:
        for r in group["rules"]:
            yield f"prometheusrule {group['name']}/{r.get('alert') or r.get('record')}", r["expr"]
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())

    def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", []))

    for panel in panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            yield f"dashboard panel {panel['title']!r} {target['refId']}", target["expr"]


def _grafana(expr: str) -> str:
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, f"unknown Grafana variable in {expr}"
    return expr


def selectors(node: Any) -> Iterator[tuple[str, set[str]]]:
    """(metric name, label names matched) of every selector in a parsed expression."""
    if isinstance(node, promql_parser.VectorSelector):
        labels = {m.name for m in node.matchers.matchers} - {"__name__"}
        named = [m.value for m in node.matchers.matchers if m.name == "__name__"]
        yield (node.name or named[0]), labels
    elif isinstance(node, promql_parser.MatrixSelector):
        yield from selectors(node.vector_selector)
    elif isinstance(node, promql_parser.Call):
        for arg in node.args:
            yield from selectors(arg)
    elif isinstance(node, promql_parser.BinaryExpr):
        yield from selectors(node.lhs)
        yield from selectors(node.rhs)
    elif isinstance(node, (promql_parser.ParenExpr, promql_parser.UnaryExpr, promql_parser.SubqueryExpr)):
        yield from selectors(node.expr)
    elif isinstance(node, promql_parser.AggregateExpr):
        yield from selectors(node.expr)


def groupings(node: Any) -> Iterator[tuple[set[str], list[str]]]:
    """(labels of a `by (...)`, metrics under it) for every aggregation."""
    children: list[Any] = []
    if isinstance(node, promql_parser.AggregateExpr):
        if node.modifier is not None and str(node.modifier).startswith("by"):
            yield set(node.modifier.labels), [name for name, _ in selectors(node.expr)]
        children = [node.expr]
    elif isinstance(node, promql_parser.Call):
        children = list(node.args)
    elif isinstance(node, promql_parser.BinaryExpr):
        children = [node.lhs, node.rhs]
    elif isinstance(node, (promql_parser.ParenExpr, promql_parser.UnaryExpr, promql_parser.SubqueryExpr)):
        children = [node.expr]
    for child in children:
        yield from groupings(child)


def exposed(text: str) -> Exposed:
    seen: Exposed = {}
    suffixes = {"counter": ["_total", "_created"], "histogram": ["_bucket", "_sum", "_count", "_created"],
                "gauge": [""], "summary": ["", "_sum", "_count", "_created"]}
    for family in text_string_to_metric_families(text):
        for suffix in suffixes.get(family.type, [""]):
            seen.setdefault(family.name + suffix, set())
        for sample in family.samples:
            seen.setdefault(sample.name, set()).update(sample.labels)
    return seen


async def webhook_metrics(policy) -> str:
    server = WebhookServer(policy)
    async with TestClient(TestServer(server.app())) as client:
        good = yaml.safe_load((Path(__file__).parents[2] / "deploy/samples/llama-8b-pod.yaml").read_text())
        unknown = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x", "annotations": {"infergate.io/model": "nope"}},
                   "spec": {"containers": []}}
        for body in (review(good), review(unknown)):
            assert (await client.post("/mutate", json=body)).status == 200
        assert (await client.post("/mutate", data=b"not json")).status == 400
        return await (await client.get("/metrics")).text()


async def extender_metrics(policy) -> str:
    view = ClusterView()
    pods = [pod("busy", gpus=6, node_name="n1"), pod("waiting", gpus=4)]
    view.replace_all([node("n1"), node("n2")], pods)
    server = ExtenderServer(policy, view, SnapshotBinder({f"ml/{p['metadata']['name']}": p for p in pods}))
    async with TestClient(TestServer(server.app())) as client:
        assert (await client.post("/filter", json={"Pod": pods[1], "NodeNames": ["n1", "n2"]})).status == 200
        assert (await client.post("/filter", data=b"{}")).status == 400
        return await (await client.get("/metrics")).text()


@pytest.fixture(scope="module")
def metrics(policy) -> Exposed:
    async def both() -> Exposed:
        seen = exposed(await webhook_metrics(policy))
        for name, labels in exposed(await extender_metrics(policy)).items():
            seen.setdefault(name, set()).update(labels)
        return seen

    return asyncio.run(both())


ALL = list(queries())


def test_there_are_queries_for_both_servers() -> None:
    text = " ".join(expr for _, expr in ALL)
    for metric in ("infergate_webhook_denials_total", "infergate_policy_loads_total", "infergate_extender_ready",
                   "infergate_gpu_stranded_milli", "infergate_gang_reservations_expired_total",
                   "infergate_unreadable_objects", "infergate_extender_request_seconds_bucket"):
        assert metric in text, metric


@pytest.mark.parametrize(("where", "expr"), ALL, ids=[re.sub(r"\W+", "-", w) for w, _ in ALL])
def test_every_query_names_exposed_metrics(where: str, expr: str, metrics: Exposed) -> None:
    try:
        parsed = promql_parser.parse(_grafana(expr))
    except Exception as exc:  # the parser raises its own error types
        raise AssertionError(f"{where}: not valid PromQL: {exc}\n{expr}") from None
    found = list(selectors(parsed))
    assert found, f"{where}: names no metric"
    for name, labels in found:
        assert name in metrics, f"{where}: {name} is not exposed by either server"
        unknown = labels - metrics[name] - TARGET_LABELS
        assert not unknown, f"{where}: {name} has no label {sorted(unknown)} (it has {sorted(metrics[name])})"
    for labels, names in groupings(parsed):
        have = set().union(*(metrics[n] for n in names)) | TARGET_LABELS
        assert labels <= have, f"{where}: groups by {sorted(labels - have)}, which {names} do not have"


def test_the_check_catches_a_missing_metric(metrics: Exposed) -> None:
    with pytest.raises(AssertionError, match="not exposed"):
        test_every_query_names_exposed_metrics("x", "rate(infergate_no_such_metric_total[5m])", metrics)
    with pytest.raises(AssertionError, match="no label"):
        test_every_query_names_exposed_metrics("x", 'infergate_gpu_reserved_milli{verb="bind"}', metrics)


def test_the_extender_serves_metrics_alone_on_its_metrics_port(tmp_path: Path) -> None:
    """What Prometheus scrapes in the scheduler pod: /metrics on the metrics port the Deployment names, and none
    of the extender's other endpoints there."""
    base = yaml.safe_load_all((DEPLOY / "base" / "scheduler.yaml").read_text())
    deployment = next(d for d in base if d and d["kind"] == "Deployment")
    [extender] = [c for c in pod_containers(deployment["spec"]["template"]["spec"]) if c["name"] == "extender"]
    metrics_port = int(flag(extender["command"], "--metrics-port"))
    assert {"name": "metrics", "containerPort": metrics_port, "protocol": "TCP"} in extender["ports"]

    snapshot = tmp_path / "snapshot.json"
    snapshot.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": [node("n1"), pod("p", gpus=1, node_name="n1")]}))
    tls = tmp_path / "tls"
    write_bundle(tls, dns=["localhost"], ips=["127.0.0.1"])
    port, metrics = free_port(), free_port()
    process = Component("extender", [
        str(Path(sys.executable).parent / "infergate"), "extender", "--snapshot", str(snapshot), "--host", "127.0.0.1",
        "--port", str(port), "--metrics-port", str(metrics), "--tls-cert", str(tls / "tls.crt"),
        "--tls-key", str(tls / "tls.key")], tmp_path / "extender.log", metrics)
    process.start(tie_to_parent=True)
    context = ssl.create_default_context(cafile=str(tls / "ca.crt"))

    def get(path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"https://127.0.0.1:{metrics}{path}", context=context, timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, ""

    try:
        deadline = time.monotonic() + 60
        while True:
            process.check_running()
            try:
                status, text = get("/metrics")
                break
            except OSError:
                assert time.monotonic() < deadline, (tmp_path / "extender.log").read_text()
                time.sleep(0.3)
        assert status == 200 and "infergate_gpu_allocated_milli 1000.0" in text
        for path in ("/ui", "/api/v1/cluster", "/readyz", "/filter"):
            assert get(path)[0] in (404, 405), path
    finally:
        process.stop()
