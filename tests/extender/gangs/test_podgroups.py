"""PodGroups of both APIs as gang sources: reading the objects, and what the extender makes of their pods."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from extender.podgroups import PodGroups, read_pod_group
from extender.podspec import pod_facts
from extender.preemption import choose_victims
from extender.server import ExtenderServer
from extender.binder import SnapshotBinder
from extender.sources import load_snapshot
from extender.view import ClusterView
from infergate.workloads import PodFieldError, group_identity
from tests.extender.schedsim import MiniScheduler
from tests.kube_objects import node, pod

NATIVE = "scheduling.k8s.io/v1beta1"
COSCHED = "scheduling.x-k8s.io/v1alpha1"


def native_group(name: str, min_count: int | None = None, topology: list[str] = (), namespace: str = "ml",
                 **spec: Any) -> dict[str, Any]:
    policy = {"gang": {"minCount": min_count}} if min_count is not None else {"basic": {}}
    body: dict[str, Any] = {"schedulingPolicy": policy, **spec}
    if topology:
        body["schedulingConstraints"] = {"topology": [{"key": k} for k in topology]}
    return {"apiVersion": NATIVE, "kind": "PodGroup", "metadata": {"name": name, "namespace": namespace}, "spec": body}


def cosched_group(name: str, min_member: Any, namespace: str = "ml") -> dict[str, Any]:
    return {"apiVersion": COSCHED, "kind": "PodGroup", "metadata": {"name": name, "namespace": namespace},
            "spec": {"minMember": min_member}}


def native_member(name: str, group: str, gpus: int = 0, share: int = 0, **kwargs: Any) -> dict[str, Any]:
    return pod(name, gpus=gpus, share=share, schedulingGroup={"podGroupName": group}, **kwargs)


def cosched_member(name: str, group: str, gpus: int = 0, **kwargs: Any) -> dict[str, Any]:
    p = pod(name, gpus=gpus, **kwargs)
    p["metadata"]["labels"] = {"scheduling.x-k8s.io/pod-group": group}
    return p


def racks(*counts: int, gpus: int = 8) -> list[dict[str, Any]]:
    return [node(f"r{r}-n{i}", gpus=gpus, **{"topology.kubernetes.io/rack": f"rack-{r}"})
            for r, count in enumerate(counts) for i in range(count)]


def scheduler(policy, nodes, pods, groups) -> MiniScheduler:
    sched = MiniScheduler(policy, nodes, pods)
    for api in {g["apiVersion"] for g in groups} | {NATIVE, COSCHED}:
        sched.view.pod_groups.replace(api, [g for g in groups if g["apiVersion"] == api])
    return sched


# ------------------------------------------------------------------------------------------------ the objects
@pytest.mark.parametrize(("obj", "size", "topology", "problem"), [
    (native_group("g", 4), 4, (), None),
    (native_group("g", 2, ["topology.kubernetes.io/rack", "topology.kubernetes.io/zone"]), 2,
     ("topology.kubernetes.io/rack", "topology.kubernetes.io/zone"), None),
    (native_group("g"), None, (), None),  # basic: no gang
    (cosched_group("g", 3), 3, (), None),
    (native_group("g", 0), None, (), "spec.schedulingPolicy.gang.minCount: 0 is not a whole number"),
    (native_group("g", "4"), None, (), "spec.schedulingPolicy.gang.minCount: '4' is not a whole number"),
    ({**native_group("g"), "spec": {"schedulingPolicy": {"basic": {}, "gang": {"minCount": 2}}}}, None, (),
     "spec.schedulingPolicy: must hold exactly one of basic or gang"),
    ({**native_group("g"), "spec": {}}, None, (), "spec.schedulingPolicy: must hold exactly one"),
    ({**native_group("g"), "spec": []}, None, (), "spec: missing"),
    (native_group("g", 2, schedulingConstraints={"topology": [{"key": ""}]}), None, (),
     "spec.schedulingConstraints.topology[0].key: must name a node label"),
    (native_group("g", 2, schedulingConstraints={"topology": "rack"}), None, (), "must be a list"),
    (cosched_group("g", None), None, (), "spec.minMember: None is not a whole number"),
    (cosched_group("g", True), None, (), "spec.minMember: True is not"),
])
def test_read_pod_group(obj, size, topology, problem):
    read = read_pod_group(obj)
    assert read is not None and read.key == "ml/g"
    if problem is None:
        assert (read.size, read.topology, read.problem) == (size, topology, None)
    else:
        assert read.problem is not None and problem in read.problem and f"PodGroup ml/g ({obj['apiVersion']})" in read.problem


def test_objects_without_a_name_are_skipped():
    assert read_pod_group({"apiVersion": NATIVE, "kind": "PodGroup", "metadata": {}}) is None
    groups = PodGroups()
    groups.apply({"apiVersion": NATIVE, "kind": "PodGroup", "metadata": {"name": 3}})
    assert groups.groups == {}


def test_group_identity_of_a_native_member():
    group = group_identity({"name": "w-0", "namespace": "ml"}, {"schedulingGroup": {"podGroupName": "train"}})
    assert (group.key, group.size, group.source) == ("ml/train", None, "PodGroup (scheduling.k8s.io)")
    assert group_identity({"name": "w-0", "namespace": "ml"}) is None, "without the spec: as before"
    assert group_identity({"name": "w-0", "namespace": "ml"}, {"schedulingGroup": {}}) is None
    with pytest.raises(PodFieldError, match="spec.schedulingGroup.podGroupName"):
        group_identity({"name": "w-0", "namespace": "ml"}, {"schedulingGroup": {"podGroupName": 7}})
    # infergate's own annotations come first, as documented
    ours = group_identity({"name": "w", "namespace": "ml", "annotations": {"infergate.io/group": "g", "infergate.io/group-size": "2"}},
                          {"schedulingGroup": {"podGroupName": "train"}})
    assert ours.key == "ml/g" and ours.size == 2


# ------------------------------------------------------------------------------------------ placing the pods
async def test_native_gang_waits_for_min_count_then_places_whole_in_one_rack(policy):
    nodes = racks(1, 2)
    pods = [native_member(f"w-{i}", "train", gpus=8) for i in range(2)]
    sched = scheduler(policy, nodes, pods, [native_group("train", 3, ["topology.kubernetes.io/rack"])])
    assert await sched.schedule("ml/w-0") is None
    assert "2 of its 3 members exist" in next(iter(sched.reasons["ml/w-0"].values()))
    sched.add(native_member("w-2", "train", gpus=8))
    # three 8-GPU members fit in no single rack (racks of 1 and 2 nodes): required topology, so it waits
    assert await sched.schedule("ml/w-0") is None
    reason = next(iter(sched.reasons["ml/w-0"].values()))
    assert "gang ml/train needs 3 pods with 8 free" in reason and "in one rack" in reason
    sched.view.apply_node(node("r1-n2", gpus=8, **{"topology.kubernetes.io/rack": "rack-1"}))
    sched.nodes.append("r1-n2")
    placed = {k: await sched.schedule(k) for k in ("ml/w-0", "ml/w-1", "ml/w-2")}
    assert all(placed.values()) and len(set(placed.values())) == 3
    assert {sched.view.state.labels(n)["topology.kubernetes.io/rack"] for n in placed.values()} == {"rack-1"}


async def test_native_fractional_gang_of_min_count_with_a_product(policy):
    nodes = [node("a100", gpus=2, product="NVIDIA-A100"), node("h100", gpus=1)]
    annotations = {"infergate.io/gpu-product": "NVIDIA-H100-80GB-HBM3"}
    pods = [native_member(f"s-{i}", "shards", share=400, annotations=annotations) for i in range(3)]
    sched = scheduler(policy, nodes, pods, [native_group("shards", 3)])
    # 3 x 400m of one H100: only two fit on its one GPU, and the A100s are the wrong product
    assert await sched.schedule("ml/s-0") is None
    assert "gang ml/shards needs 3 pods with 400m of one NVIDIA-H100-80GB-HBM3 GPU each" in next(iter(sched.reasons["ml/s-0"].values()))
    assert sched.server.scheduler.gangs.reservations == {}, "nothing held for a gang that does not fit"
    sched.view.apply_node(node("h100", gpus=2))
    placed = [await sched.schedule(f"ml/s-{i}") for i in range(3)]
    assert placed == ["h100"] * 3


async def test_basic_policy_is_no_gang_and_members_beyond_the_quorum_place_alone(policy):
    nodes = racks(3)
    pods = [native_member("b-0", "loose", gpus=8), native_member("g-0", "gang", gpus=4), native_member("g-1", "gang", gpus=4),
            native_member("g-2", "gang", gpus=4)]
    sched = scheduler(policy, nodes, pods, [native_group("loose"), native_group("gang", 2)])
    assert await sched.schedule("ml/b-0"), "a basic PodGroup's pod places alone, with no other member in sight"
    assert await sched.schedule("ml/g-0") and await sched.schedule("ml/g-1")
    assert await sched.schedule("ml/g-2"), "minCount members run: a further member places alone"


async def test_scheduler_plugins_pod_group_gives_the_size(policy):
    nodes = racks(2)
    sched = scheduler(policy, nodes, [cosched_member("c-0", "job", gpus=8)], [cosched_group("job", 2)])
    assert await sched.schedule("ml/c-0") is None
    assert "1 of its 2 members exist" in next(iter(sched.reasons["ml/c-0"].values()))
    sched.add(cosched_member("c-1", "job", gpus=8))
    assert await sched.schedule("ml/c-0") and await sched.schedule("ml/c-1")


@pytest.mark.parametrize(("groups", "expected"), [
    ([], "namespace ml has no such PodGroup: create it (its spec.schedulingPolicy.gang.minCount is the gang's size)"),
    ([native_group("train", 0)], "PodGroup ml/train (scheduling.k8s.io/v1beta1): spec.schedulingPolicy.gang.minCount: 0"),
])
async def test_missing_or_malformed_pod_group_gets_a_reason(policy, groups, expected):
    sched = scheduler(policy, racks(1), [native_member("w-0", "train", gpus=8)], groups)
    assert await sched.schedule("ml/w-0") is None
    reasons = set(sched.reasons["ml/w-0"].values())
    assert len(reasons) == 1 and expected in reasons.pop()


async def test_an_api_not_served_plans_from_the_members_that_exist(policy):
    sched = MiniScheduler(policy, racks(2), [cosched_member("c-0", "job", gpus=8), cosched_member("c-1", "job", gpus=8)])
    assert sched.view.pod_groups.served == set()
    sched.view.pod_groups.pending.add(COSCHED)  # a watch that has not listed yet: wait, do not guess the size
    assert await sched.schedule("ml/c-0") is None
    assert "has not listed the PodGroups of scheduling.x-k8s.io/v1alpha1 yet" in next(iter(sched.reasons["ml/c-0"].values()))
    sched.view.pod_groups.withdraw(COSCHED)  # found not served
    assert await sched.schedule("ml/c-0") and await sched.schedule("ml/c-1")


def test_a_victim_of_a_basic_pod_group_goes_alone(policy):
    view = ClusterView()
    pods = [native_member(f"t-{i}", "loose", gpus=8, node_name=f"n{i}", annotations={"infergate.io/workload": "training"})
            for i in range(2)]
    view.replace_all([node("n0"), node("n1")], pods)
    inference = pod_facts(pod("serve", gpus=8, annotations={"infergate.io/workload": "inference"}))
    request = view.read_pod(pod("serve", gpus=8))[1]
    view.pod_groups.replace(NATIVE, [native_group("loose", 2)])
    assert choose_victims(view, inference, request, {"n0": ["uid-t-0"]}) == ("n0", ["ml/t-0"], ["ml/t-1"]), "a gang goes whole"
    view.pod_groups.replace(NATIVE, [native_group("loose")])
    assert choose_victims(view, inference, request, {"n0": ["uid-t-0"]}) == ("n0", ["ml/t-0"], [])


# ------------------------------------------------------------------------------------------------ snapshot
async def test_a_pod_group_in_a_snapshot_makes_filter_treat_its_pods_as_a_gang(policy, tmp_path):
    objects = [*racks(2), native_group("train", 2), *[native_member(f"w-{i}", "train", gpus=8) for i in range(2)]]
    path = tmp_path / "snapshot.yaml"
    path.write_text(yaml.safe_dump_all(objects))
    view = ClusterView()
    server = ExtenderServer(policy, view, SnapshotBinder(load_snapshot(view, path)))
    sim = MiniScheduler.__new__(MiniScheduler)
    sim.server, sim.view, sim.nodes, sim.reasons = server, view, ["r0-n0", "r0-n1"], {}
    sim.pods = {f"ml/w-{i}": o for i, o in enumerate(objects[3:])}
    answer = await sim.call("filter", {"Pod": sim.pods["ml/w-0"], "NodeNames": sim.nodes})
    assert len(answer["NodeNames"]) == 1, "a gang member is answered with its reserved node only"
    assert server.scheduler.gangs.reservations["ml/train"].slots[1].pod == "ml/w-1", "both members reserved at once"
    # without the second member, the snapshot's PodGroup says the gang is incomplete
    path.write_text(yaml.safe_dump_all(objects[:4]))
    view = ClusterView()
    server = ExtenderServer(policy, view, SnapshotBinder(load_snapshot(view, path)))
    sim.server, sim.view = server, view
    answer = await sim.call("filter", {"Pod": sim.pods["ml/w-0"], "NodeNames": sim.nodes})
    assert answer["NodeNames"] == [] and "1 of its 2 members exist" in answer["FailedAndUnresolvableNodes"]["r0-n0"]


# ------------------------------------------------------------------------------------------------- the watch
class _Response:
    def __init__(self, status: int, body: dict[str, Any], lines: list[dict[str, Any]] = ()):
        self.status, self.body, self.lines = status, body, lines

    async def read(self) -> bytes:
        import json
        return json.dumps(self.body).encode()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        return False

    @property
    def content(self):
        async def lines():
            import asyncio
            import json
            for line in self.lines:
                yield json.dumps(line).encode() + b"\n"
            await asyncio.Event().wait()  # the watch stays open
        return lines()


async def test_the_watch_tolerates_an_api_that_is_not_served_and_picks_it_up_later(caplog):
    import asyncio
    import logging

    from extender.sources import KubeSource

    calls: list[dict[str, Any]] = []
    missing = {"kind": "Status", "code": 404, "metadata": {}}
    listed = {"kind": "PodGroupList", "metadata": {"resourceVersion": "7"}, "items": [cosched_group("job", 2)]}
    added = {"type": "ADDED", "object": {**cosched_group("later", 3), "metadata": {"name": "later", "namespace": "ml", "resourceVersion": "8"}}}

    class Custom:
        async def list_cluster_custom_object(self, group, version, plural, **kwargs):
            calls.append(kwargs)
            if len(calls) <= 3:
                return _Response(404, missing)
            return _Response(200, listed, [added]) if kwargs.get("watch") else _Response(200, listed)

    view = ClusterView()
    source = KubeSource(object(), view)
    source.custom = Custom()
    assert COSCHED in view.pod_groups.pending
    with caplog.at_level(logging.INFO, logger="extender.sources"):
        task = asyncio.create_task(source.follow_pod_groups(COSCHED, retry=0.01))
        for _ in range(200):
            await asyncio.sleep(0.01)
            if ("scheduling.x-k8s.io/v1alpha1", "ml/later") in view.pod_groups.groups:
                break
        task.cancel()
    assert view.pod_groups.served == {COSCHED} and COSCHED not in view.pod_groups.pending
    assert view.pod_groups.groups[(COSCHED, "ml/job")].size == 2 and view.pod_groups.groups[(COSCHED, "ml/later")].size == 3
    said = [r.getMessage() for r in caplog.records]
    assert sum("is not served by this cluster" in m for m in said) == 1, "said once, not on every retry"
    assert any("the API is served now" in m for m in said)


async def test_a_new_run_of_a_group_does_not_inherit_the_places_of_the_last(policy):
    """Found by the model: a run whose bound member ended left its other place reserved; the first pod of the
    group's next run took it and was bound alone."""
    sched = scheduler(policy, racks(2), [cosched_member("r1-0", "job", gpus=8), cosched_member("r1-1", "job", gpus=8)],
                      [cosched_group("job", 2)])
    assert await sched.schedule("ml/r1-0")  # its partner is reserved, not bound yet
    sched.delete("ml/r1-0")
    sched.delete("ml/r1-1")  # the run is over
    sched.add(cosched_member("r2-0", "job", gpus=8))
    assert await sched.schedule("ml/r2-0") is None
    assert "1 of its 2 members exist" in next(iter(sched.reasons["ml/r2-0"].values()))


