"""Which nodes a pod may use at all, as kube-scheduler's node filters decide it: NodeUnschedulable,
TaintToleration, and NodeAffinity (nodeSelector and required node affinity).

kube-scheduler applies these to the pod it is scheduling before it calls the extender; the extender applies
them itself to the other members of a gang it plans at the same time, so no member is reserved a node that
kube-scheduler would never give it. No I/O; objects are read defensively (what is not shaped like the API's
types raises ConstraintError naming the field).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"
BLOCKING_EFFECTS = ("NoSchedule", "NoExecute")


class ConstraintError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Taint:
    key: str
    value: str
    effect: str


@dataclass(frozen=True, slots=True)
class Toleration:
    key: str
    operator: str  # "Equal" or "Exists"
    value: str
    effect: str  # "" tolerates every effect

    def tolerates(self, taint: Taint) -> bool:
        if self.effect and self.effect != taint.effect:
            return False
        if not self.key:  # an empty key with Exists tolerates everything
            return self.operator == "Exists"
        if self.key != taint.key:
            return False
        return self.operator == "Exists" or self.value == taint.value


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    operator: str  # In, NotIn, Exists, DoesNotExist, Gt, Lt
    values: tuple[str, ...]
    field: bool = False  # a matchFields requirement (on metadata.name)

    def matches(self, name: str, labels: Mapping[str, str]) -> bool:
        if self.field:
            value: str | None = name if self.key == "metadata.name" else None
        else:
            value = labels.get(self.key)
        op = self.operator
        if op == "In":
            return value is not None and value in self.values
        if op == "NotIn":
            return value is None or value not in self.values
        if op == "Exists":
            return value is not None
        if op == "DoesNotExist":
            return value is None
        if op in ("Gt", "Lt") and value is not None and len(self.values) == 1:
            try:
                have, bound = int(value), int(self.values[0])
            except ValueError:
                return False
            return have > bound if op == "Gt" else have < bound
        return False


@dataclass(frozen=True, slots=True)
class Placement:
    """What a pod says about the nodes it may use."""

    node_selector: tuple[tuple[str, str], ...] = ()
    terms: tuple[tuple[Requirement, ...], ...] | None = None  # required node affinity: any term, every requirement
    tolerations: tuple[Toleration, ...] = ()

    @property
    def selects(self) -> bool:
        return bool(self.node_selector) or self.terms is not None

    def why_not(self, name: str, labels: Mapping[str, str], taints: tuple[Taint, ...]) -> str | None:
        """None when the pod may use the node; else kube-scheduler's reason, in words."""
        for taint in taints:
            if taint.effect in BLOCKING_EFFECTS and not any(t.tolerates(taint) for t in self.tolerations):
                if taint.key == UNSCHEDULABLE_TAINT:
                    return "node is unschedulable (cordoned)"
                return f"node has taint {taint.key}{'=' + taint.value if taint.value else ''}:{taint.effect} the pod does not tolerate"
        for key, value in self.node_selector:
            if labels.get(key) != value:
                return f"node does not match the pod's nodeSelector {key}={value}"
        if self.terms is not None and not any(term and all(r.matches(name, labels) for r in term) for term in self.terms):
            return "node does not match the pod's required node affinity"
        return None


ANYWHERE = Placement()


def _dict(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConstraintError(f"{where}: must be an object")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConstraintError(f"{where}: must be a list")
    return value


def _str(value: Any, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ConstraintError(f"{where}: must be a string")
    return value


def node_taints(node: dict[str, Any]) -> tuple[Taint, ...]:
    """The node's taints, with a cordon (spec.unschedulable) read as kube-scheduler reads it: the
    node.kubernetes.io/unschedulable:NoSchedule taint."""
    spec = _dict(node.get("spec"), "spec")
    taints = []
    for i, taint in enumerate(_list(spec.get("taints"), "spec.taints")):
        taint = _dict(taint, f"spec.taints[{i}]")
        taints.append(Taint(_str(taint.get("key"), f"spec.taints[{i}].key"), _str(taint.get("value"), f"spec.taints[{i}].value"),
                            _str(taint.get("effect"), f"spec.taints[{i}].effect")))
    if spec.get("unschedulable") is True and not any(t.key == UNSCHEDULABLE_TAINT for t in taints):
        taints.append(Taint(UNSCHEDULABLE_TAINT, "", "NoSchedule"))
    return tuple(taints)


def pod_placement(spec: dict[str, Any]) -> Placement:
    """The nodeSelector, required node affinity and tolerations of a pod spec (or a pod template's spec)."""
    selector = _dict(spec.get("nodeSelector"), "spec.nodeSelector")
    node_selector = tuple(sorted((str(k), _str(v, f"spec.nodeSelector[{k}]")) for k, v in selector.items()))
    tolerations = []
    for i, t in enumerate(_list(spec.get("tolerations"), "spec.tolerations")):
        t = _dict(t, f"spec.tolerations[{i}]")
        where = f"spec.tolerations[{i}]"
        tolerations.append(Toleration(_str(t.get("key"), f"{where}.key"), _str(t.get("operator"), f"{where}.operator") or "Equal",
                                      _str(t.get("value"), f"{where}.value"), _str(t.get("effect"), f"{where}.effect")))
    affinity = _dict(_dict(spec.get("affinity"), "spec.affinity").get("nodeAffinity"), "spec.affinity.nodeAffinity")
    required = affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    terms: tuple[tuple[Requirement, ...], ...] | None = None
    if required is not None:
        where = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
        parsed = []
        for i, term in enumerate(_list(_dict(required, where).get("nodeSelectorTerms"), f"{where}.nodeSelectorTerms")):
            term = _dict(term, f"{where}.nodeSelectorTerms[{i}]")
            requirements = []
            for kind, is_field in (("matchExpressions", False), ("matchFields", True)):
                for j, expression in enumerate(_list(term.get(kind), f"{where}.nodeSelectorTerms[{i}].{kind}")):
                    at = f"{where}.nodeSelectorTerms[{i}].{kind}[{j}]"
                    expression = _dict(expression, at)
                    values = tuple(_str(v, f"{at}.values") for v in _list(expression.get("values"), f"{at}.values"))
                    requirements.append(Requirement(_str(expression.get("key"), f"{at}.key"), _str(expression.get("operator"), f"{at}.operator"),
                                                    values, is_field))
            parsed.append(tuple(requirements))
        terms = tuple(parsed)
    if not node_selector and terms is None and not tolerations:
        return ANYWHERE
    return Placement(node_selector, terms, tuple(tolerations))


def allowed_rows(state: Any, placement: Placement) -> np.ndarray | None:
    """Per row of `state` (a ClusterState): may a pod with this placement use that node? None: every node.

    Only tainted nodes are looked at one by one unless the pod selects nodes by label."""
    tainted = state.tainted[: state.capacity_rows]
    if not placement.selects and not placement.tolerations:
        return None if not tainted.any() else state.active & ~tainted
    mask = state.active.copy()
    rows = state.rows() if placement.selects else np.flatnonzero(state.active & tainted)
    for row in rows.tolist():
        mask[row] = placement.why_not(state.name_of(row), state.labels_at(row), state.taints_at(row)) is None
    return mask
