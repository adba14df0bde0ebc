"""The admission.k8s.io/v1 AdmissionReview envelope: parsing requests and building responses."""

from __future__ import annotations

import base64
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

try:
    import orjson
except ImportError:  # pragma: no cover - the standard library gives the same JSON, only slower
    orjson = None  # type: ignore[assignment]

API_VERSION = "admission.k8s.io/v1"


def dumps(value: Any) -> bytes:
    """Compact JSON, UTF-8. orjson, where installed, encodes the patch and the answer of every request (the
    hot path bench/webhook_load.py measures); the JSON is the same (non-ASCII text comes as UTF-8 instead of
    \\u escapes)."""
    if orjson is not None:
        try:
            return orjson.dumps(value)
        except TypeError:  # what orjson cannot encode (e.g. an integer beyond 64 bits): the standard library can
            pass
    return json.dumps(value, separators=(",", ":")).encode()


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class GroupVersionKind(_Wire):
    group: str = ""
    version: str = ""
    kind: str = ""


class AdmissionRequest(_Wire):
    uid: str = Field(min_length=1)
    kind: GroupVersionKind
    operation: Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]
    namespace: str | None = None
    name: str | None = None
    object: dict[str, Any] | None = None
    old_object: dict[str, Any] | None = Field(None, alias="oldObject")
    dry_run: bool | None = Field(None, alias="dryRun")


class AdmissionReview(_Wire):
    api_version: Literal["admission.k8s.io/v1"] = Field(alias="apiVersion")
    kind: Literal["AdmissionReview"]
    request: AdmissionRequest


class BadReview(ValueError):
    """The body is not an AdmissionReview: answered with HTTP 400 and this message."""


def parse_review(body: bytes) -> AdmissionReview:
    try:
        return AdmissionReview.model_validate_json(body)
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise BadReview("the body is not JSON") from None
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(body)'}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise BadReview(f"not an admission.k8s.io/v1 AdmissionReview with a request.uid: {problems}") from None


def response(
    uid: str,
    *,
    patch: list[dict[str, Any]] | None = None,
    warnings: list[str] | None = None,
    denied: tuple[int, str, str] | None = None,
) -> dict[str, Any]:
    """An AdmissionReview response; `denied` is (code, reason, message)."""
    body: dict[str, Any] = {"uid": uid, "allowed": denied is None}
    if denied is not None:
        code, reason, message = denied
        body["status"] = {"code": code, "reason": reason, "message": message}
    elif patch:
        body["patchType"] = "JSONPatch"
        body["patch"] = base64.b64encode(dumps(patch)).decode()
    if warnings:
        # The API server limits each warning to 256 characters (longer ones are truncated there anyway).
        body["warnings"] = [w if len(w) <= 256 else w[:253] + "..." for w in warnings]
    return {"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": body}