async def test_a_relist_holds_no_places_for_pods_that_are_no_gang(policy):
    """Found in review: after a relist (or a start on a synced view), a partly bound basic PodGroup, or one whose
    quorum is bound, had places planned for its waiting pods; those pods are placed alone and never claimed
    them, so each was refused for a hold made for itself, for ever."""
    nodes = racks(2)
    pods = [native_member("a", "loose", gpus=4, node_name="r0-n0"), native_member("b", "loose", gpus=4),
            native_member("q-0", "quorum", gpus=2, node_name="r0-n0"),
            native_member("q-1", "quorum", gpus=2, node_name="r0-n0"), native_member("q-2", "quorum", gpus=2)]
    sched = scheduler(policy, nodes, pods, [native_group("loose"), native_group("quorum", 2)])
    sched.view.replace_all(nodes, pods)  # a relist, with the PodGroups known
    assert not sched.server.scheduler.gangs.reservations  # and what was held before they were known is let go
    assert await sched.schedule("ml/b") == "r0-n1"
    assert await sched.schedule("ml/q-2") == "r0-n1"


async def test_a_relist_plans_a_pod_groups_waiting_members_in_its_topology(policy):
    nodes = racks(2, 2)
    pods = [native_member("t-0", "topo", gpus=8, node_name="r1-n0"), native_member("t-1", "topo", gpus=8)]
    sched = scheduler(policy, nodes, [], [native_group("topo", 2, ["topology.kubernetes.io/rack"])])
    sched.pods.update({f"ml/{p['metadata']['name']}": p for p in pods})
    sched.view.replace_all(nodes, pods)  # the first list of pods, the PodGroup known
    reservation = sched.server.scheduler.gangs.reservations["ml/topo"]
    assert [s.node for s in reservation.slots] == ["r1-n1"]  # beside its bound member, in its rack


