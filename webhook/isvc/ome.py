"""OME InferenceServices (ome.io/v1beta1): model, runtime, engine, decoder, router, and the legacy predictor.

spec.model.name names an OME (Cluster)BaseModel and spec.runtime.name an OME (Cluster)ServingRuntime: how they map
to infergate's policy Models and Runtimes is in webhook.isvc.platform."""

from __future__ import annotations

from infergate import constants
from policies.loader import Policy
from webhook.errors import AdmissionDenied, InvalidValue
from webhook.isvc import components
from webhook.isvc.components import mapping_at
from webhook.patch import PatchBuilder
from webhook.pod import values
from webhook.isvc.platform import resolve_platform_model, resolve_platform_runtime
from webhook.resolve import namespace_rule

DEPLOYMENT_MODE_ANNOTATION = "ome.io/deploymentMode"
COMPONENTS = ("engine", "decoder", "router")
# OME's MainContainerName (pkg/constants), the runner's name in every ClusterServingRuntime OME ships. OME v0.1.5
# merges an InferenceService's runner over the runtime's with a strategic merge in which the container's `name`
# (no omitempty) is always sent: a runner without a name blanks the container's name and OME's Deployment is
# invalid ("containers[0].name: Required value"). Where a runner is written, it carries this name.
OME_RUNNER_NAME = "ome-container"


def _model_name(patch: PatchBuilder) -> tuple[str, str, list[str]]:
    """The model's name, the field it came from, and warnings (the legacy predictor is deprecated)."""
    name = patch.get(("spec", "model", "name"))
    if name is not None:
        return name, "spec.model.name", []
    legacy = patch.get(("spec", "predictor", "model", "baseModel"))
    if legacy is not None:
        warning = "spec.predictor is deprecated: use spec.model, spec.runtime and spec.engine"
        return legacy, "spec.predictor.model.baseModel", [warning]
    raise InvalidValue("spec.model.name: an InferenceService needs the model to serve", "spec.model.name")


def admit(patch: PatchBuilder, namespace: str, policy: Policy) -> list[str]:
    for component in ("model", "runtime", *COMPONENTS, "predictor"):
        mapping_at(patch, ("spec", component))
    mapping_at(patch, ("spec", "predictor", "model"))
    values.check_no_padding(patch.get(("metadata", "annotations")) or {})
    for component in COMPONENTS:
        for part in (("leader",), ("worker",), ("runner",), ("leader", "runner"), ("worker", "runner")):
            mapping_at(patch, ("spec", component, *part))
        values.check_no_padding(mapping_at(patch, ("spec", component, "annotations")) or {}, f"spec.{component}.annotations")
    rule = namespace_rule(policy, namespace)
    name, model_field, warnings = _model_name(patch)
    model, model_warnings = resolve_platform_model(policy, rule, namespace, name, model_field, "ome")
    warnings += model_warnings
    requested, runtime_path = patch.get(("spec", "runtime", "name")), ("spec", "runtime", "name")
    legacy_runtime = patch.get(("spec", "predictor", "model", "runtime"))
    if requested is None and legacy_runtime is not None:
        # OME moves the legacy runtime to spec.runtime itself when spec.runtime is empty: it is the user's choice,
        # checked like spec.runtime.name, and never overwritten by an automatic one.
        requested, runtime_path = legacy_runtime, ("spec", "predictor", "model", "runtime")
    runtime, target, selection_warnings = resolve_platform_runtime(
        policy, rule, namespace, model, requested, components.dotted(runtime_path), model_field, "ome",
        remembered=patch.get(("metadata", "labels", constants.RUNTIME_LABEL)),
    )
    warnings += selection_warnings
    if target is not None:
        patch.set(runtime_path, target)

    if patch.get(("spec", "decoder")) is not None and patch.get(("spec", "engine")) is None:
        raise AdmissionDenied("spec.decoder: a decoder needs an engine (spec.engine) for the prefill side", "spec.engine")
    legacy_only = patch.get(("spec", "predictor")) is not None and patch.get(("spec", "model")) is None
    if not legacy_only and patch.get(("spec", "engine")) is None:
        patch.set(("spec", "engine"), {})

    defaults = policy.cluster.spec.defaults
    multi_node = model.spec.multi_node if model is not None else None
    gpu_count = model.spec.gpus if model is not None else None
    product = model.spec.gpu_product if model is not None else None
    for component in COMPONENTS:
        path = ("spec", component)
        if patch.get(path) is None:
            continue
        components.replicas(patch, path, defaults.replicas)
        if component == "router":
            continue  # the router is CPU-only
        components.product_annotation(patch, path, product)
        has_worker = mapping_at(patch, path + ("worker",)) is not None
        if multi_node is not None or has_worker:
            worker_size = patch.set_default(path + ("worker", "size"), (multi_node.size - 1) if multi_node else 1)
            if not isinstance(worker_size, int) or isinstance(worker_size, bool) or worker_size < 1:
                raise InvalidValue(f"spec.{component}.worker.size: {worker_size!r:.80} must be a whole number of at least 1", f"spec.{component}.worker.size")
            for role in ("leader", "worker"):
                components.gpus(patch, path + (role, "runner", "resources"), gpu_count, defaults.gpu_resource, rule, namespace)
                _name_runner(patch, path + (role, "runner"))
        else:
            components.gpus(patch, path + ("runner", "resources"), gpu_count, defaults.gpu_resource, rule, namespace)
            _name_runner(patch, path + ("runner",))

    if legacy_only:
        components.replicas(patch, ("spec", "predictor"), defaults.replicas)
    patch.set_default(("metadata", "annotations", DEPLOYMENT_MODE_ANNOTATION), deployment_mode(patch))
    if model is not None:
        patch.set_default(("metadata", "labels", constants.MODEL_LABEL), model.name)
    runtime_name = runtime.name if runtime is not None else target
    if runtime_name is not None:
        patch.set_default(("metadata", "labels", constants.RUNTIME_LABEL), runtime_name)
    return warnings


def _name_runner(patch: PatchBuilder, runner: tuple) -> None:
    if mapping_at(patch, runner) is not None:
        patch.set_default(runner + ("name",), OME_RUNNER_NAME)


def deployment_mode(patch: PatchBuilder) -> str:
    if patch.get(("spec", "decoder")) is not None:
        return "PDDisaggregated"
    if any(patch.get(("spec", c, "worker")) is not None for c in ("engine", "decoder")):
        return "MultiNode"
    return "RawDeployment"
