"""Coverage-guided fuzzing (atheris) of raw request bodies through the webhook's and the extender's request
paths: parsing, admission and placement decisions, exactly as the HTTP handlers run them.

    .venv/bin/pip install atheris
    .venv/bin/python bench/fuzz_raw.py webhook -atheris_runs=200000 -rss_limit_mb=1024
    .venv/bin/python bench/fuzz_raw.py extender -atheris_runs=200000 -rss_limit_mb=1024

A crash (any exception but the "bad request" answer) stops the run with the input that caused it; a clean run
prints how many inputs it tried. Seeds are the samples in deploy/samples/ wrapped as real requests.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import atheris
import yaml

with atheris.instrument_imports(include=["webhook", "extender", "policies", "infergate"]):
    from extender.binder import SnapshotBinder
    from extender.server import BadRequest, ExtenderServer
    from extender.view import ClusterView
    from policies import SHIPPED_POLICY_DIR, load_policy
    from webhook.admission import decide
    from webhook.review import BadReview, parse_review

REPO = Path(__file__).resolve().parent.parent
POLICY = load_policy(SHIPPED_POLICY_DIR)


def seeds(target: str) -> list[bytes]:
    objects = [d for f in sorted((REPO / "deploy" / "samples").glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]
    if target == "webhook":
        return [json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
            "uid": "u", "kind": {"group": o["apiVersion"].rpartition("/")[0], "version": "v1", "kind": o["kind"]},
            "operation": "CREATE", "namespace": "ml", "object": o}}).encode() for o in objects]
    pods = [o for o in objects if o["kind"] == "Pod"]
    return [json.dumps({"Pod": p, "NodeNames": ["n1", "n2"]}).encode() for p in pods] + [
        json.dumps({"PodName": "a", "PodNamespace": "ml", "PodUID": "u", "Node": "n1"}).encode()]


def run_sync(coroutine):
    """The extender's filter and prioritize never wait on I/O: drive them without an event loop."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    raise AssertionError("the handler awaited I/O")


def webhook_target(data: bytes) -> None:
    try:
        review = parse_review(data)
    except BadReview:
        return
    decision = decide(review.request, POLICY, mutate=True)
    if not decision.allowed:
        assert 400 <= decision.code < 500, decision


def make_extender() -> ExtenderServer:
    view = ClusterView()
    nodes = [{"kind": "Node", "metadata": {"name": f"n{i}", "labels": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}},
              "status": {"allocatable": {"cpu": "64", "memory": "512Gi", "nvidia.com/gpu": "8"}}} for i in (1, 2)]
    view.replace_all(nodes, [])
    return ExtenderServer(POLICY, view, SnapshotBinder({}))


EXTENDER = None


def extender_target(data: bytes) -> None:
    for verb in ("filter", "prioritize"):
        try:
            run_sync(getattr(EXTENDER, verb)(data))
        except BadRequest:
            return


def main() -> None:
    global EXTENDER
    target = sys.argv.pop(1) if len(sys.argv) > 1 and sys.argv[1] in ("webhook", "extender") else "webhook"
    corpus = Path(tempfile.mkdtemp(prefix=f"fuzz-{target}-"))
    for i, seed in enumerate(seeds(target)):
        (corpus / f"seed{i}").write_bytes(seed)
    if target == "extender":
        EXTENDER = make_extender()
    atheris.Setup([sys.argv[0], *sys.argv[1:], str(corpus)], webhook_target if target == "webhook" else extender_target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