async def test_a_restart_holds_places_for_a_pod_group_listed_after_the_pods(policy):
    """Found in review: a restarted extender lists pods and PodGroups side by side. When the pods came first,
    a partly bound gang's waiting member (a replacement, with no reserved node recorded) could not be planned
    (its PodGroup not listed yet), and nothing planned it once the PodGroup was: its room was anyone's."""
    nodes = racks(2, 2)
    pods = [native_member("t-0", "topo", gpus=8, node_name="r1-n0"), native_member("t-1b", "topo", gpus=8)]
    sched = MiniScheduler(policy, nodes, [])
    sched.pods.update({f"ml/{p['metadata']['name']}": p for p in pods})
    sched.view.pod_groups.pending.update((NATIVE, COSCHED))  # as the watch sets it up at start
    sched.view.replace_all(nodes, pods)
    assert not sched.server.scheduler.gangs.reservations  # its size is not known yet
    sched.view.pod_groups.replace(NATIVE, [native_group("topo", 2, ["topology.kubernetes.io/rack"])])
    sched.view.pod_groups.replace(COSCHED, [])
    reservation = sched.server.scheduler.gangs.reservations["ml/topo"]
    assert [s.node for s in reservation.slots] == ["r1-n1"]


@pytest.mark.parametrize("change", ["smaller", "basic", "larger", "topology"])
async def test_a_pod_group_changed_under_its_reservation_is_planned_again(policy, change):
    """Found in review: places planned from a PodGroup's old minCount or topology were kept after it changed;
    a member then beyond the new quorum was placed alone and refused for the place held for itself."""
    nodes = racks(2, 2)
    members = [native_member(f"m-{i}", "job", gpus=8) for i in range(3)]
    sched = scheduler(policy, nodes, members, [native_group("job", 3)])
    assert await sched.schedule("ml/m-0")  # the gang of three is planned, one bound
    sched.delete("ml/m-0")  # its run restarts: the bound member went away
    assert "ml/job" in sched.server.scheduler.gangs.reservations
    new = {"smaller": native_group("job", 2), "basic": native_group("job"), "larger": native_group("job", 4),
           "topology": native_group("job", 2, ["topology.kubernetes.io/rack"])}[change]
    sched.view.pod_groups.apply(new)
    assert "ml/job" not in sched.server.scheduler.gangs.reservations
    placed = [await sched.schedule(k) for k in ("ml/m-1", "ml/m-2")]
    if change == "larger":
        assert placed == [None, None]  # two of four exist: it waits for the rest
    else:
        assert all(placed), sched.reasons
    if change == "topology":
        assert placed[0][:2] == placed[1][:2]  # one rack


