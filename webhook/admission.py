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
# KServe's docs still carry v1alpha2 objects (spec.default.predictor) that KServe v0.15 no longer serves; the
# shipped configuration sends only v1beta1, and render passes the alpha versions through.
OLD_VERSION_PREFIX = "v1alpha"


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


# A message quotes the user's values; a 100 kB annotation is not repeated back whole.
MAX_MESSAGE = 2000


def _shortened(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE else f"{text[:MAX_MESSAGE]}... ({len(text)} characters)"


def _denial(kind: str, exc: AdmissionDenied) -> Decision:
    message = exc.message if not exc.field or exc.field in exc.message else f"{exc.message} (field {exc.field})"
    message = _shortened(message)
    return Decision(kind, allowed=False, code=exc.code, reason=exc.reason, message=message, field=exc.field)


def decide(request: AdmissionRequest, policy: Policy, *, mutate: bool) -> Decision:
    """Mutate (or only validate) the request's object. The object is edited in place when mutating."""
    decision = _decide(request, policy, mutate=mutate)
    decision.warnings = [_shortened(w) for w in decision.warnings]
    return decision


def _decide(request: AdmissionRequest, policy: Policy, *, mutate: bool) -> Decision:
    kind = request.kind.kind or "unknown"
    obj = request.object
    if request.operation not in ("CREATE", "UPDATE") or obj is None:
        return Decision(kind)
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    own_namespace = metadata.get("namespace")
    namespace = request.namespace or (own_namespace if isinstance(own_namespace, str) else None) or "default"
    try:
        if request.kind.group == "" and kind == "Pod":
            check_pod_shape(obj)
            if request.operation == "UPDATE":
                _check_old_pod(request.old_object)
                ops = keep_merged_args(obj, request.old_object or {})
                return Decision(kind, patch=ops if mutate else [])
            mutation = mutate_pod(obj, namespace, policy)
            return Decision(kind, patch=mutation.patch if mutate else [], warnings=mutation.warnings)
        admit_isvc = INFERENCE_SERVICES.get(request.kind.group) if kind == "InferenceService" else None
        if admit_isvc is not None and request.kind.version.startswith(OLD_VERSION_PREFIX):
            return Decision(kind, warnings=[
                f"{request.kind.group}/{request.kind.version} is not a version infergate reads ({request.kind.group}/"
                "v1beta1): passed through untouched"])
        if admit_isvc is not None:
            check_object_shape(obj)
            patch = PatchBuilder(obj)
            warnings = admit_isvc(patch, namespace, policy)
            return Decision(kind, patch=patch.ops if mutate else [], warnings=warnings)
        return Decision(kind)  # the webhook configuration sends only the kinds above
    except AdmissionDenied as exc:
        who = _who(kind, namespace, obj)
        if not exc.message.startswith(who):
            exc.message = f"{who}: {exc.message}"
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


def _check_old_pod(old: dict[str, Any] | None) -> None:
    """The stored pod of an UPDATE, as the API server sends it; a hand-made one of the wrong shape is named."""
    if not old:
        return
    try:
        check_pod_shape(old)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = "oldObject." + ".".join(str(p) for p in first["loc"])
        raise InvalidValue(f"{path}: {first['msg'].removeprefix('Value error, ')}", path) from None


def _who(kind: str, namespace: str, obj: dict[str, Any]) -> str:
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    name = metadata.get("name") or (str(metadata.get("generateName") or "") + "*" if metadata.get("generateName") else "(unnamed)")
    return f"{'pod' if kind == 'Pod' else kind} {namespace}/{name}"  # as the pod planner names pods
