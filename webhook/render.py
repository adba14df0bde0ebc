"""`infergate render`: objects as the webhook would admit them, without a cluster.

It builds the same AdmissionRequest the API server would send and runs the same decision code as the server.
Workloads (Deployments, LeaderWorkerSets, JobSets, ...) are never sent to the webhook; their pods are, so each
of their pod templates is shown as the webhook would admit the first pod made from it (webhook/templates.py).
"""

from __future__ import annotations

import copy
import json
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonpatch
import yaml

from policies.loader import Policy
from webhook.admission import Decision, decide
from webhook.review import AdmissionRequest, GroupVersionKind
from webhook.templates import as_pod, template_pods, write_back


# Deeper objects are refused before any code walks them: Kubernetes objects are a few dozen levels deep at most.
MAX_DEPTH = 100


class RenderInputError(ValueError):
    pass


def _too_deep(document: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether the document nests deeper than `limit`, checked without recursion."""
    stack = [(document, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(node, dict):
            stack.extend((child, depth + 1) for child in node.values())
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in node)
    return False


@dataclass
class Rendered:
    source: str  # "FILE document N"
    original: dict[str, Any]
    admitted: dict[str, Any]
    decision: Decision

    @property
    def label(self) -> str:
        return label(self.original)


def label(obj: dict[str, Any]) -> str:
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    name = metadata.get("name") or metadata.get("generateName") or "(unnamed)"
    return f"{obj.get('kind', 'object')} {name}"


def read_objects(path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every object in a YAML or JSON file: multi-document, and `kind: List` unpacked."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        documents = list(yaml.safe_load_all(text))
    except OSError as exc:
        raise RenderInputError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise RenderInputError(f"{path}: not valid YAML: {exc}") from None
    except RecursionError:
        raise RenderInputError(f"{path}: nested too deeply to be a Kubernetes object") from None
    except UnicodeDecodeError as exc:
        raise RenderInputError(f"{path}: not UTF-8 text: {exc.reason}") from None
    for index, document in enumerate(documents, start=1):
        if document is None:
            continue
        where = f"{path} document {index}"
        if _too_deep(document):
            raise RenderInputError(f"{where}: nested deeper than {MAX_DEPTH} levels; not a Kubernetes object")
        if not isinstance(document, dict) or not isinstance(document.get("kind"), str):
            raise RenderInputError(f"{where}: not a Kubernetes object (needs apiVersion and kind)")
        if document["kind"] == "List" or document["kind"].endswith("List") and "items" in document:
            for item_index, item in enumerate(document.get("items") or []):
                if not isinstance(item, dict):
                    raise RenderInputError(f"{where} items[{item_index}]: not a Kubernetes object")
                yield f"{where} items[{item_index}]", item
        else:
            yield where, document


def admission_request(obj: dict[str, Any], namespace: str | None) -> AdmissionRequest:
    """What the API server would send; a malformed namespace or name is left for decide() to name."""
    group, _, version = str(obj.get("apiVersion", "")).rpartition("/")
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    own = metadata.get("namespace")
    name = metadata.get("name")
    return AdmissionRequest(
        uid=str(uuid.uuid4()),
        kind=GroupVersionKind(group=group, version=version, kind=obj["kind"]),
        operation="CREATE",
        namespace=(own if isinstance(own, str) else None) or namespace or "default",
        name=name if isinstance(name, str) else None,
        object=obj,
    )


def render_object(source: str, obj: dict[str, Any], policy: Policy, namespace: str | None = None) -> Rendered:
    original = copy.deepcopy(obj)
    request = admission_request(copy.deepcopy(obj), namespace)
    if request.kind.kind not in ("Pod", "InferenceService") and template_pods(obj):
        return _render_templates(source, original, request.namespace or "default", policy)
    decision = decide(request, policy, mutate=True)
    admitted = jsonpatch.apply_patch(original, decision.patch) if decision.patch else copy.deepcopy(original)
    return Rendered(source, original, admitted, decision)


def _render_templates(source: str, original: dict[str, Any], namespace: str, policy: Policy) -> Rendered:
    """A workload: each pod template as the webhook would admit the first pod its controller creates from it.
    A denial of any of them is the object's; the patch is the object's own (its templates changed)."""
    admitted = copy.deepcopy(original)
    warnings: list[str] = []
    for template in template_pods(original):
        pod = as_pod(original, template, namespace)
        request = admission_request(copy.deepcopy(pod), namespace)
        decision = decide(request, policy, mutate=True)
        warnings += [f"{template.role}: {w}" for w in decision.warnings]
        if not decision.allowed:
            decision.message = f"{template.role} (pod {template.name}): {decision.message}"
            decision.warnings = warnings
            return Rendered(source, original, original, decision)
        if template.write_back:
            write_back(admitted, template, jsonpatch.apply_patch(pod, decision.patch) if decision.patch else pod)
    patch = jsonpatch.make_patch(original, admitted).patch
    return Rendered(source, original, admitted, Decision(str(original.get("kind")), patch=patch, warnings=warnings))


def render_files(paths: list[str], policy: Policy, namespace: str | None = None) -> list[Rendered]:
    return [render_object(source, obj, policy, namespace) for path in paths for source, obj in read_objects(path)]


def _safe_render(source: str, obj: dict[str, Any], policy: Policy, namespace: str | None) -> Rendered:
    """render_object, with anything it could not handle reported as a denial of that object, never a traceback."""
    try:
        return render_object(source, obj, policy, namespace)
    except Exception as exc:  # the webhook answers such objects with a 4xx; render names them and goes on
        decision = Decision(str(obj.get("kind")), allowed=False, code=400, reason="BadRequest",
                            message=f"cannot be admitted: {type(exc).__name__}: {exc!s:.200}")
        return Rendered(source, obj, obj, decision)


def main(paths: list[str], policy: Policy, *, as_patch: bool, namespace: str | None) -> int:
    try:
        results = [_safe_render(source, obj, policy, namespace) for path in paths for source, obj in read_objects(path)]
    except RenderInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failed = False
    out: list[str] = []
    for item in results:
        for warning in item.decision.warnings:
            print(f"warning: {item.source} {item.label}: {warning}", file=sys.stderr)
        if not item.decision.allowed:
            failed = True
            field = f" (field {item.decision.field})" if item.decision.field else ""
            print(f"denied: {item.source} {item.label}{field}: {item.decision.message}", file=sys.stderr)
            continue
        if as_patch:
            out.append(json.dumps({"object": f"{item.source} {item.label}", "patch": item.decision.patch}, indent=2))
        else:
            out.append(yaml.safe_dump(item.admitted, sort_keys=False, default_flow_style=False).rstrip())
    separator = "\n" if as_patch else "\n---\n"
    if out:
        print(separator.join(out))
    return 1 if failed else 0
