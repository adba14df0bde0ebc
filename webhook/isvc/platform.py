"""The serving platform's names in an InferenceService, and infergate's catalogue behind them.

In an InferenceService, the runtime field names the platform's own runtime object (a KServe ServingRuntime or
ClusterServingRuntime, an OME ClusterServingRuntime) and OME's spec.model.name an OME (Cluster)BaseModel. infergate's
policy Models and Runtimes are its catalogue: GPUs, product, multi-node shape, what may run where. The rules:

- a policy runtime named or selected is written as the platform's runtime its `platformRuntimes` names for the API
  group, with a warning; where it names none, a selected runtime leaves the field unset (the platform selects its
  runtime by model format; a warning says which infergate runtime's settings applied), and a named one is denied
  with what to write instead (the platform would find no runtime of infergate's name and create nothing);
- a platform runtime name that a policy runtime maps to is that policy runtime (so the webhook's own output is
  admitted unchanged);
- any other name is the platform's own: admitted with a warning naming the field and saying infergate applied no
  catalogue settings for it, when the namespace rule's allow-list (glob patterns, "*" by default) matches it;
  otherwise denied at its field as an unknown name, as before;
- an OME model name that is a policy model's name with dots written as dashes (OME's spelling) is that model.
"""

from __future__ import annotations

from policies.loader import Policy
from policies.schema import Model, NamespaceRule, Runtime
from webhook.errors import AdmissionDenied
from webhook.pod import values
from webhook.resolve import resolve_model, resolve_runtime

PLATFORM = {"kserve": "KServe", "ome": "OME"}


def _platform_key(group: str, multi_node: bool) -> str:
    return "kserve_multi_node" if group == "kserve" and multi_node else group


def _policy_key(key: str) -> str:
    return {"kserve_multi_node": "kserveMultiNode"}.get(key, key)


def _unknown(kind: str, catalog: dict, patterns: list[str], namespace: str, name: str, field: str) -> AdmissionDenied:
    known = ", ".join(sorted(catalog)) or "none"
    alike = [k for k in sorted(catalog) if k.replace(".", "-") == name.replace(".", "-")]
    hint = f"; did you mean {alike[0]}?" if alike else ""
    return AdmissionDenied(
        f"{field}: unknown {kind} {name!r:.80}{hint}; known {kind}s: {known}; namespace {namespace} may only use "
        f"{kind}s matching {', '.join(patterns)}, so the platform's own {kind}s are not allowed here",
        field, 404, "NotFound",
    )


def resolve_platform_model(policy: Policy, rule: NamespaceRule, namespace: str, name: object, field: str,
                           platform: str) -> tuple[Model | None, list[str]]:
    """The policy model an InferenceService names (also in OME's dashed spelling), or None for the platform's own
    model, admitted when the namespace may use any such name."""
    values.name_at(field, name)
    assert isinstance(name, str)
    if name in policy.models:
        return resolve_model(policy, rule, namespace, name, field), []
    alike = [k for k in sorted(policy.models) if k.replace(".", "-") == name.replace(".", "-")]
    if len(alike) == 1:
        model = resolve_model(policy, rule, namespace, alike[0], field)
        return model, [f"{field}: {name} is infergate's model {model.name} ({PLATFORM[platform]}'s spelling, dots as "
                       f"dashes): its settings applied"]
    if not rule.allows_model(name):
        raise _unknown("model", policy.models, rule.models, namespace, name, field)
    return None, [f"{field}: {name} is not an infergate model: kept as {PLATFORM[platform]}'s own; infergate applied no "
                  "catalogue settings for it (GPUs as the object asks)"]


def resolve_platform_runtime(
    policy: Policy, rule: NamespaceRule, namespace: str, model: Model | None, requested: object, field: str,
    model_field: str, platform: str, multi_node: bool = False, remembered: object = None,
) -> tuple[Runtime | None, str | None, list[str]]:
    """The policy runtime whose settings apply (None: none), the name the runtime field must hold (None: unset, the
    platform selects), and warnings. `remembered` is the object's infergate.io/runtime label: with no runtime named,
    the policy runtime recorded there at the first admission applies again (admitting the output changes nothing)."""
    key = _platform_key(platform, multi_node)
    name = PLATFORM[platform]
    if requested is None and isinstance(remembered, str) and remembered in policy.runtimes:
        runtime = resolve_runtime_unchecked(policy, rule, namespace, remembered, field)
        reason = _cannot_serve(model, runtime) if model is not None else None
        if not reason:
            target = getattr(runtime.spec.platform_runtimes, key)
            return runtime, target, [f"{field}: infergate runtime {runtime.name} (label infergate.io/runtime) applies"
                                     + (f", as {name}'s {target}" if target else f"; {name} selects its runtime")]
    if requested is not None:
        values.name_at(field, requested)
    if requested is not None and requested not in policy.runtimes:
        assert isinstance(requested, str)
        mapped = [r for r in policy.runtimes.values() if getattr(r.spec.platform_runtimes, key) == requested
                  and rule.allows_runtime(r.name)]
        if model is not None:
            mapped = [r for r in mapped if not _cannot_serve(model, r)]
        if mapped:
            return mapped[0], requested, [f"{field}: {requested} is {name}'s runtime for infergate runtime "
                                          f"{mapped[0].name}: its settings applied"]
        if not rule.allows_runtime(requested):
            raise _unknown("runtime", policy.runtimes, rule.runtimes, namespace, requested, field)
        return None, requested, [f"{field}: {requested} is not an infergate runtime: kept as {name}'s own; infergate "
                                 "applied no runtime settings for it"]
    if model is None:
        if requested is None:
            return None, None, []
        runtime = resolve_runtime_unchecked(policy, rule, namespace, requested, field)
        warnings: list[str] = []
    else:
        runtime, warnings = resolve_runtime(policy, rule, namespace, model, requested, field, model_field)
    target = getattr(runtime.spec.platform_runtimes, key)
    if target is not None:
        how = "selected" if requested is None else f"named as infergate's {runtime.name}"
        warnings.append(f"{field}: {target}, {name}'s runtime for infergate runtime {runtime.name} ({how}; "
                        f"platformRuntimes.{_policy_key(key)})")
    elif requested is None:
        warnings.append(f"{field}: left unset, {name} selects its runtime by model format: infergate runtime "
                        f"{runtime.name} names no {name} runtime (platformRuntimes.{_policy_key(key)}); its settings applied")
    else:
        # Removing the user's choice would let the platform pick another engine; keeping it, the platform finds no
        # runtime of that name and creates nothing: neither is what the user meant, so say what to write.
        raise AdmissionDenied(
            f"{field}: {requested} is infergate's runtime, not {name}'s, and names no {name} runtime "
            f"(platformRuntimes.{_policy_key(key)} of Runtime {runtime.name}): {name} would find no runtime {requested} "
            f"and create nothing; name {name}'s runtime here, or leave the field out for {name} to select one by model "
            f"format (infergate's settings then come from the runtime it selects)",
            field,
        )
    return runtime, target, warnings


def _cannot_serve(model: Model, runtime: Runtime) -> str | None:
    from policies.selection import why_cannot_serve

    return why_cannot_serve(model, runtime)


def resolve_runtime_unchecked(policy: Policy, rule: NamespaceRule, namespace: str, name: str, field: str) -> Runtime:
    """A policy runtime named for a model infergate does not know: allowed in the namespace, not checked against it."""
    runtime = policy.runtimes[name]
    if not rule.allows_runtime(name):
        raise AdmissionDenied(f"{field}: namespace {namespace} may not use runtime {name}", field)
    return runtime