async def test_a_quorum_is_made_of_the_members_that_fit(policy):
    """Found by the PodGroup model: with more members than minCount, the gang was planned with the oldest
    members; three 8-GPU members cannot share a rack of two 8-GPU nodes, and the 2-GPU members that could never
    got a plan. Any minCount members make the quorum: the pod at hand and the smallest others are planned."""
    members = [native_member(f"big-{i}", "job", gpus=8) for i in range(3)] + \
              [native_member(f"small-{i}", "job", gpus=2) for i in range(3)]
    sched = scheduler(policy, racks(2, 2), members, [native_group("job", 3, ["topology.kubernetes.io/rack"])])
    placed = {m["metadata"]["name"]: await sched.schedule(f"ml/{m['metadata']['name']}") for m in members}
    bound = {k: v for k, v in placed.items() if v}
    assert len(bound) >= 3, sched.reasons
    assert len({node.split("-")[0] for node in bound.values()}) == 1  # one rack


async def test_a_deleted_pod_group_lets_go_of_its_places_and_gets_them_back_when_re_created(policy):
    """Its members are refused while it is gone: places held for them would only keep other pods out."""
    members = [native_member(f"m-{i}", "job", gpus=8) for i in range(2)]
    sched = scheduler(policy, racks(3), members, [native_group("job", 2)])
    first = await sched.schedule("ml/m-0")
    assert first and "ml/job" in sched.server.scheduler.gangs.reservations  # partly bound, m-1's place held
    sched.view.pod_groups.delete(native_group("job", 2))
    assert "ml/job" not in sched.server.scheduler.gangs.reservations
    assert await sched.schedule("ml/m-1") is None and "no such PodGroup" in next(iter(sched.reasons["ml/m-1"].values()))
    sched.view.pod_groups.apply(native_group("job", 2))
    assert "ml/job" in sched.server.scheduler.gangs.reservations
    assert await sched.schedule("ml/m-1")
