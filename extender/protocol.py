"""The kube-scheduler extender wire format (k8s.io/kube-scheduler/extender/v1): Go field names, PascalCase."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

try:  # orjson encodes a filter answer for thousands of nodes ten times faster than the standard library
    import orjson
except ImportError:  # pragma: no cover - the standard library gives the same bytes' meaning, only slower
    orjson = None


def encode(answer: Any) -> bytes:
    """An answer as compact JSON."""
    if orjson is not None:
        return orjson.dumps(answer)
    return json.dumps(answer, separators=(",", ":")).encode()


def decode(data: bytes | str) -> Any:
    """JSON from the API server (list pages, watch events): orjson when it takes it, else the standard
    library, which also gives the error for what is not JSON."""
    if orjson is not None:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # what orjson refuses (NaN, integers beyond 64 bits) the standard library may still read
    return json.loads(data)


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


class NodeList(_Wire):
    items: list[dict[str, Any]] = Field(default_factory=list)


class ExtenderArgs(_Wire):
    Pod: dict[str, Any]
    Nodes: NodeList | None = None
    NodeNames: list[str] | None = None

    def candidate_names(self) -> list[str]:
        if self.NodeNames is not None:
            return self.NodeNames
        if self.Nodes is not None:
            return [str((n.get("metadata") or {}).get("name", "")) for n in self.Nodes.items]
        return []


class ExtenderBindingArgs(_Wire):
    PodName: str = Field(min_length=1)
    PodNamespace: str = Field(min_length=1)
    PodUID: str = ""
    Node: str = Field(min_length=1)


class MetaPod(_Wire):
    UID: str


class MetaVictims(_Wire):
    Pods: list[MetaPod] = Field(default_factory=list)
    NumPDBViolations: int = 0


class Victims(_Wire):
    Pods: list[dict[str, Any]] = Field(default_factory=list)
    NumPDBViolations: int = 0


class ExtenderPreemptionArgs(_Wire):
    Pod: dict[str, Any]
    NodeNameToVictims: dict[str, Victims] | None = None
    NodeNameToMetaVictims: dict[str, MetaVictims] | None = None


def filter_result(
    args: ExtenderArgs, fits: list[str], failed: dict[str, str], unresolvable: dict[str, str] | None = None, error: str = ""
) -> dict[str, Any]:
    """Answer in the shape the request came in: NodeNames for a node-cache-capable call, else Nodes."""
    result: dict[str, Any] = {
        "FailedNodes": failed,
        "FailedAndUnresolvableNodes": unresolvable or {},
        "Error": error,
    }
    if args.NodeNames is not None or args.Nodes is None:
        result["NodeNames"] = fits
        result["Nodes"] = None
    else:
        keep = set(fits)
        items = [n for n in args.Nodes.items if (n.get("metadata") or {}).get("name") in keep]
        result["Nodes"] = {"apiVersion": "v1", "kind": "NodeList", "metadata": {}, "items": items}
        result["NodeNames"] = None
    return result
