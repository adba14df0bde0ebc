"""`infergate render`: objects as the webhook would admit them, without a cluster.

It builds the same AdmissionRequest the API server would send and runs the same decision code as the server.
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


class RenderInputError(ValueError):
    pass


@dataclass
class Rendered:
    source: str  # "FILE document N"
    original: dict[str, Any]
    admitted: dict[str, Any]
    decision: Decision

    @property
    def label(self) -> str:
        metadata = self.original.get("metadata") or {}
        name = metadata.get("name") or metadata.get("generateName") or "(unnamed)"
        return f"{self.original.get('kind', 'object')} {name}"


def read_objects(path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every object in a YAML or JSON file: multi-document, and `kind: List` unpacked."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        documents = list(yaml.safe_load_all(text))
    except OSError as exc:
        raise RenderInputError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise RenderInputError(f"{path}: not valid YAML: {exc}") from None
    for index, document in enumerate(documents, start=1):
        if document is None:
            continue
        where = f"{path} document {index}"
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
    group, _, version = str(obj.get("apiVersion", "")).rpartition("/")
    metadata = obj.get("metadata") or {}
    return AdmissionRequest(
        uid=str(uuid.uuid4()),
        kind=GroupVersionKind(group=group, version=version, kind=obj["kind"]),
        operation="CREATE",
        namespace=metadata.get("namespace") or namespace or "default",
        name=metadata.get("name"),
        object=obj,
    )


def render_object(source: str, obj: dict[str, Any], policy: Policy, namespace: str | None = None) -> Rendered:
    original = copy.deepcopy(obj)
    request = admission_request(copy.deepcopy(obj), namespace)
    decision = decide(request, policy, mutate=True)
    admitted = jsonpatch.apply_patch(original, decision.patch) if decision.patch else copy.deepcopy(original)
    return Rendered(source, original, admitted, decision)


def render_files(paths: list[str], policy: Policy, namespace: str | None = None) -> list[Rendered]:
    return [render_object(source, obj, policy, namespace) for path in paths for source, obj in read_objects(path)]


def main(paths: list[str], policy: Policy, *, as_patch: bool, namespace: str | None) -> int:
    try:
        results = render_files(paths, policy, namespace)
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
