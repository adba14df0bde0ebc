"""The GPU map's data, built from a ClusterView and a GangBook: figures, groups, every GPU with its holders,
pending pods with their reasons, gangs; and nothing of a pod beyond its name."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from extender.core import make_scorer
from extender.gangs import GangBook, Member
from extender.gpumap import FilterReasons, GroupIndex, History, figures, group_detail, summary
from extender.gpumap.model import NO_DOMAIN, domain_of, group_id, summarize
from extender.podspec import pod_request
from extender.view import ClusterView
from tests.kube_objects import node, pod

KEYS = ["nvidia.com/gpu.clique", "infergate.io/rack", "topology.kubernetes.io/zone"]
H100 = "NVIDIA-H100-80GB-HBM3"
A10 = "NVIDIA-A10"


def rack(name: str, zone: str, rack_name: str, **kw: Any) -> dict[str, Any]:
    return node(name, **kw, **{"topology.kubernetes.io/zone": zone, "infergate.io/rack": rack_name,
                               "nvidia.com/gpu.clique": f"{rack_name}.0"})


def member(name: str, gpus: int, group: str = "g", size: int = 2) -> dict[str, Any]:
    return pod(name, gpus=gpus, annotations={"infergate.io/group": group, "infergate.io/group-size": str(size)})


@pytest.fixture
def cluster() -> tuple[ClusterView, GangBook]:
    view = ClusterView()
    nodes = [rack("h1", "zone-a", "r1"), rack("h2", "zone-a", "r1"), rack("h3", "zone-b", "r2"),
             rack("a1", "zone-a", "r1", gpus=4, product=A10), node("loose", gpus=2)]
    secret_env = [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}},
                  {"name": "PASSWORD", "value": "hunter2"}]
    pods = [
        pod("whole", gpus=2, node_name="h1"),
        pod("half", share=500, node_name="h1", annotations={"infergate.io/gpu-index": "2"}),
        pod("quarter", share=250, node_name="h1", annotations={"infergate.io/gpu-index": "2"}),
        pod("big", gpus=8, node_name="h2"),
        pod("waiting-a10", gpus=4, nodeSelector={}),
        pod("too-big", gpus=16),
        member("m0", 4), member("m1", 4),
    ]
    pods[0]["spec"]["containers"][0]["env"] = secret_env
    pods[4]["spec"]["containers"][0]["env"] = secret_env
    view.replace_all(nodes, pods)
    book = GangBook(view.state, make_scorer("infergate"), KEYS)
    return view, book


def test_figures_count_whole_fractional_and_stranded(cluster: tuple[ClusterView, GangBook]) -> None:
    view, _ = cluster
    f = figures(view.state)
    assert (f.nodes, f.gpus) == (5, 8 + 8 + 8 + 4 + 2)
    assert f.allocated == 2000 + 750 + 8000
    assert f.stranded == 250  # the rest of GPU 2 of h1
    assert f.free_gpus == 30 - 2 - 1 - 8
    assert f.fragmentation == pytest.approx(250 / (30_000 - 10_750))


def test_summary_groups_by_domain_and_product(cluster: tuple[ClusterView, GangBook]) -> None:
    view, book = cluster
    data = summary(view, book, KEYS, now=0.0)
    groups = {(g["domain"], g["product"]): g for g in data["groups"]}
    assert set(groups) == {("zone-a / r1", H100), ("zone-a / r1", A10), ("zone-b / r2", H100), (NO_DOMAIN, H100)}
    assert groups[("zone-a / r1", H100)]["nodes"] == 2
    assert groups[("zone-a / r1", H100)]["allocatedMilli"] == 10_750
    assert groups[("zone-a / r1", H100)]["strandedMilli"] == 250
    for field in ("gpus", "freeGpus", "capacityMilli", "allocatedMilli", "reservedMilli", "strandedMilli"):
        total = data["totals"][field.replace("gpus", "Gpus") if field == "freeGpus" else field]
        assert sum(g[field] for g in data["groups"]) == total, field


def test_every_gpu_with_its_state_and_pod(cluster: tuple[ClusterView, GangBook]) -> None:
    view, book = cluster
    gid = group_id("zone-a / r1", H100)
    detail = group_detail(view, KEYS, gid, now=0.0)
    assert detail is not None and detail["nodes"] == 2
    h1 = next(n for n in detail["page"] if n["name"] == "h1")
    assert h1["clique"] == "r1.0"
    states = [g["state"] for g in h1["gpus"]]
    assert states.count("whole") == 2 and states.count("fractional") == 1 and states.count("free") == 5
    shared = h1["gpus"][2]
    assert shared["freeMilli"] == 250
    assert sorted((h["pod"], h["milli"], h["kind"]) for h in shared["holders"]) == [
        ("ml/half", 500, "share"), ("ml/quarter", 250, "share")]
    whole = [g for g in h1["gpus"] if g["state"] == "whole"]
    assert all(g["holders"] == [{"pod": "ml/whole", "milli": 1000, "kind": "whole", "class": "training"}]
               for g in whole)


def test_gang_reservations_show_on_their_gpus(cluster: tuple[ClusterView, GangBook]) -> None:
    view, book = cluster
    members = [Member(view.requests["ml/m0"]), Member(view.requests["ml/m1"])]
    reservation = book.plan("ml/g", members)
    assert not hasattr(reservation, "resolvable")
    data = summary(view, book, KEYS, now=reservation.created + 30.0)
    [gang] = data["gangs"]
    assert gang["group"] == "ml/g" and gang["members"] == 2 and gang["bound"] == 0
    assert gang["expiresInSeconds"] == pytest.approx(book.ttl_seconds - 30.0)
    assert data["totals"]["reservedMilli"] == 8000
    reserved_cells = []
    for g in data["groups"]:
        detail = group_detail(view, KEYS, g["id"], now=0.0)
        assert detail is not None
        for n in detail["page"]:
            reserved_cells += [gpu for gpu in n["gpus"] if gpu["state"] == "reserved"]
    assert len(reserved_cells) == 8
    assert all(cell["holders"][0]["gang"] == "ml/g" for cell in reserved_cells)
    pending = {p["pod"]: p for p in data["pending"]}
    assert pending["ml/m0"]["gang"] == "ml/g" and "reserved" in pending["ml/m0"]["reason"]


def test_pending_pods_with_the_extenders_reason(cluster: tuple[ClusterView, GangBook]) -> None:
    view, book = cluster
    reasons = FilterReasons()
    reasons.record("ml/waiting-a10", 5, [], {"h1": "node h1: has 5 of 4 GPUs free but is not an NVIDIA-A10",
                                             "h2": "node h2: has 0 of 4 GPUs free", "h3": "node h3: has 0 of 4 GPUs free"})
    data = summary(view, book, KEYS, now=0.0, reasons=reasons)
    assert data["pendingCount"] == 4
    pending = {p["pod"]: p for p in data["pending"]}
    assert pending["ml/waiting-a10"]["reason"] == (
        "0/5 nodes fit: 2× has 0 of 4 GPUs free; has 5 of 4 GPUs free but is not an NVIDIA-A10")
    # Never asked about: what the filter would answer now.
    assert pending["ml/too-big"]["reason"].startswith("0/5 nodes fit:")
    assert pending["ml/too-big"]["request"] == "16 GPUs"
    assert "not planned yet" in pending["ml/m0"]["reason"]
    # A later filter that found nodes clears the old reason.
    reasons.record("ml/waiting-a10", 5, ["a1"], {})
    assert reasons.get("ml/waiting-a10") is None


def test_only_names_leave(cluster: tuple[ClusterView, GangBook]) -> None:
    view, book = cluster
    text = json.dumps(summary(view, book, KEYS, now=0.0))
    for g in summary(view, book, KEYS, now=0.0)["groups"]:
        text += json.dumps(group_detail(view, KEYS, g["id"], now=0.0))
    for secret in ("HF_TOKEN", "hunter2", "secretKeyRef", "env", "uid-whole"):
        assert secret not in text


def test_pages_of_a_group() -> None:
    view = ClusterView()
    view.replace_all([rack(f"n{i:03d}", "z", "r") for i in range(250)], [])
    gid = group_id("z / r", H100)
    first = group_detail(view, KEYS, gid, now=0.0, limit=100)
    last = group_detail(view, KEYS, gid, now=0.0, offset=200, limit=100)
    assert first and last and first["nodes"] == 250
    assert [n["name"] for n in first["page"]][:2] == ["n000", "n001"] and len(first["page"]) == 100
    assert [n["name"] for n in last["page"]][-1] == "n249" and len(last["page"]) == 50
    assert group_detail(view, KEYS, "no-such-group", now=0.0) is None


def test_group_index_follows_the_nodes() -> None:
    view = ClusterView()
    view.replace_all([rack("n1", "z", "r1")], [])
    index = GroupIndex(ttl=1e9)
    book = GangBook(view.state, make_scorer("infergate"), KEYS)
    assert len(summary(view, book, KEYS, now=0.0, index=index)["groups"]) == 1
    view.apply_node(rack("n2", "z", "r2"))
    assert len(summary(view, book, KEYS, now=1.0, index=index)["groups"]) == 2
    view.delete_node("n1")
    assert [g["domain"] for g in summary(view, book, KEYS, now=2.0, index=index)["groups"]] == ["z / r2"]


def test_domain_leaves_the_finest_key_to_the_node() -> None:
    labels = {"nvidia.com/gpu.clique": "c1", "infergate.io/rack": "r1", "topology.kubernetes.io/zone": "z"}
    assert domain_of(labels, KEYS) == "z / r1"
    assert domain_of({"topology.kubernetes.io/zone": "z"}, KEYS) == "z"
    assert domain_of(labels, ["nvidia.com/gpu.clique"]) == "c1"
    assert domain_of({}, KEYS) == NO_DOMAIN


def test_history_keeps_one_sample_per_interval(cluster: tuple[ClusterView, GangBook]) -> None:
    view, _ = cluster
    history = History(size=3, every=10.0)
    for t in (0.0, 5.0, 10.0, 20.0, 30.0, 40.0):
        history.record(t, figures(view.state))
    assert [s["t"] for s in history.samples] == [20.0, 30.0, 40.0]
    assert history.samples[-1]["allocation"] == pytest.approx(10_750 / 30_000, abs=1e-4)


def test_summarize_reads_like_kube_scheduler() -> None:
    failed = {f"n{i}": f"node n{i}: has 0 of 8 GPUs free" for i in range(3)}
    failed.update({"x": "node x: is cordoned", "y": "not known", "z": "node z: too little memory"})
    assert summarize(10, failed, top=2) == "0/10 nodes fit: 3× has 0 of 8 GPUs free; is cordoned; and 2 other reasons"
    assert summarize(4, {}) == "0/4 nodes fit"


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.sampled_from([0, 1, 2, 8]), st.sampled_from([0, 250, 500])),
                max_size=30),
       st.lists(st.tuples(st.sampled_from(["z1", "z2"]), st.sampled_from(["r1", "r2", "r3"]),
                          st.sampled_from([H100, A10]), st.sampled_from([2, 4, 8])), min_size=1, max_size=8))
def test_groups_add_up_to_the_cluster(pods: list[tuple[int, int, int]], nodes: list[tuple[str, str, str, int]]) -> None:
    view = ClusterView()
    node_objects = [rack(f"n{i}", z, r, gpus=g, product=p) for i, (z, r, p, g) in enumerate(nodes)]
    view.replace_all(node_objects, [])
    for i, (where, gpus, share) in enumerate(pods):
        name = f"n{where % len(nodes)}"
        p = pod(f"p{i}", gpus=gpus, share=share if not gpus else 0)
        if pod_request(p).wants_gpu and view.state.has_node(name):
            try:
                view.assume(f"ml/p{i}", f"u{i}", pod_request(p), name, None)
            except Exception:  # does not fit there: leave it out
                pass
    book = GangBook(view.state, make_scorer("infergate"), KEYS)
    data = summary(view, book, KEYS, now=0.0)
    totals = data["totals"]
    assert sum(g["nodes"] for g in data["groups"]) == totals["nodes"] == len(nodes)
    for field in ("gpus", "capacityMilli", "allocatedMilli", "strandedMilli"):
        assert sum(g[field] for g in data["groups"]) == totals[field], field
    cells = [gpu for g in data["groups"] for n in (group_detail(view, KEYS, g["id"], now=0.0) or {})["page"]
             for gpu in n["gpus"]]
    assert len(cells) == totals["gpus"]
    assert sum(1 for c in cells if c["state"] == "free") == totals["freeGpus"]
    assert sum(1000 - c["freeMilli"] for c in cells) == totals["allocatedMilli"] + totals["reservedMilli"]
