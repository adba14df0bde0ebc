"""KServe InferenceServices (serving.kserve.io/v1beta1): spec.predictor.model with modelFormat, runtime, storageUri.

infergate serves LLMs. A predictor is infergate's when it names a policy model with the `infergate.io/model`
annotation, or when its model format is one a policy runtime serves (huggingface, safetensors). Everything else
KServe runs passes through untouched, with a warning saying so: sklearn, xgboost, tensorflow, triton, pmml,
onnx... predictors, the old per-framework fields (`spec.predictor.sklearn`), and custom `containers`.

The model is the policy Model named by the annotation (a storageUri that differs from the model's comes back
as a warning: KServe downloads the predictor's), else the one whose storageUri the predictor names, else an
ad-hoc model built from the predictor's modelFormat and storageUri (or `--model_id` for KServe's Hugging Face
server), which only namespaces allowed every model ("*") may bring.

`runtime` names a KServe ServingRuntime or ClusterServingRuntime: a policy runtime, named or selected, is written as
the KServe runtime its `platformRuntimes.kserve` (`kserveMultiNode` for a predictor with a workerSpec) names, or
left unset for KServe to select by model format; KServe's own names are kept (see webhook.isvc.platform).
A predictor whose resources ask for no GPU (the user wrote resources, none of them an accelerator) runs on CPU
and gets none; another vendor's GPUs are left as they are.
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
from webhook.pod import values
from webhook.pod.accelerators import is_accelerator
from webhook.pod.args import flag_value
from webhook.pod.values import annotation_field
from webhook.isvc.platform import resolve_platform_runtime
from webhook.resolve import namespace_rule, resolve_model

PREDICTOR = ("spec", "predictor")
MODEL = PREDICTOR + ("model",)
# The per-framework predictor fields of KServe's older API.
FRAMEWORK_FIELDS = ("sklearn", "xgboost", "lightgbm", "tensorflow", "pytorch", "triton", "onnx", "pmml", "paddle", "huggingface")


def _string_at(patch: PatchBuilder, path: tuple) -> str | None:
    value = patch.get(path)
    if value is not None and not isinstance(value, str):
        field = components.dotted(path)
        raise InvalidValue(f"{field}: {value!r:.80} must be a string", field)
    return value


def _storage_uri(patch: PatchBuilder) -> tuple[str | None, str]:
    """The predictor's weights: storageUri, the first of storageUris, or `--model_id` of KServe's HF server."""
    field = "spec.predictor.model.storageUri"
    uri = _string_at(patch, MODEL + ("storageUri",))
    if uri is not None:
        return uri, field
    many = patch.get(MODEL + ("storageUris",))
    if many is not None:
        if not isinstance(many, list) or not many or not isinstance(many[0], dict):
            raise InvalidValue("spec.predictor.model.storageUris: must be a list of {uri, mountPath}", "spec.predictor.model.storageUris")
        return _string_at(patch, MODEL + ("storageUris", 0, "uri")), "spec.predictor.model.storageUris[0].uri"
    args = patch.get(MODEL + ("args",)) or []
    if isinstance(args, list) and all(isinstance(a, str) for a in args):
        model_id = flag_value(args, "--model_id", "--model-id")
        if model_id:
            return f"hf://{model_id}", "spec.predictor.model.args"
    return None, field


def _check_uri(uri: str, field: str) -> None:
    try:
        parse_storage_uri(uri)
    except ValueError as exc:
        raise InvalidValue(f"{field}: {exc}", field) from None


def _served_formats(policy: Policy) -> set[str]:
    return {f.name for runtime in policy.runtimes.values() for f in runtime.spec.supported_model_formats}


def _pass_through(patch: PatchBuilder, policy: Policy) -> str | None:
    """Why infergate leaves this predictor alone, or None when it is infergate's to default."""
    if patch.get(("metadata", "annotations", constants.MODEL_ANNOTATION)) is not None:
        return None
    model = mapping_at(patch, MODEL)
    if model is None:
        framework = next((f for f in FRAMEWORK_FIELDS if patch.get(PREDICTOR + (f,)) is not None), None)
        if framework:
            return f"spec.predictor.{framework}: a {framework} predictor is not an LLM infergate serves; passed through untouched"
        if patch.get(PREDICTOR + ("containers",)) is not None:
            return "spec.predictor.containers: custom containers are passed through untouched"
        return None
    mapping_at(patch, MODEL + ("modelFormat",))
    name = _string_at(patch, MODEL + ("modelFormat", "name"))
    runtime = _string_at(patch, MODEL + ("runtime",))
    served = _served_formats(policy)
    if name and name not in served and runtime not in policy.runtimes:
        return (f"spec.predictor.model.modelFormat.name: {name} is not a format infergate serves ({', '.join(sorted(served))}); "
                "passed through untouched")
    return None


