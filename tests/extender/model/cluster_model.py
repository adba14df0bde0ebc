"""A model of a cluster around the extender, for the model-based test (test_model.py) and its longer run
(bench/extender_model.py): an API server (the objects, a watch that lags behind them), a kube-scheduler
(its own node filters, then filter -> prioritize -> bind and preemption through the extender), controllers
(a LeaderWorkerSet creating workers), and the invariants the extender promises, checked after every step.

The extender is the real one: a Scheduler (extender/scheduler.py) called in process, or the ExtenderServer
over real HTTP. Only the cluster around it is a model.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from extender.binder import BindError
from extender.constraints import node_taints, pod_placement
from extender.podspec import pod_key
from extender.scheduler import Scheduler
from extender.server import ExtenderServer
from extender.view import ClusterView
from infergate import constants
from policies import SHIPPED_POLICY_DIR, load_policy
from tests.kube_objects import node as node_object
from tests.kube_objects import pod as pod_object

POLICY = load_policy(SHIPPED_POLICY_DIR)
PRIORITY = {constants.INFERENCE: 1_000_000, constants.TRAINING: 10_000}
TAINT = {"key": "dedicated", "value": "batch", "effect": "NoSchedule"}
NATIVE, COSCHED = constants.NATIVE_POD_GROUP_API, constants.COSCHEDULING_POD_GROUP_API
TOLERATION = {"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}


class FakeApi:
    """The API server: objects, and the watch events not yet delivered to the extender. Also the extender's
    Binder (it binds, annotates, evicts and reads through it), never authoritative: only the watch tells."""

    authoritative = False

    def __init__(self) -> None:
        self.nodes: dict[str, dict[str, Any]] = {}
        self.pods: dict[str, dict[str, Any]] = {}
        self.leaderworkersets: dict[str, dict[str, Any]] = {}
        self.pod_groups: dict[str, dict[str, Any]] = {}  # "namespace/name" -> PodGroup (either API)
        self.events: list[tuple[str, Any]] = []
        self.evicted: list[str] = []

    def put_node(self, obj: dict[str, Any]) -> None:
        self.nodes[obj["metadata"]["name"]] = obj
        self.events.append(("node", copy.deepcopy(obj)))

    def delete_node(self, name: str) -> None:
        del self.nodes[name]
        self.events.append(("node-delete", name))

    def put_pod(self, obj: dict[str, Any]) -> None:
        self.pods[pod_key(obj)] = obj
        self.events.append(("pod", copy.deepcopy(obj)))

    def delete_pod(self, key: str) -> None:
        if self.pods.pop(key, None) is not None:
            self.events.append(("pod-delete", key))

    def put_pod_group(self, obj: dict[str, Any]) -> None:
        self.pod_groups[f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"] = obj
        self.events.append(("podgroup", copy.deepcopy(obj)))

    def delete_pod_group(self, key: str) -> None:
        obj = self.pod_groups.pop(key, None)
        if obj is not None:
            self.events.append(("podgroup-delete", obj))

    # the Binder protocol
    async def get_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        found = self.pods.get(f"{namespace}/{name}")
        return copy.deepcopy(found) if found else None

    async def annotate(self, namespace: str, name: str, annotations: dict[str, str]) -> None:
        pod = self.pods.get(f"{namespace}/{name}")
        if pod is None:
            raise BindError(f"404: pods {name!r} not found")
        pod["metadata"].setdefault("annotations", {}).update(annotations)
        self.put_pod(pod)

    async def bind(self, namespace: str, name: str, uid: str, node: str) -> None:
        pod = self.pods.get(f"{namespace}/{name}")
        if pod is None or (uid and pod["metadata"]["uid"] != uid):
            raise BindError(f"404: pods {name!r} not found")
        if pod["spec"].get("nodeName"):
            raise BindError(f"409: pod {name} is already assigned to node {pod['spec']['nodeName']}")
        pod["spec"]["nodeName"] = node
        pod["status"]["phase"] = "Running"
        self.put_pod(pod)

    async def evict(self, namespace: str, name: str) -> None:
        self.evicted.append(f"{namespace}/{name}")
        self.delete_pod(f"{namespace}/{name}")

    async def get_leaderworkerset(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.leaderworkersets.get(f"{namespace}/{name}")


@dataclass
class Group:
    key: str  # the extender's group key
    members: list[str]  # pod keys, in creation order (LWS workers appear later)
    size: int
    lws: str | None = None  # "namespace/name" of its LeaderWorkerSet
    worker_gpus: int = 0
    klass: str = constants.INFERENCE
    disturbed: bool = False  # a member deleted or evicted, or a node under it changed: partial is allowed
    pod_group: bool = False  # its size is in a PodGroup object: without it, the gang is refused, not placed


@dataclass
class Trouble:
    """What the invariants found; the test fails on the first."""

    found: list[str] = field(default_factory=list)

    def __call__(self, message: str) -> None:
        self.found.append(message)
        raise AssertionError(message)


class ClusterModel(RuleBasedStateMachine):
    """Random cluster histories around one extender. Subclasses set HTTP to drive it over real HTTP."""

    HTTP = False
    # Counts over every history run in this process (bench/extender_model.py reports them).
    totals: dict[str, int] = defaultdict(int)

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.api = FakeApi()
        self.names = itertools.count()
        self.groups: dict[str, Group] = {}
        self.clock = 0.0  # seconds added to the real clock for expiry
        # Nodes exempt from the double-booking check while the cluster itself overcommits them, each with the pods
        # bound there when that began: resized below what their pods held (shrunk), or bound to while a change of
        # theirs was still on its way to the extender (lagged). The exemption ends once those pods are all gone
        # from the node and the extender has seen everything since (`_lift_exemptions`).
        self.shrunk: dict[str, set[str]] = {}
        self.lagged: dict[str, set[str]] = {}
        self.trouble = Trouble()
        self.calls = 0
        self.client: TestClient | None = None
        self.server: ExtenderServer | None = None
        for _ in range(3):
            self._add_node(8)
        self._start_extender()

    # ------------------------------------------------------------------------------------------ extender
    def _start_extender(self) -> None:
        view = ClusterView()
        view.replace_all(list(copy.deepcopy(self.api.nodes).values()), list(copy.deepcopy(self.api.pods).values()))
        self._list_pod_groups(view)
        self.api.events.clear()
        if self.HTTP:
            if self.client is not None:
                self.loop.run_until_complete(self.client.close())
            self.server = ExtenderServer(POLICY, view, self.api)
            self.server.scaffold.companions.clear()
            self.scheduler = self.server.scheduler
            self.client = TestClient(TestServer(self.server.app()), loop=self.loop)
            self.loop.run_until_complete(self.client.start_server())
        else:
            self.scheduler = Scheduler(POLICY, view, self.api)
        self.view = view
        self.loop.run_until_complete(self.scheduler.describe_missing_members())  # its first maintenance pass

    def _list_pod_groups(self, view: ClusterView) -> None:
        for api in (NATIVE, COSCHED):
            view.pod_groups.replace(api, [copy.deepcopy(o) for o in self.api.pod_groups.values() if o["apiVersion"] == api])

    def teardown(self) -> None:
        self.totals["histories"] += 1
        if self.client is not None:
            self.loop.run_until_complete(self.client.close())
        self.loop.close()

    def _call(self, verb: str, body: dict[str, Any]) -> Any:
        """One extender call, as kube-scheduler makes it; never a 5xx, never an internal error."""
        self.calls += 1
        self.totals[f"calls:{verb}"] += 1
        if self.HTTP:
            async def post() -> tuple[int, Any]:
                response = await self.client.post(f"/{verb}", data=json.dumps(body), headers={"Content-Type": "application/json"})
                return response.status, await response.json()

            status, answer = self.loop.run_until_complete(post())
            if status >= 500 or (isinstance(answer, dict) and "internal error" in (answer.get("Error") or "")):
                self.trouble(f"{verb} answered {status}: {answer}")
            return answer
        if verb == "filter":
            answer = self.loop.run_until_complete(self.scheduler.filter(body["Pod"], body["NodeNames"]))
            result = {"NodeNames": answer.fits, "FailedNodes": answer.failed, "FailedAndUnresolvableNodes": answer.unresolvable}
        elif verb == "prioritize":
            answer = self.scheduler.prioritize(body["Pod"], body["NodeNames"])
            result = [{"Host": n, "Score": int(s)} for n, s in zip(answer.names, answer.scores)]
        elif verb == "bind":
            answer = self.loop.run_until_complete(self.scheduler.bind(body["PodNamespace"], body["PodName"], body["PodUID"], body["Node"]))
            result = {"Error": answer.error}
        else:
            victims = {n: [p["UID"] for p in v["Pods"]] for n, v in body["NodeNameToMetaVictims"].items()}
            answer = self.scheduler.preempt(body["Pod"], victims)
            for key in answer.also_evict:
                self.loop.run_until_complete(self.scheduler.evict(key))
            result = {"NodeNameToMetaVictims": {n: {"Pods": [{"UID": u} for u in uids]} for n, uids in answer.victims.items()},
                      "also": answer.also_evict}
        return result

    # ------------------------------------------------------------------------------------------- objects
    def _add_node(self, gpus: int, pool: str | None = None) -> str:
        name = f"node-{next(self.names)}"
        labels = {"infergate.io/rack": f"rack-{len(self.api.nodes) % 2}"}
        if pool:
            labels["pool"] = pool
        self.api.put_node(node_object(name, gpus=gpus, **labels))
        return name

    def _new_pod(self, gpus: int = 0, share: int = 0, klass: str = constants.INFERENCE, annotations: dict[str, str] | None = None,
                 labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
        name = f"p{next(self.names)}"
        obj = pod_object(name, gpus=gpus, share=share, uid=f"uid-{name}", annotations={constants.WORKLOAD_ANNOTATION: klass, **(annotations or {})}, **spec)
        obj["metadata"]["labels"] = {constants.WORKLOAD_LABEL: klass, **(labels or {})}
        return obj

    def _klass(self, key: str) -> str:
        return self.api.pods[key]["metadata"]["labels"][constants.WORKLOAD_LABEL]

    def _disturb(self, node: str | None = None) -> None:
        for group in self.groups.values():
            group.disturbed = True

    # ------------------------------------------------------------------------------------------- rules: nodes
    @rule(gpus=st.sampled_from([4, 8]), pool=st.sampled_from([None, None, "a"]))
    def add_node(self, gpus: int, pool: str | None) -> None:
        if len(self.api.nodes) < 7:
            self._add_node(gpus, pool)

    @precondition(lambda self: len(self.api.nodes) > 1)
    @rule(data=st.data())
    def remove_node(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.api.nodes)))
        self.api.delete_node(name)
        for key, obj in list(self.api.pods.items()):  # the pod GC deletes pods bound to a deleted node
            if obj["spec"].get("nodeName") == name:
                self.api.delete_pod(key)
        self._disturb()

    @precondition(lambda self: self.api.nodes)
    @rule(data=st.data(), change=st.sampled_from(["cordon", "uncordon", "taint", "untaint", "resize"]), gpus=st.sampled_from([4, 6, 8]))
    def change_node(self, data: st.DataObject, change: str, gpus: int) -> None:
        name = data.draw(st.sampled_from(sorted(self.api.nodes)))
        obj = copy.deepcopy(self.api.nodes[name])
        spec = obj.setdefault("spec", {})
        if change == "cordon":
            spec["unschedulable"] = True
        elif change == "uncordon":
            spec.pop("unschedulable", None)
        elif change == "taint":
            spec["taints"] = [TAINT]
        elif change == "untaint":
            spec.pop("taints", None)
        else:
            used = sum(self._milli(p) for p in self.api.pods.values() if p["spec"].get("nodeName") == name)
            if used > gpus * 1000 or self._share_indices_beyond(name, gpus):
                self.shrunk[name] = self._bound_on(name)
            obj["status"]["allocatable"]["nvidia.com/gpu"] = str(gpus)
        self.api.put_node(obj)
        self._disturb()

    # -------------------------------------------------------------------------------------------- rules: pods
    @rule(gpus=st.sampled_from([0, 1, 2, 4, 8]), share=st.sampled_from([250, 500]), klass=st.sampled_from(list(PRIORITY)),
          where=st.sampled_from(["anywhere", "anywhere", "pool", "tolerates"]))
    def create_pod(self, gpus: int, share: int, klass: str, where: str) -> None:
        extra: dict[str, Any] = {}
        if where == "pool":
            extra["nodeSelector"] = {"pool": "a"}
        elif where == "tolerates":
            extra["tolerations"] = [TOLERATION]
        self.api.put_pod(self._new_pod(gpus=gpus, share=0 if gpus else share, klass=klass, **extra))

    @rule(size=st.integers(2, 3), shapes=st.lists(st.sampled_from([1, 2, 4, 8]), min_size=3, max_size=3),
          klass=st.sampled_from(list(PRIORITY)), kind=st.sampled_from(["infergate", "lws", "lws-ready", "native", "cosched"]),
          tolerates=st.booleans(), beyond_quorum=st.sampled_from([0, 0, 1]))
    def create_gang(self, size: int, shapes: list[int], klass: str, kind: str, tolerates: bool, beyond_quorum: int) -> None:
        if sum(1 for p in self.api.pods.values() if not p["spec"].get("nodeName")) > 12:
            return
        extra: dict[str, Any] = {"tolerations": [TOLERATION]} if tolerates else {}
        name = f"g{next(self.names)}"
        if kind in ("infergate", "native", "cosched"):
            members = []
            # A PodGroup's minCount is a quorum: its controller may create more pods than that.
            for i in range(size + (beyond_quorum if kind != "infergate" else 0)):
                if kind == "infergate":
                    annotations = {constants.GROUP_ANNOTATION: name, constants.GROUP_SIZE_ANNOTATION: str(size)}
                    obj = self._new_pod(gpus=shapes[i], klass=klass, annotations=annotations, **extra)
                elif kind == "native":  # Kubernetes' own PodGroup, named in the pod's spec
                    obj = self._new_pod(gpus=shapes[i % 3], klass=klass, schedulingGroup={"podGroupName": name}, **extra)
                else:  # scheduler-plugins' PodGroup, named by a label
                    obj = self._new_pod(gpus=shapes[i % 3], klass=klass, labels={constants.POD_GROUP_LABEL: name}, **extra)
                members.append(obj)
            self.groups[f"ml/{name}"] = Group(f"ml/{name}", [pod_key(m) for m in members], size, klass=klass,
                                              pod_group=kind != "infergate")
            if kind == "native":
                self.api.put_pod_group({"apiVersion": NATIVE, "kind": "PodGroup", "metadata": {"name": name, "namespace": "ml"},
                                        "spec": {"schedulingPolicy": {"gang": {"minCount": size}}}})
            elif kind == "cosched":
                self.api.put_pod_group({"apiVersion": COSCHED, "kind": "PodGroup", "metadata": {"name": name, "namespace": "ml"},
                                        "spec": {"minMember": size}})
            for obj in members:
                self.api.put_pod(obj)
            return
        # A LeaderWorkerSet: its leader now; its workers (with the worker template's shape) once the leader
        # exists (LeaderCreated) or is bound (LeaderReady), by the controller rule below.
        def template(gpus: int) -> dict[str, Any]:
            return {"metadata": {}, "spec": {"containers": [{"name": "w", "image": "x", "resources": {
                "limits": {"nvidia.com/gpu": str(gpus)}, "requests": {"cpu": "1", "nvidia.com/gpu": str(gpus)}}}], **extra}}

        templates = {"size": size, "workerTemplate": template(shapes[1])}
        if shapes[0] != shapes[1]:
            templates["leaderTemplate"] = template(shapes[0])
        self.api.leaderworkersets[f"ml/{name}"] = {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet",
                                                   "metadata": {"name": name, "namespace": "ml"},
                                                   "spec": {"leaderWorkerTemplate": templates}}
        leader = self._lws_pod(name, 0, size, shapes[0], klass, extra)
        self.groups[f"ml/{name}-0"] = Group(f"ml/{name}-0", [pod_key(leader)], size, f"ml/{name}", shapes[1], klass)
        self.groups[f"ml/{name}-0"].lws_ready = kind == "lws-ready"  # type: ignore[attr-defined]
        self.api.put_pod(leader)

    def _lws_pod(self, name: str, rank: int, size: int, gpus: int, klass: str, extra: dict[str, Any]) -> dict[str, Any]:
        obj = self._new_pod(gpus=gpus, klass=klass, annotations={constants.LWS_SIZE_ANNOTATION: str(size)}, labels={
            constants.LWS_NAME_LABEL: name, constants.LWS_GROUP_INDEX_LABEL: "0", constants.LWS_WORKER_INDEX_LABEL: str(rank)}, **extra)
        obj["metadata"]["name"] = f"{name}-0" if rank == 0 else f"{name}-0-{rank}"
        return obj

    @rule()
    def lws_controller(self) -> None:
        for group in self.groups.values():
            if group.lws is None or len(group.members) >= group.size or group.members[0] not in self.api.pods:
                continue
            leader = self.api.pods[group.members[0]]
            if getattr(group, "lws_ready", False) and not leader["spec"].get("nodeName"):
                continue
            name = group.lws.split("/", 1)[1]
            extra = {"tolerations": leader["spec"]["tolerations"]} if leader["spec"].get("tolerations") else {}
            for rank in range(1, group.size):
                worker = self._lws_pod(name, rank, group.size, group.worker_gpus, group.klass, extra)
                group.members.append(pod_key(worker))
                self.api.put_pod(worker)

    @precondition(lambda self: self.api.pods)
    @rule(data=st.data())
    def delete_pod(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.api.pods)))
        self.api.delete_pod(key)
        for group in self.groups.values():
            if key in group.members:
                group.disturbed = True

    @precondition(lambda self: self.api.pod_groups)
    @rule(data=st.data())
    def delete_pod_group(self, data: st.DataObject) -> None:
        """Its members are now of a missing PodGroup: those waiting are refused with a reason, none is bound."""
        key = data.draw(st.sampled_from(sorted(self.api.pod_groups)))
        self.api.delete_pod_group(key)
        if key in self.groups:
            self.groups[key].disturbed = True

    # --------------------------------------------------------------------------------------- rules: the watch
    @rule(count=st.integers(1, 30))
    def deliver_events(self, count: int) -> None:
        events, self.api.events = self.api.events[:count], self.api.events[count:]
        for kind, obj in events:
            if kind == "node":
                self.view.apply_node(obj)
            elif kind == "node-delete":
                self.view.delete_node(obj)
            elif kind == "pod":
                self.view.apply_pod(obj)
            elif kind == "podgroup":
                self.view.pod_groups.apply(obj)
            elif kind == "podgroup-delete":
                self.view.pod_groups.delete(obj)
            else:
                self.view.delete_pod(obj)

    @rule()
    def relist(self) -> None:
        self.view.replace_all(list(copy.deepcopy(self.api.nodes).values()), list(copy.deepcopy(self.api.pods).values()))
        self._list_pod_groups(self.view)
        self.api.events.clear()

    @rule()
    def restart_extender(self) -> None:
        # The documented gap (docs/guarantees.md): members of a partly bound group with no reserved node recorded
        # on them (created after its first binding and not filtered since) are planned again at the relist, and
        # may find their room taken by another group planned again at the same relist.
        for group in self.groups.values():
            live = [self.api.pods[k] for k in group.members if k in self.api.pods]
            bound = [p for p in live if p["spec"].get("nodeName")]
            unrecorded = [p for p in live if not p["spec"].get("nodeName")
                          and constants.RESERVED_NODE_ANNOTATION not in (p["metadata"].get("annotations") or {})]
            if bound and (unrecorded or len(live) < group.size):
                group.disturbed = True
        self._start_extender()

    @rule(seconds=st.sampled_from([1.0, 60.0, 200.0]))
    def time_passes(self, seconds: float) -> None:
        self.clock += seconds
        self.loop.run_until_complete(self.scheduler.expire(now=time.monotonic() + self.clock))

    # --------------------------------------------------------------------------------- rules: kube-scheduler
    def _kube_filters(self, pod: dict[str, Any], resources: bool = True) -> list[str]:
        """The nodes kube-scheduler's own filters pass: NodeUnschedulable, TaintToleration, NodeAffinity, and
        NodeResourcesFit on whole GPUs (its cache is the API's; shares are ignoredByScheduler)."""
        placement = pod_placement(pod["spec"])
        wanted = self._milli(pod) // 1000
        held: dict[str, int] = defaultdict(int)
        for other in self.api.pods.values():
            if other["spec"].get("nodeName"):
                held[other["spec"]["nodeName"]] += self._milli(other) // 1000
        return [name for name, obj in self.api.nodes.items()
                if placement.why_not(name, obj["metadata"].get("labels") or {}, tuple(t for t in node_taints(obj) if t.effect in ("NoSchedule", "NoExecute"))) is None
                and (not resources or held[name] + wanted <= int(obj["status"]["allocatable"]["nvidia.com/gpu"]))]

    def _pending(self) -> list[str]:
        return [k for k, p in self.api.pods.items() if not p["spec"].get("nodeName") and not p["spec"].get("schedulingGates")]

    def _nodes_lag(self) -> bool:
        """Has the extender yet to see a change of a node? Its plans may then use a node kube-scheduler no
        longer has, or miss one it has: a group planned meanwhile may end partly bound (a node went away
        under it), as with any node lost under a group."""
        return any(kind in ("node", "node-delete") for kind, _ in self.api.events)

    def _schedule(self, key: str) -> None:
        pod = copy.deepcopy(self.api.pods[key])
        if self._nodes_lag():
            for group in self.groups.values():
                if key in group.members:
                    group.disturbed = True
        names = self._kube_filters(pod)
        if not names:
            return
        result = self._call("filter", {"Pod": pod, "NodeNames": names})
        if not result["NodeNames"]:
            return
        if not set(result["NodeNames"]) <= set(names):
            self.trouble(f"filter of {key} passed nodes it was not given: {result['NodeNames']}")
        scores = self._call("prioritize", {"Pod": pod, "NodeNames": result["NodeNames"]})
        best = max(scores, key=lambda s: s["Score"])["Host"]
        if self._nodes_lag():
            # bound while the extender's idea of the node may be out of date
            self.lagged[best] = self.lagged.get(best, set()) | self._bound_on(best) | {key}
        answer = self._call("bind", {"PodName": pod["metadata"]["name"], "PodNamespace": "ml", "PodUID": pod["metadata"]["uid"], "Node": best})
        self.totals["binds" if not answer["Error"] else "binds refused"] += 1

    @rule()
    def scheduling_cycle(self) -> None:
        for key in self._pending():
            if key in self.api.pods:
                self._schedule(key)

    @precondition(lambda self: self._pending())
    @rule(data=st.data())
    def preemption(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(self._pending()))
        pod = copy.deepcopy(self.api.pods[key])
        mine = PRIORITY[self._klass(key)]
        candidates = {}
        for name in self._kube_filters(pod):
            victims = [p for p in self.api.pods.values() if p["spec"].get("nodeName") == name and PRIORITY[p["metadata"]["labels"][constants.WORKLOAD_LABEL]] < mine]
            if victims:
                candidates[name] = {"Pods": [{"UID": v["metadata"]["uid"]} for v in victims], "NumPDBViolations": 0}
        if not candidates:
            return
        before = set(self.api.evicted)
        answer = self._call("preempt", {"Pod": pod, "NodeNameToMetaVictims": candidates})
        if self.HTTP:  # the evictions of the victims' gangs run in the server's background
            async def evictions() -> None:
                await asyncio.gather(*self.server.scaffold.background)

            self.loop.run_until_complete(evictions())
        by_uid = {p["metadata"]["uid"]: k for k, p in self.api.pods.items()}
        chosen = [by_uid[v["UID"]] for victims in answer["NodeNameToMetaVictims"].values() for v in victims["Pods"] if v["UID"] in by_uid]
        evicted = chosen + [k for k in self.api.evicted if k not in before] + list(answer.get("also", []))
        if self._klass(key) == constants.TRAINING:
            for victim in evicted:
                if victim in self.api.pods and self._klass(victim) == constants.INFERENCE or victim in before:
                    self.trouble(f"training pod {key} preempts inference pod {victim}")
        self.totals["preemptions answered"] += 1
        self.totals["preemptions with victims"] += bool(chosen)
        for victim in chosen:  # kube-scheduler deletes the victims it was told
            self.api.delete_pod(victim)
        self._disturb()

    # ----------------------------------------------------------------------------------------- settling
    @rule()
    def settle(self) -> None:
        """Everything delivered, reservations past their time, several scheduling cycles: every gang that fits
        on empty nodes it may use is placed whole."""
        self.deliver_events(10**6)
        self.time_passes(300.0)
        for _ in range(3):
            self.lws_controller()
            self.scheduling_cycle()
            self.deliver_events(10**6)
        self._every_fitting_gang_is_placed()

    def _every_fitting_gang_is_placed(self) -> None:
        state = self.view.state
        for group in self.groups.values():
            live = [k for k in group.members if k in self.api.pods]
            if len(live) == group.size and all(self.api.pods[k]["spec"].get("nodeName") for k in live):
                self.totals["gangs placed whole (seen at settle)"] += 1
            if len(live) < group.size or any(self.api.pods[k]["spec"].get("nodeName") for k in live):
                continue
            if group.pod_group and group.key not in self.api.pod_groups:
                continue
            needs = sorted(((int(self._milli(self.api.pods[k]) / 1000), set(self._kube_filters(self.api.pods[k], resources=False))) for k in live), key=lambda x: -x[0])
            if len({frozenset(allowed) for _, allowed in needs}) > 1:
                continue  # members with different nodes allowed: a matching problem the plan does not promise
            empty = [n for n in needs[0][1] if state.has_node(n) and not state.pods_on(n)
                     and int(state.gpu_count[state.row(n)]) > 0 and n not in self.shrunk]
            sizes = sorted((int(state.gpu_count[state.row(n)]) for n in empty), reverse=True)
            if len(sizes) >= len(needs) and all(s >= need for s, (need, _) in zip(sizes, needs)):
                reasons = self._call("filter", {"Pod": self.api.pods[live[0]], "NodeNames": sorted(needs[0][1])})
                self.trouble(f"gang {group.key} fits on empty nodes {empty} but is not placed: {reasons}")

    # ---------------------------------------------------------------------------------------- invariants
    @staticmethod
    def _milli(pod: dict[str, Any]) -> int:
        limits = pod["spec"]["containers"][0]["resources"].get("limits") or {}
        return int(limits.get("nvidia.com/gpu", 0)) * 1000 + int(limits.get(constants.GPU_SHARE_RESOURCE, 0))

    def _share_indices_beyond(self, name: str, gpus: int) -> bool:
        return any(int((p["metadata"].get("annotations") or {}).get(constants.GPU_INDEX_ANNOTATION, -1)) >= gpus
                   for p in self.api.pods.values() if p["spec"].get("nodeName") == name)

    def _bound_on(self, name: str) -> set[str]:
        return {k for k, p in self.api.pods.items() if p["spec"].get("nodeName") == name}

    def _lift_exemptions(self) -> None:
        if self.api.events:
            return
        for exempt in (self.shrunk, self.lagged):
            for name, pods in list(exempt.items()):
                if not pods & self._bound_on(name):
                    del exempt[name]
                    self.totals["exemptions lifted"] += 1

    @invariant()
    def no_gpu_is_given_twice(self) -> None:
        self.totals["steps checked"] += 1
        self._lift_exemptions()
        by_node: dict[str, int] = defaultdict(int)
        by_index: dict[tuple[str, int], int] = defaultdict(int)
        for p in self.api.pods.values():
            where = p["spec"].get("nodeName")
            if where:
                by_node[where] += self._milli(p)
                index = (p["metadata"].get("annotations") or {}).get(constants.GPU_INDEX_ANNOTATION)
                if index is not None:
                    by_index[(where, int(index))] += self._milli(p)
        for name, milli in by_node.items():
            obj = self.api.nodes.get(name)
            if obj is None or name in self.shrunk or name in self.lagged:
                continue
            capacity = int(obj["status"]["allocatable"]["nvidia.com/gpu"]) * 1000
            if milli > capacity:
                self.trouble(f"node {name}: pods bound there hold {milli}m GPU of {capacity}m")
        for (name, index), milli in by_index.items():
            if name in self.api.nodes and name not in self.shrunk and name not in self.lagged:
                if milli > 1000 or index >= int(self.api.nodes[name]["status"]["allocatable"]["nvidia.com/gpu"]):
                    self.trouble(f"node {name}: GPU {index} given {milli}m")
        state = self.view.state
        for row in state.rows().tolist():
            name = state.name_of(row)
            if name in self.shrunk or name in self.lagged:
                continue
            count = int(state.gpu_count[row])
            if (state.gpu_free[row, :count] < 0).any() and not self._reported_overcommit(name):
                self.trouble(f"the extender counts more than a whole GPU on node {name}: {state.free_summary(name)}")
            if any(i >= count for a in state.pods_on(name) for i in a.gpu_indices):
                self.trouble(f"the extender holds a GPU index node {name} does not have")

    def _reported_overcommit(self, name: str) -> bool:
        """The view trails the API: what it counts may be a pod bound, deleted and bound again meanwhile."""
        return bool(self.api.events)

    @invariant()
    def no_group_is_left_partly_bound(self) -> None:
        for group in self.groups.values():
            if group.disturbed:
                continue
            live = [k for k in group.members if k in self.api.pods]
            bound = [k for k in live if self.api.pods[k]["spec"].get("nodeName")]
            if bound and len(live) >= group.size > len(bound) and group.key not in self.scheduler.gangs.reservations:
                self.trouble(f"gang {group.key} is partly bound ({len(bound)} of {group.size}) with nothing held for the rest")

    @invariant()
    def every_reservation_is_on_a_node_that_can_host_it(self) -> None:
        state = self.view.state
        for group, reservation in self.scheduler.gangs.reservations.items():
            for slot in reservation.slots:
                if slot.bound:
                    continue
                if not state.has_node(slot.node):
                    self.trouble(f"gang {group} holds a place on node {slot.node}, which the extender does not know")
                held = state.allocation(slot.key)
                if held is None or held.node != slot.node:
                    self.trouble(f"gang {group}: its place on {slot.node} holds nothing")
                obj = state.node_spec(slot.node)
                if slot.placement is not None and slot.placement.why_not(slot.node, obj.labels, obj.taints) is not None:
                    self.trouble(f"gang {group} holds node {slot.node}, which its member may not use")
