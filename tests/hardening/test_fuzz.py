"""Hostile input over real HTTP: anything may come in; nothing gets a 5xx, nothing stops the server.

Inputs are valid requests with one part replaced by arbitrary JSON, and arbitrary JSON and bytes whole.
The count of inputs tried goes in docs/guarantees.md.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import SAMPLES
from tests.kube_objects import pod

EXAMPLES = 400
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths(child, prefix + (key,))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += paths(child, prefix + (index,))
    return found


def replaced(document: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    result = copy.deepcopy(document)
    node = result
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return result


@st.composite
def mutated(draw: st.DrawFn, base: Any) -> bytes:
    candidates = paths(base)
    path = draw(st.sampled_from(candidates))
    return json.dumps(replaced(base, path, draw(json_values))).encode()


def review(obj: dict[str, Any], kind: str, group: str = "") -> dict[str, Any]:
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u-1", "kind": {"group": group, "version": "v1", "kind": kind}, "operation": "CREATE",
                        "namespace": "ml-serving", "object": obj, "oldObject": None, "dryRun": False}}


PODS = [d for d in yaml.safe_load_all((SAMPLES / "deepseek-r1-group.yaml").read_text())][:1] + [
    yaml.safe_load((SAMPLES / "qwen-fractional-pod.yaml").read_text())
]
ISVC = yaml.safe_load((SAMPLES / "ome-llama-8b-pd.yaml").read_text())
REVIEWS = [review(p, "Pod") for p in PODS] + [review(ISVC, "InferenceService", "ome.io")]
bodies = st.one_of(*[mutated(r) for r in REVIEWS], json_values.map(lambda v: json.dumps(v).encode()), st.binary(max_size=200))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(body=bodies)
def test_webhook_never_answers_5xx(webhook_server, body):
    for path in ("/mutate", "/validate"):
        status, answer = webhook_server.post(path, body)
        assert status in (200, 400), (status, answer)
        if status == 200:
            response = answer["response"]
            assert response["uid"] == json.loads(body)["request"]["uid"]
            if not response["allowed"]:
                assert 400 <= response["status"]["code"] < 500, response
                assert response["status"]["message"]
    assert webhook_server.get("/healthz") == 200


FILTER = {"Pod": pod("waiting", gpus=2), "NodeNames": ["n1", "n2"]}
BIND = {"PodName": "waiting", "PodNamespace": "ml", "PodUID": "uid-waiting", "Node": "n2"}
PREEMPT = {"Pod": pod("waiting", gpus=2), "NodeNameToMetaVictims": {"n1": {"Pods": [{"UID": "uid-busy"}], "NumPDBViolations": 0}}}
extender_bodies = st.one_of(
    st.tuples(st.sampled_from(["/filter", "/prioritize"]), mutated(FILTER)),
    st.tuples(st.just("/bind"), mutated(BIND)),
    st.tuples(st.just("/preempt"), mutated(PREEMPT)),
    st.tuples(st.sampled_from(["/filter", "/prioritize", "/bind", "/preempt"]), st.binary(max_size=200)),
)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(call=extender_bodies)
def test_extender_never_answers_5xx(extender_server, call):
    path, body = call
    status, answer = extender_server.post(path, body)
    assert status in (200, 400), (status, answer)
    assert extender_server.get("/healthz") == 200
