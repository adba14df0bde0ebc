"""Which runtime serves a model: pure functions, no I/O, tested on their own.

A runtime is a candidate when one of its supported formats matches the model's format (and version),
architecture and quantization, the model's size is within its range, and it can run multi-node models when
the model needs that. Among candidates the model's preferred runtime wins, then the format's priority, then the
name, so the choice is deterministic. Every runtime passed over comes back with the reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from policies.schema import Model, NamespaceRule, Runtime, SupportedFormat


@dataclass(frozen=True)
class Rejection:
    runtime: str
    reason: str

    def __str__(self) -> str:
        return f"{self.runtime}: {self.reason}"


@dataclass(frozen=True)
class Selection:
    runtime: Runtime | None
    rejected: list[Rejection] = field(default_factory=list)
    why: str = ""

    def explain_failure(self, model: Model) -> str:
        reasons = "; ".join(str(r) for r in self.rejected) or "no runtimes are defined"
        return f"no runtime can serve model {model.name}: {reasons}"


def matching_format(model: Model, runtime: Runtime) -> tuple[SupportedFormat | None, str]:
    """The runtime's format entry that serves the model, or None and why none does."""
    spec = model.spec
    reasons: list[str] = []
    for fmt in runtime.spec.supported_model_formats:
        if fmt.name != spec.format.name:
            reasons.append(f"format {spec.format.name} is not {fmt.name}")
        elif fmt.version and spec.format.version and fmt.version != spec.format.version:
            reasons.append(f"format version {spec.format.version} is not {fmt.version}")
        elif fmt.architectures and spec.architecture not in fmt.architectures:
            reasons.append(f"architecture {spec.architecture or '(unset)'} is not one of {', '.join(fmt.architectures)}")
        elif spec.quantization and spec.quantization not in fmt.quantizations:
            reasons.append(f"quantization {spec.quantization} is not supported")
        else:
            return fmt, ""
    return None, "; ".join(dict.fromkeys(reasons)) or "no supported formats"


def why_cannot_serve(model: Model, runtime: Runtime) -> str | None:
    """None when the runtime can serve the model, else the reason a person can act on."""
    if runtime.spec.disabled:
        return "disabled"
    fmt, reason = matching_format(model, runtime)
    if fmt is None:
        return reason
    size_range = runtime.spec.model_size_range
    parameters = model.parameters
    if size_range and parameters is not None and not size_range.contains(parameters):
        return f"model size {model.spec.parameter_size} is outside {size_range.min or '0'}-{size_range.max or 'any'}"
    if model.spec.multi_node and runtime.spec.multi_node is None:
        return f"cannot run a model across {model.spec.multi_node.size} pods (no multiNode in the runtime)"
    return None


def select_runtime(
    model: Model,
    runtimes: Iterable[Runtime],
    rule: NamespaceRule | None = None,
) -> Selection:
    """Choose a runtime for the model automatically, among those the namespace rule allows."""
    candidates: list[tuple[int, int, str, Runtime]] = []
    rejected: list[Rejection] = []
    for runtime in sorted(runtimes, key=lambda r: r.name):
        if rule is not None and not rule.allows_runtime(runtime.name):
            rejected.append(Rejection(runtime.name, "not allowed in this namespace"))
            continue
        reason = why_cannot_serve(model, runtime)
        if reason is not None:
            rejected.append(Rejection(runtime.name, reason))
            continue
        fmt, _ = matching_format(model, runtime)
        assert fmt is not None
        if not fmt.auto_select:
            rejected.append(Rejection(runtime.name, "not auto-selected (autoSelect: false); name it explicitly"))
            continue
        preferred = 0 if model.spec.runtime == runtime.name else 1
        candidates.append((preferred, -fmt.priority, runtime.name, runtime))
    if not candidates:
        return Selection(None, rejected)
    candidates.sort(key=lambda c: c[:3])
    preferred, negative_priority, name, chosen = candidates[0]
    why = "the model's preferred runtime" if preferred == 0 else f"highest priority ({-negative_priority})"
    passed_over = [Rejection(c[2], f"lower priority ({-c[1]})") for c in candidates[1:]]
    return Selection(chosen, rejected + passed_over, why)
