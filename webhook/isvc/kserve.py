"""KServe InferenceServices (serving.kserve.io/v1beta1): spec.predictor.model with modelFormat, runtime, storageUri.

The model is the policy Model named by the `infergate.io/model` annotation, else the one whose storageUri the
predictor names, else an ad-hoc model built from the predictor's modelFormat and storageUri, which only
namespaces allowed every model ("*") may bring.
"""

from __future__ import annotations

from infergate import constants
from policies.loader import Policy
from policies.schema import Model, NamespaceRule
from policies.storage import parse_storage_uri
from webhook.errors import AdmissionDenied, InvalidValue
from webhook.isvc import components
from webhook.isvc.components import mapping_at
from webhook.patch import PatchBuilder
from webhook.pod.values import annotation_field
from webhook.resolve import namespace_rule, resolve_model, resolve_runtime

PREDICTOR = ("spec", "predictor")
MODEL = PREDICTOR + ("model",)


def _model(patch: PatchBuilder, policy: Policy, rule: NamespaceRule, namespace: str) -> tuple[Model, str]:
    named = patch.get(("metadata", "annotations", constants.MODEL_ANNOTATION))
    if named is not None:
        field = annotation_field(constants.MODEL_ANNOTATION)
        return resolve_model(policy, rule, namespace, named, field), field
    uri = patch.get(MODEL + ("storageUri",))
    if uri is None:
        raise InvalidValue(
            f"spec.predictor.model.storageUri: say where the weights are, or name a policy model with {constants.MODEL_ANNOTATION}",
            "spec.predictor.model.storageUri",
        )
    try:
        parse_storage_uri(uri)
    except ValueError as exc:
        raise InvalidValue(f"spec.predictor.model.storageUri: {exc}", "spec.predictor.model.storageUri") from None
    for model in policy.models.values():
        if model.spec.storage_uri == uri:
            return resolve_model(policy, rule, namespace, model.name, "spec.predictor.model.storageUri"), "spec.predictor.model.storageUri"
    if "*" not in rule.models:
        raise AdmissionDenied(
            f"spec.predictor.model.storageUri: namespace {namespace} may only use the policy's models "
            f"({', '.join(rule.models)}); {uri} is none of them",
            "spec.predictor.model.storageUri",
        )
    fmt = mapping_at(patch, MODEL + ("modelFormat",)) or {}
    if not fmt.get("name"):
        raise InvalidValue("spec.predictor.model.modelFormat.name: say the model's format, such as huggingface", "spec.predictor.model.modelFormat.name")
    name = patch.get(("metadata", "name")) or "inferenceservice"
    adhoc = Model.model_validate(
        {
            "apiVersion": constants.POLICY_API_VERSION,
            "kind": "Model",
            "metadata": {"name": name},
            "spec": {"storageUri": uri, "format": {"name": fmt["name"], "version": fmt.get("version")}},
        }
    )
    return adhoc, "spec.predictor.model.modelFormat"


def admit(patch: PatchBuilder, namespace: str, policy: Policy) -> list[str]:
    if mapping_at(patch, PREDICTOR) is None:
        raise InvalidValue("spec.predictor: a KServe InferenceService needs a predictor", "spec.predictor")
    mapping_at(patch, MODEL)
    rule = namespace_rule(policy, namespace)
    model, model_field = _model(patch, policy, rule, namespace)
    runtime, warnings = resolve_runtime(
        policy, rule, namespace, model, patch.get(MODEL + ("runtime",)), "spec.predictor.model.runtime", model_field
    )
    patch.set(MODEL + ("runtime",), runtime.name)
    defaults = policy.cluster.spec.defaults
    components.replicas(patch, PREDICTOR, defaults.replicas)
    gpus = components.gpus(patch, MODEL + ("resources",), model.spec.gpus, defaults.gpu_resource, rule, namespace)
    components.product_annotation(patch, PREDICTOR, model.spec.gpu_product)
    if model.spec.multi_node is not None:
        patch.set_default(PREDICTOR + ("workerSpec", "pipelineParallelSize"), model.spec.multi_node.size)
        patch.set_default(PREDICTOR + ("workerSpec", "tensorParallelSize"), gpus)
    if model.name in policy.models:
        patch.set_default(("metadata", "labels", constants.MODEL_LABEL), model.name)
    patch.set_default(("metadata", "labels", constants.RUNTIME_LABEL), runtime.name)
    return warnings
