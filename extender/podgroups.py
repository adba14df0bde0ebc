"""PodGroup objects, the two APIs that keep a gang's size (and topology) outside its pods, and what they make of
a pod's group.

- Kubernetes' own `scheduling.k8s.io/v1beta1` PodGroup (feature gate GenericWorkload): pods join through
  `spec.schedulingGroup.podGroupName`; `spec.schedulingPolicy.gang.minCount` is the gang's size, a `basic`
  policy is no gang at all; `spec.schedulingConstraints.topology[].key` are node labels whose one value every
  member must share.
- scheduler-plugins coscheduling `scheduling.x-k8s.io/v1alpha1` PodGroup: pods join through the
  `scheduling.x-k8s.io/pod-group` label; `spec.minMember` is the size.

No I/O: the watch (extender/sources.py) and the snapshot loader feed `PodGroups`, and the scheduler asks it to
`resolve` each gang member's facts before placing it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from extender.podspec import PodFacts
from infergate import constants

# Members beyond this are a broken object, not a gang (the gang book refuses to plan more anyway).
MAX_MIN_COUNT = 1_000_000

# source of a GroupIdentity -> the apiVersion of the PodGroup that gives its size
API_OF_SOURCE = {
    constants.NATIVE_POD_GROUP: constants.NATIVE_POD_GROUP_API,
    constants.COSCHEDULING_POD_GROUP: constants.COSCHEDULING_POD_GROUP_API,
}
HOW_PODS_JOIN = {
    constants.NATIVE_POD_GROUP_API: "spec.schedulingGroup.podGroupName",
    constants.COSCHEDULING_POD_GROUP_API: f"the label {constants.POD_GROUP_LABEL}",
}
SIZE_FIELD = {
    constants.NATIVE_POD_GROUP_API: "spec.schedulingPolicy.gang.minCount",
    constants.COSCHEDULING_POD_GROUP_API: "spec.minMember",
}


@dataclass(frozen=True)
class PodGroupSpec:
    """What infergate reads from one PodGroup: a gang of `size` (None: not a gang, a basic policy) with its
    required topology keys; or, for an object it cannot read, the problem naming the field."""

    api: str
    key: str  # "namespace/name"
    size: int | None = None
    topology: tuple[str, ...] = ()
    problem: str | None = None


def is_pod_group(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.get("kind") == "PodGroup" and api_of(obj) is not None


def api_of(obj: dict[str, Any]) -> str | None:
    version = obj.get("apiVersion")
    if not isinstance(version, str):
        return None
    group = version.split("/", 1)[0]
    for api in (constants.NATIVE_POD_GROUP_API, constants.COSCHEDULING_POD_GROUP_API):
        if api.split("/", 1)[0] == group:
            return api
    return None


def pod_group_key(obj: dict[str, Any]) -> str | None:
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict):
        return None
    namespace, name = metadata.get("namespace") or "default", metadata.get("name")
    if not isinstance(namespace, str) or not isinstance(name, str) or not name:
        return None
    return f"{namespace}/{name}"


def _count(who: str, field: str, value: Any) -> int | str:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_MIN_COUNT:
        return f"{who}: {field}: {value!r} is not a whole number of pods of at least 1"
    return value


def read_pod_group(obj: dict[str, Any]) -> PodGroupSpec | None:
    """The PodGroup's size and topology; None for an object with no readable name (nothing can refer to it)."""
    api, key = api_of(obj), pod_group_key(obj)
    if api is None or key is None:
        return None
    who = f"PodGroup {key} ({api})"
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return PodGroupSpec(api, key, problem=f"{who}: spec: missing")
    if api == constants.COSCHEDULING_POD_GROUP_API:
        size = _count(who, "spec.minMember", spec.get("minMember"))
        if isinstance(size, str):
            return PodGroupSpec(api, key, problem=size)
        return PodGroupSpec(api, key, size)
    policy = spec.get("schedulingPolicy")
    if not isinstance(policy, dict) or ("gang" in policy) == ("basic" in policy):
        return PodGroupSpec(api, key, problem=f"{who}: spec.schedulingPolicy: must hold exactly one of basic or gang")
    topology: list[str] = []
    constraints = spec.get("schedulingConstraints")
    terms = constraints.get("topology") if isinstance(constraints, dict) else None
    if constraints is not None and (not isinstance(constraints, dict) or not isinstance(terms or [], list)):
        return PodGroupSpec(api, key, problem=f"{who}: spec.schedulingConstraints.topology: must be a list")
    for index, term in enumerate(terms or []):
        label = term.get("key") if isinstance(term, dict) else None
        if not isinstance(label, str) or not label:
            return PodGroupSpec(api, key, problem=f"{who}: spec.schedulingConstraints.topology[{index}].key: "
                                                  f"must name a node label")
        topology.append(label)
    if "basic" in policy:
        return PodGroupSpec(api, key, None, tuple(topology))
    gang = policy.get("gang")
    size = _count(who, "spec.schedulingPolicy.gang.minCount", gang.get("minCount") if isinstance(gang, dict) else gang)
    if isinstance(size, str):
        return PodGroupSpec(api, key, problem=size)
    return PodGroupSpec(api, key, size, tuple(topology))


