"""Resolving the model and runtime an object asks for, within what its namespace may use.

Shared by pods and InferenceServices; each caller names the field the user wrote, so denials point at it.
"""

from __future__ import annotations

from policies.loader import Policy
from policies.schema import Model, NamespaceRule, Runtime
from policies.selection import Selection, select_runtime, why_cannot_serve
from webhook.errors import AdmissionDenied
from webhook.memo import IdentityMemo
from webhook.pod import values

# The automatic choice depends only on the model, the runtimes and the namespace rule: made once per policy.
_SELECTIONS = IdentityMemo()


def namespace_rule(policy: Policy, namespace: str, field: str = "metadata.namespace") -> NamespaceRule:
    rule = policy.cluster.rule_for(namespace)
    if rule is None:
        raise AdmissionDenied(
            f"namespace {namespace} may not use models: no namespace rule of ClusterPolicy "
            f"{policy.cluster.metadata.name} matches it; ask a cluster admin to add one",
            field,
        )
    return rule


def _named(kind: str, catalog: dict, allowed: bool, namespace: str, name: object, field: str):
    """A model or runtime the user named: a valid name, defined in the policy, allowed in the namespace."""
    values.name_at(field, name)
    found = catalog.get(name)
    if found is None:
        known = ", ".join(sorted(catalog)) or "none"
        # OME's ClusterBaseModels spell versions with dashes (llama-3-1-8b-instruct) where policies may use dots.
        alike = [k for k in sorted(catalog) if k.replace(".", "-") == name.replace(".", "-")]
        hint = f"; did you mean {alike[0]}?" if alike else ""
        raise AdmissionDenied(f"{field}: unknown {kind} {name!r:.80}{hint}; known {kind}s: {known}", field, 404, "NotFound")
    if not allowed:
        raise AdmissionDenied(f"{field}: namespace {namespace} may not use {kind} {name}", field)
    return found


def resolve_model(policy: Policy, rule: NamespaceRule, namespace: str, name: str, field: str) -> Model:
    return _named("model", policy.models, isinstance(name, str) and rule.allows_model(name), namespace, name, field)


def resolve_runtime(
    policy: Policy, rule: NamespaceRule, namespace: str, model: Model, requested: str | None, field: str, model_field: str
) -> tuple[Runtime, list[str]]:
    """The named runtime, checked; or the automatic choice, with warnings saying why and what was passed over."""
    if requested is None:
        selection = _select(policy, rule, model)
        if selection.runtime is None:
            raise AdmissionDenied(selection.explain_failure(model), model_field)
        return selection.runtime, selection_warnings(selection)
    runtime = _named("runtime", policy.runtimes, isinstance(requested, str) and rule.allows_runtime(requested),
                     namespace, requested, field)
    reason = why_cannot_serve(model, runtime)
    if reason:
        raise AdmissionDenied(f"{field}: runtime {requested} cannot serve model {model.name}: {reason}", field)
    return runtime, []


def _select(policy: Policy, rule: NamespaceRule, model: Model) -> Selection:
    if policy.models.get(model.name) is not model:  # an ad-hoc model (KServe storageUri), made for this request
        return select_runtime(model, policy.runtimes.values(), rule)
    runtimes = policy.runtimes
    return _SELECTIONS.get((runtimes, rule, model), None, lambda: select_runtime(model, runtimes.values(), rule))


def selection_warnings(selection: Selection) -> list[str]:
    assert selection.runtime is not None
    warnings = [f"runtime {selection.runtime.name} selected: {selection.why}"]
    warnings += [f"runtime {r.runtime} passed over: {r.reason}" for r in selection.rejected]
    return warnings
