"""Objects a hostile or broken client can put in front of the extender (issue 12, 1 and 6), over real HTTP:
each gets a 2xx or 4xx answer naming what is wrong, and the server stays ready; quantities are refused by
their length before any arithmetic, so no input costs time that grows with its size."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.quantity import MAX_QUANTITY, MAX_QUANTITY_CHARS, parse_quantity
from tests.kube_objects import node, pod


def with_gpus(value: Any) -> dict[str, Any]:
    p = pod("hostile", gpus=1)
    p["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] = value
    p["spec"]["containers"][0]["resources"]["requests"]["nvidia.com/gpu"] = value
    return p


@pytest.mark.parametrize("value", ["1e999999", "1" * 5000, "9" * 4301 + "Ki", "1e-999999999", "1" * 70, "8Ei" * 30])
def test_quantities_parse_in_bounded_time(value):
    try:
        parse_quantity(value)
    except ValueError:
        pass
    if len(value) > MAX_QUANTITY_CHARS:
        with pytest.raises(ValueError, match="longer than"):
            parse_quantity(value)


@pytest.mark.parametrize("value", ["1e999999", "1" * 5000, "-1", 1.5e300, -3])
def test_a_pod_with_an_absurd_gpu_quantity_is_unresolvable_at_once(extender_server, value):
    status, answer = extender_server.post("/filter", json.dumps({"Pod": with_gpus(value), "NodeNames": ["n1", "n2"]}).encode())
    assert status == 200 and answer["NodeNames"] == []
    assert "is not a quantity" in answer["FailedAndUnresolvableNodes"]["n1"] or "negative" in answer["FailedAndUnresolvableNodes"]["n1"]
    assert extender_server.get("/readyz") == 200


def bad_pods() -> list[tuple[str, dict[str, Any]]]:
    named_by_object = pod("x", gpus=1)
    named_by_object["metadata"]["name"] = {"not": "a name"}
    int_product = pod("x", gpus=1, annotations={"infergate.io/gpu-product": 7})
    negative_overhead = pod("x", gpus=1, overhead={"cpu": "-4"})
    return [("name", named_by_object), ("product", int_product), ("overhead", negative_overhead)]


@pytest.mark.parametrize(("case", "bad"), bad_pods(), ids=[c for c, _ in bad_pods()])
@pytest.mark.parametrize("verb", ["filter", "prioritize", "preempt"])
def test_unreadable_pods_are_answered_never_a_5xx(extender_server, case, bad, verb):
    body = {"Pod": bad, "NodeNames": ["n1"]} if verb != "preempt" else {"Pod": bad, "NodeNameToMetaVictims": {"n1": {"Pods": [{"UID": "uid-busy"}]}}}
    status, answer = extender_server.post(f"/{verb}", json.dumps(body).encode())
    assert status == 200, answer
    if verb == "filter":
        assert answer["NodeNames"] == [] and answer["FailedAndUnresolvableNodes"]["n1"]


def test_node_metadata_that_is_not_an_object_is_a_bad_request(extender_server):
    for items in ([{"metadata": "n1"}], [{"metadata": {"name": {"x": 1}}}], ["n1"]):
        status, answer = extender_server.post("/filter", json.dumps({"Pod": pod("w", gpus=1), "Nodes": {"items": items}}).encode())
        assert status == 400 and "Error" in answer


@pytest.mark.parametrize("victims", [{"Pods": ["x"]}, {"Pods": [{"metadata": "x"}]}, {"Pods": [{"metadata": {"uid": 5}}]}, "x"])
def test_victims_that_are_not_pods_are_never_a_5xx(extender_server, victims):
    body = {"Pod": pod("w", gpus=2), "NodeNameToVictims": {"n1": victims}}
    status, answer = extender_server.post("/preempt", json.dumps(body).encode())
    assert status in (200, 400), answer


def test_millions_of_unknown_node_names_get_an_answer_the_size_of_the_cluster(extender_server):
    names = [f"ghost-{i:07d}" for i in range(200_000)] + ["n2"]
    body = json.dumps({"Pod": pod("w", gpus=2), "NodeNames": names}).encode()
    extender_server.connection.request("POST", "/filter", body=body, headers={"Content-Type": "application/json"})
    response = extender_server.connection.getresponse()
    data = response.read()
    assert response.status == 200 and len(data) < 200_000, len(data)
    assert json.loads(data)["NodeNames"] == ["n2"]


def test_a_node_with_a_hostile_allocatable_is_counted_unreadable_not_a_stall():
    from extender.view import ClusterView

    view = ClusterView()
    view.replace_all([node("huge", gpus=1), node("ok", gpus=8)], [])
    view.apply_node({**node("huge"), "status": {"allocatable": {"nvidia.com/gpu": "1e999999"}}})
    view.apply_node({**node("many"), "status": {"allocatable": {"nvidia.com/gpu": "100000"}}})
    assert view.problems == 2 and not view.state.has_node("many")


@settings(max_examples=300, deadline=None)
@given(amount=st.integers(0, 10**6), suffix=st.sampled_from(["", "m", "k", "M", "G", "T", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]))
def test_every_ordinary_quantity_parses_to_its_exact_value(amount, suffix):
    """The bounded parser refuses only what exceeds int64: an ordinary quantity (a node's 1124Gi of memory, found
    refused by a too tight bound) parses to exactly its value."""
    multiplier = {"": 1, "m": Decimal("0.001"), "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
                  "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}[suffix]
    exact = Decimal(amount) * multiplier
    if exact > MAX_QUANTITY:
        with pytest.raises(ValueError, match="too large"):
            parse_quantity(f"{amount}{suffix}")
    else:
        assert parse_quantity(f"{amount}{suffix}") == exact