class PodGroups:
    """The PodGroups of the cluster, by API and "namespace/name". `served` holds the APIs whose objects this
    holds in full (listed from a cluster that serves them, or present in a snapshot): only for those is a
    missing PodGroup a problem; a pod naming a PodGroup of an API not served is planned as before PodGroups
    were read (a gang of the members that exist). `pending` holds the APIs a watch will list but has not yet:
    until it has, their gangs wait rather than be planned without their size."""

    def __init__(self) -> None:
        self.groups: dict[tuple[str, str], PodGroupSpec] = {}
        self.served: set[str] = set()
        self.pending: set[str] = set()
        # Called after each full list of an API: gangs that waited for their PodGroups (a restart lists pods
        # and PodGroups side by side, so the PodGroups often come second) can be held for now.
        self.listed_hooks: list[Callable[[], None]] = []
        # Called with a group's key when its PodGroup came, went, or changed its size or topology.
        self.changed_hooks: list[Callable[[str], None]] = []

    def apply(self, obj: dict[str, Any]) -> None:
        read = read_pod_group(obj)
        if read is not None:
            before = self.groups.get((read.api, read.key))
            self.groups[(read.api, read.key)] = read
            if before != read:
                self._changed(read.key)

    def delete(self, obj: dict[str, Any]) -> None:
        api, key = api_of(obj), pod_group_key(obj)
        if api is not None and key is not None and self.groups.pop((api, key), None) is not None:
            self._changed(key)

    def _changed(self, key: str) -> None:
        for hook in self.changed_hooks:
            hook(key)

    def replace(self, api: str, objects: list[dict[str, Any]]) -> None:
        """A full list of one API's PodGroups."""
        before = {k: self.groups.pop(k) for k in [k for k in self.groups if k[0] == api]}
        for obj in objects:
            read = read_pod_group({**obj, "apiVersion": obj.get("apiVersion") or api})
            if read is not None:
                self.groups[(read.api, read.key)] = read
        for known, spec in before.items():
            if self.groups.get(known) != spec:
                self._changed(known[1])
        self.served.add(api)
        self.pending.discard(api)
        for hook in self.listed_hooks:
            hook()

    def withdraw(self, api: str) -> None:
        """The API is not served (any more): forget its objects."""
        self.served.discard(api)
        self.pending.discard(api)
        for known in [k for k in self.groups if k[0] == api]:
            del self.groups[known]

    def resolve(self, facts: PodFacts, bound_members: int = 0) -> PodFacts | str:
        """The pod's facts with its group as its PodGroup says (size, topology), or without a group where the
        PodGroup makes it no gang (a basic policy; a member beyond a quorum already bound); a str with what a
        person must fix where the PodGroup is missing or unreadable. Facts of other groups come back as they
        are. `bound_members`: the group's members already on a node, other than this pod."""
        group = facts.group
        api = API_OF_SOURCE.get(group.source) if group is not None else None
        if api is None:
            return facts
        assert group is not None
        found = self.groups.get((api, group.key))
        if found is None:
            if api in self.pending:
                return f"pod {facts.key}: the extender has not listed the PodGroups of {api} yet; it places the gang once it has"
            if api not in self.served:
                return facts
            namespace, name = group.key.split("/", 1)
            return (f"pod {facts.key} joins PodGroup {name} ({api}) through {HOW_PODS_JOIN[api]}, and namespace "
                    f"{namespace} has no such PodGroup: create it (its {SIZE_FIELD[api]} is the gang's size) or "
                    f"correct the name")
        if found.problem is not None:
            return f"pod {facts.key}: {found.problem}; correct the PodGroup"
        if found.size is None or facts.node is None and bound_members >= found.size:
            return replace(facts, group=None)  # no gang, or its quorum runs already: this pod places alone
        return replace(facts, group=replace(group, size=found.size, topology=found.topology))
