"""Deciding one AdmissionRequest: the single code path behind /mutate, /validate and `infergate render`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from policies.loader import Policy
from webhook.errors import AdmissionDenied, InvalidValue
from webhook.isvc import kserve, ome
from webhook.patch import PatchBuilder
from webhook.pod.mutator import keep_merged_args, mutate_pod
from webhook.review import AdmissionRequest
from webhook.shapes import check_object_shape, check_pod_shape

INFERENCE_SERVICES = {"ome.io": ome.admit, "serving.kserve.io": kserve.admit}


@dataclass
class Decision:
    kind: str
    allowed: bool = True
    patch: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    code: int = 200
    reason: str = ""
    message: str = ""
    field: str | None = None

    @property
    def result(self) -> str:
        if not self.allowed:
            return "denied" if self.code != 400 else "invalid"
        return "patched" if self.patch else "allowed"


def _denial(kind: str, exc: AdmissionDenied) -> Decision:
    message = exc.message if not exc.field or exc.field in exc.message else f"{exc.message} (field {exc.field})"
    return Decision(kind, allowed=False, code=exc.code, reason=exc.reason, message=message, field=exc.field)


def decide(request: AdmissionRequest, policy: Policy, *, mutate: bool) -> Decision:
    """Mutate (or only validate) the request's object. The object is edited in place when mutating."""
    kind = request.kind.kind or "unknown"
    obj = request.object
    if request.operation not in ("CREATE", "UPDATE") or obj is None:
        return Decision(kind)
    namespace = request.namespace or (obj.get("metadata") or {}).get("namespace") or "default"
    try:
        if request.kind.group == "" and kind == "Pod":
            check_pod_shape(obj)
            if request.operation == "UPDATE":
                ops = keep_merged_args(obj, request.old_object or {})
                return Decision(kind, patch=ops if mutate else [])
            mutation = mutate_pod(obj, namespace, policy)
            return Decision(kind, patch=mutation.patch if mutate else [], warnings=mutation.warnings)
        admit_isvc = INFERENCE_SERVICES.get(request.kind.group) if kind == "InferenceService" else None
        if admit_isvc is not None:
            check_object_shape(obj)
            patch = PatchBuilder(obj)
            warnings = admit_isvc(patch, namespace, policy)
            return Decision(kind, patch=patch.ops if mutate else [], warnings=warnings)
        return Decision(kind)  # the webhook configuration sends only the kinds above
    except AdmissionDenied as exc:
        if kind == "InferenceService":
            name = (obj.get("metadata") or {}).get("name", "(unnamed)")
            exc.message = f"InferenceService {namespace}/{name}: {exc.message}"
        return _denial(kind, exc)
    except ValidationError as exc:  # a shape check of the object
        first = exc.errors()[0]
        path = ".".join(str(p) for p in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        if message.startswith(path + "."):  # a check on a whole object names the exact field itself
            path, _, message = message.partition(": ")
        return _denial(kind, InvalidValue(f"{_who(kind, namespace, obj)}: {path}: {message}", path))
    except (TypeError, AttributeError, KeyError, IndexError, ValueError, RecursionError) as exc:
        # A value of a type no check above expected (the API server's schema checks run after mutating
        # webhooks, so wrongly typed custom resources do reach us): the user's input, answered with a 400.
        return _denial(kind, InvalidValue(
            f"{_who(kind, namespace, obj)}: a field has a value of the wrong type ({type(exc).__name__}: {exc!s:.120}); "
            f"check the object against its schema"))


def _who(kind: str, namespace: str, obj: dict[str, Any]) -> str:
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    name = metadata.get("name") or (str(metadata.get("generateName") or "") + "*" if metadata.get("generateName") else "(unnamed)")
    return f"{'pod' if kind == 'Pod' else kind} {namespace}/{name}"  # as the pod planner names pods