def _model(patch: PatchBuilder, policy: Policy, rule: NamespaceRule, namespace: str) -> tuple[Model | None, str, list[str]]:
    named = patch.get(("metadata", "annotations", constants.MODEL_ANNOTATION))
    uri, uri_field = _storage_uri(patch)
    if uri is not None:
        _check_uri(uri, uri_field)
    if named is not None:
        field = annotation_field(constants.MODEL_ANNOTATION)
        model = resolve_model(policy, rule, namespace, named, field)
        warnings = []
        if uri is not None and uri != model.spec.storage_uri:
            warnings.append(
                f"{uri_field} {uri} is not the weights of model {model.name} ({model.spec.storage_uri}) named by "
                f"{constants.MODEL_ANNOTATION}: KServe serves {uri}; infergate's defaults come from {model.name}"
            )
        return model, field, warnings
    if uri is None:
        return None, uri_field, [
            f"{uri_field}: no storageUri, storageUris or --model_id, and no {constants.MODEL_ANNOTATION}: infergate cannot "
            "tell which model this is; passed through untouched"
        ]
    for model in policy.models.values():
        if model.spec.storage_uri == uri:
            return resolve_model(policy, rule, namespace, model.name, uri_field), uri_field, []
    if "*" not in rule.models:
        raise AdmissionDenied(
            f"{uri_field}: namespace {namespace} may only use the policy's models "
            f"({', '.join(rule.models)}); {uri} is none of them",
            uri_field,
        )
    fmt = mapping_at(patch, MODEL + ("modelFormat",)) or {}
    if not fmt.get("name"):
        raise InvalidValue("spec.predictor.model.modelFormat.name: say the model's format, such as huggingface", "spec.predictor.model.modelFormat.name")
    version = fmt.get("version")
    name = patch.get(("metadata", "name")) or "inferenceservice"
    adhoc = Model.model_validate(
        {
            "apiVersion": constants.POLICY_API_VERSION,
            "kind": "Model",
            "metadata": {"name": name if isinstance(name, str) else "inferenceservice"},
            "spec": {"storageUri": uri, "format": {"name": fmt["name"], "version": str(version) if version is not None else None}},
        }
    )
    return adhoc, "spec.predictor.model.modelFormat", []


def _asks_no_gpu(patch: PatchBuilder, resources: tuple, gpu_resource: str) -> bool:
    """The user wrote resources and no accelerator among them: a CPU predictor."""
    keys = [k for kind in ("limits", "requests") for k in (mapping_at(patch, resources + (kind,)) or {})]
    return bool(keys) and not any(is_accelerator(k, gpu_resource) for k in keys)


def admit(patch: PatchBuilder, namespace: str, policy: Policy) -> list[str]:
    if mapping_at(patch, PREDICTOR) is None:
        raise InvalidValue("spec.predictor: a KServe InferenceService needs a predictor", "spec.predictor")
    mapping_at(patch, MODEL)
    values.check_no_padding(patch.get(("metadata", "annotations")) or {})
    values.check_no_padding(mapping_at(patch, PREDICTOR + ("annotations",)) or {}, "spec.predictor.annotations")
    skip = _pass_through(patch, policy)
    if skip is not None:
        return [skip]
    rule = namespace_rule(policy, namespace)
    model, model_field, warnings = _model(patch, policy, rule, namespace)
    if model is None:
        return warnings
    requested = _string_at(patch, MODEL + ("runtime",))
    multi_node = mapping_at(patch, PREDICTOR + ("workerSpec",)) is not None or model.spec.multi_node is not None
    runtime, target, selection = resolve_platform_runtime(
        policy, rule, namespace, model, requested, "spec.predictor.model.runtime", model_field, "kserve", multi_node,
        remembered=patch.get(("metadata", "labels", constants.RUNTIME_LABEL)))
    warnings += selection
    if target is not None:
        patch.set(MODEL + ("runtime",), target)
    runtime_name = runtime.name if runtime is not None else target
    defaults = policy.cluster.spec.defaults
    components.replicas(patch, PREDICTOR, defaults.replicas)
    mapping_at(patch, MODEL + ("resources",))
    if _asks_no_gpu(patch, MODEL + ("resources",), defaults.gpu_resource):
        warnings.append("spec.predictor.model.resources: asks for no GPU; runs on CPU as written")
    else:
        gpus = components.gpus(patch, MODEL + ("resources",), model.spec.gpus, defaults.gpu_resource, rule, namespace)
        components.product_annotation(patch, PREDICTOR, model.spec.gpu_product)
        if model.spec.multi_node is not None:
            patch.set_default(PREDICTOR + ("workerSpec", "pipelineParallelSize"), model.spec.multi_node.size)
            patch.set_default(PREDICTOR + ("workerSpec", "tensorParallelSize"), gpus)
    if model.name in policy.models:
        patch.set_default(("metadata", "labels", constants.MODEL_LABEL), model.name)
    if runtime_name is not None:
        patch.set_default(("metadata", "labels", constants.RUNTIME_LABEL), runtime_name)
    return warnings
