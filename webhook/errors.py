"""Why an object is refused. Every message names the object and the field, and says what to change."""

from __future__ import annotations

from typing import Any


def who(kind: str, namespace: str, obj: dict[str, Any]) -> str:
    """How a message names the object: `pod ml/llama-0`, `InferenceService ml/llama`, `pod ml/llama-*` for a
    generateName."""
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    generate = metadata.get("generateName")
    name = metadata.get("name") or (f"{generate}*" if generate else "(unnamed)")
    return f"{'pod' if kind == 'Pod' else kind} {namespace}/{name}"


class AdmissionDenied(Exception):
    """The object cannot be admitted as it is."""

    def __init__(self, message: str, field: str | None = None, code: int = 403, reason: str = "Forbidden"):
        self.message = message
        self.field = field
        self.code = code
        self.reason = reason
        super().__init__(message)


class InvalidValue(AdmissionDenied):
    """A value the user wrote is malformed."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message, field, code=400, reason="BadRequest")
