"""The policy schema: Runtime, Model and ClusterPolicy documents of apiVersion infergate.io/v1alpha1."""

from __future__ import annotations

import fnmatch
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from infergate import constants
from policies import quantity, templates
from policies.storage import parse_storage_uri

# Model names may carry dots (llama-3.1-8b-instruct), as DNS subdomains do.
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?\Z")


class Strict(BaseModel):
    """Unknown fields are errors: a typo in a policy must not silently do nothing."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _check_name(value: str) -> str:
    if len(value) > 253 or not DNS_SUBDOMAIN.match(value):
        raise ValueError(f"{value!r} is not a valid name (lower-case letters, digits, '-' and '.')")
    return value


Name = Annotated[str, AfterValidator(_check_name)]


def _check_template(value: str) -> str:
    unknown = templates.unknown_variables(value)
    if unknown:
        known = ", ".join(sorted(templates.VARIABLES))
        raise ValueError(f"unknown template variable {unknown[0]!r} in {value!r}; known: {known}")
    return value


Template = Annotated[str, AfterValidator(_check_template)]


def _check_size(value: str) -> str:
    quantity.parse_bytes(value)
    return value


def _check_parameters(value: str) -> str:
    quantity.parse_parameters(value)
    return value


Size = Annotated[str, AfterValidator(_check_size)]
ParameterCount = Annotated[str, AfterValidator(_check_parameters)]


class Metadata(Strict):
    name: Name
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class EnvVar(Strict):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$")
    value: Template


class Command(Strict):
    """What a container runs; `command` replaces the image's entrypoint only when set."""

    command: list[str] | None = None
    args: list[Template] = Field(default_factory=list)


class MultiNode(Strict):
    """How the runtime runs one replica across several pods: what the leader and the workers run."""

    leader: Command
    worker: Command


class SupportedFormat(Strict):
    name: str
    version: str | None = None
    architectures: list[str] = Field(default_factory=list, description="empty: any")
    quantizations: list[str] = Field(default_factory=list, description="empty: unquantized models only")
    auto_select: bool = Field(True, alias="autoSelect")
    priority: int = Field(1, ge=0)


class SizeRange(Strict):
    min: ParameterCount | None = None
    max: ParameterCount | None = None

    @model_validator(mode="after")
    def _ordered(self) -> SizeRange:
        if self.min and self.max and quantity.parse_parameters(self.min) > quantity.parse_parameters(self.max):
            raise ValueError(f"min {self.min} is larger than max {self.max}")
        return self

    def contains(self, parameters: int) -> bool:
        low = quantity.parse_parameters(self.min) if self.min else 0
        high = quantity.parse_parameters(self.max) if self.max else None
        return parameters >= low and (high is None or parameters <= high)


class ResourceList(Strict):
    requests: dict[str, str] = Field(default_factory=dict)
    limits: dict[str, str] = Field(default_factory=dict)


class PlatformRuntimes(Strict):
    """The serving platform's own runtime object that runs this runtime's engine, per API group. An
    InferenceService names the platform's object in its runtime field; infergate writes these names there."""

    kserve: Name | None = Field(None, description="a KServe ServingRuntime or ClusterServingRuntime (one pod)")
    kserve_multi_node: Name | None = Field(
        None, alias="kserveMultiNode", description="KServe's runtime for a predictor with a workerSpec"
    )
    ome: Name | None = Field(None, description="an OME ClusterServingRuntime or ServingRuntime")


class RuntimeSpec(Strict):
    container_name: Name = Field(constants.DEFAULT_CONTAINER_NAME, alias="containerName")
    image: str = Field(min_length=1)
    command: list[str] | None = None
    args: list[Template] = Field(default_factory=list)
    fraction_args: list[Template] = Field(
        default_factory=list, alias="fractionArgs", description="appended when the pod has a share of one GPU"
    )
    multi_node: MultiNode | None = Field(None, alias="multiNode")
    env: list[EnvVar] = Field(default_factory=list)
    port: int = Field(8080, ge=1, le=65535)
    resources: ResourceList = Field(default_factory=ResourceList)
    supported_model_formats: list[SupportedFormat] = Field(alias="supportedModelFormats", min_length=1)
    model_size_range: SizeRange | None = Field(None, alias="modelSizeRange")
    readiness_probe: dict[str, Any] | None = Field(None, alias="readinessProbe")
    # Only what an admin writes here ever reaches the pod: the webhook adds no privileges of its own.
    security_context: dict[str, Any] | None = Field(None, alias="securityContext")
    disabled: bool = False
    platform_runtimes: PlatformRuntimes = Field(default_factory=PlatformRuntimes, alias="platformRuntimes")


class PolicyObject(Strict):
    """The envelope every policy document shares; each kind narrows `kind` and adds its `spec`."""

    api_version: Literal["infergate.io/v1alpha1"] = Field(alias="apiVersion")
    kind: str
    metadata: Metadata

    @property
    def name(self) -> str:
        return self.metadata.name


class Runtime(PolicyObject):
    kind: Literal["Runtime"]
    spec: RuntimeSpec


class ModelFormat(Strict):
    name: str
    version: str | None = None


class MultiNodeShape(Strict):
    size: int = Field(ge=2, description="pods per replica: one leader and size-1 workers")


class ModelSpec(Strict):
    storage_uri: str = Field(alias="storageUri")
    format: ModelFormat
    architecture: str | None = None
    parameter_size: ParameterCount | None = Field(None, alias="parameterSize")
    quantization: str | None = None
    gpus: int = Field(1, ge=1, description="whole GPUs per pod")
    gpu_product: str | None = Field(None, alias="gpuProduct")
    served_model_name: str | None = Field(None, alias="servedModelName", pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
    multi_node: MultiNodeShape | None = Field(None, alias="multiNode")
    runtime: Name | None = Field(None, description="the preferred runtime")
    args: list[Template] = Field(default_factory=list)
    env: list[EnvVar] = Field(default_factory=list)

    @field_validator("storage_uri")
    @classmethod
    def _valid_uri(cls, value: str) -> str:
        parse_storage_uri(value)
        return value


class Model(PolicyObject):
    kind: Literal["Model"]
    spec: ModelSpec

    @property
    def parameters(self) -> int | None:
        size = self.spec.parameter_size
        return quantity.parse_parameters(size) if size else None


class PriorityClassRef(Strict):
    name: Name
    value: int = Field(ge=-(2**31), le=1_000_000_000)


class Toleration(Strict):
    key: str
    operator: Literal["Exists", "Equal"] = "Exists"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = "NoSchedule"

    def as_k8s(self) -> dict[str, str]:
        return {k: v for k, v in self.model_dump(by_alias=True).items() if v is not None}


class ReplicaBounds(Strict):
    min: int = Field(1, ge=0)
    max: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> ReplicaBounds:
        if self.max < self.min:
            raise ValueError(f"max {self.max} is less than min {self.min}")
        return self


class Defaults(Strict):
    scheduler_name: str = Field("infergate-scheduler", alias="schedulerName")
    priority_classes: dict[Literal["inference", "training"], PriorityClassRef] = Field(
        default_factory=lambda: {
            constants.INFERENCE: PriorityClassRef(name="infergate-inference", value=1_000_000),
            constants.TRAINING: PriorityClassRef(name="infergate-training", value=10_000),
        },
        alias="priorityClasses",
    )
    model_mount_path: str = Field(constants.DEFAULT_MODEL_MOUNT_PATH, alias="modelMountPath", pattern=r"^/[A-Za-z0-9._/-]*$")
    shm_size: Size = Field("16Gi", alias="shmSize")
    gpu_resource: str = Field(constants.GPU_RESOURCE, alias="gpuResource")
    gpu_toleration: Toleration | None = Field(
        default_factory=lambda: Toleration(key=constants.GPU_RESOURCE), alias="gpuToleration"
    )
    global_default_priority_class: str | None = Field(
        None,
        alias="globalDefaultPriorityClass",
        description="the cluster's globalDefault PriorityClass: the API server writes it into every pod that names "
        "none, before webhooks run, so the webhook replaces it like an unset class",
    )
    model_init_image: str = Field("kserve/storage-initializer:v0.15.2", alias="modelInitImage")
    replicas: ReplicaBounds = Field(
        default_factory=ReplicaBounds, description="InferenceService components' minReplicas and maxReplicas"
    )
    model_cache_volume: dict[str, Any] | None = Field(
        None, alias="modelCacheVolume", description="a volume source for downloaded weights; default emptyDir"
    )

    @model_validator(mode="after")
    def _both_classes(self) -> Defaults:
        missing = [c for c in constants.WORKLOAD_CLASSES if c not in self.priority_classes]
        if missing:
            raise ValueError(f"priorityClasses needs an entry for {', '.join(missing)}")
        if self.priority_classes[constants.INFERENCE].value <= self.priority_classes[constants.TRAINING].value:
            raise ValueError("priorityClasses: inference must have a higher value than training")
        return self


class NamespaceRule(Strict):
    """What the namespaces matching `namespaces` (glob patterns) may use. The first matching rule applies."""

    namespaces: list[str] = Field(min_length=1)
    models: list[str] = Field(default_factory=lambda: ["*"])
    runtimes: list[str] = Field(default_factory=lambda: ["*"])
    max_gpus_per_pod: int = Field(8, ge=0, alias="maxGpusPerPod")
    workload_classes: list[Literal["inference", "training"]] = Field(
        default_factory=lambda: list(constants.WORKLOAD_CLASSES), alias="workloadClasses"
    )
    default_workload_class: Literal["inference", "training"] | None = Field(
        None,
        alias="defaultWorkloadClass",
        description="the class of pods with no model, no training marker and no serving marker; "
        "default: training where allowed (nothing jumps the queue by omission)",
    )

    @model_validator(mode="after")
    def _default_allowed(self) -> NamespaceRule:
        if self.default_workload_class and self.default_workload_class not in self.workload_classes:
            raise ValueError(f"defaultWorkloadClass {self.default_workload_class} is not one of workloadClasses")
        return self

    @property
    def default_class(self) -> str:
        if self.default_workload_class:
            return self.default_workload_class
        return constants.TRAINING if constants.TRAINING in self.workload_classes or not self.workload_classes else self.workload_classes[0]

    def matches(self, namespace: str) -> bool:
        return any(fnmatch.fnmatchcase(namespace, pattern) for pattern in self.namespaces)

    def allows_model(self, model: str) -> bool:
        return any(fnmatch.fnmatchcase(model, pattern) for pattern in self.models)

    def allows_runtime(self, runtime: str) -> bool:
        return any(fnmatch.fnmatchcase(runtime, pattern) for pattern in self.runtimes)


class Scheduling(Strict):
    """Knobs of the scheduler extender."""

    scorer: str = "infergate"
    reservation_seconds: float = Field(120.0, gt=0, alias="reservationSeconds")
    topology_keys: list[str] = Field(
        default_factory=lambda: ["nvidia.com/gpu.clique", "infergate.io/rack", "topology.kubernetes.io/zone"],
        alias="topologyKeys",
    )
    topology_mode: Literal["preferred", "required"] = Field("preferred", alias="topologyMode")
    training_steering: float = Field(
        0.5, ge=0, le=1, alias="trainingSteering", description="how strongly training avoids keeping nodes whole"
    )

    @field_validator("scorer")
    @classmethod
    def _known_scorer(cls, name: str) -> str:
        from extender.core.scorers import scorer_names  # the scorers are the one list of names

        known = scorer_names()
        if name not in known:
            raise ValueError(f"unknown scorer {name!r}; known: {', '.join(known)}")
        return name


class ClusterPolicySpec(Strict):
    defaults: Defaults = Field(default_factory=Defaults)
    namespaces: list[NamespaceRule] = Field(default_factory=list)
    scheduling: Scheduling = Field(default_factory=Scheduling)


class ClusterPolicy(PolicyObject):
    kind: Literal["ClusterPolicy"]
    spec: ClusterPolicySpec = Field(default_factory=ClusterPolicySpec)

    def rule_for(self, namespace: str) -> NamespaceRule | None:
        return next((rule for rule in self.spec.namespaces if rule.matches(namespace)), None)


DOCUMENT_KINDS: dict[str, type[PolicyObject]] = {"Runtime": Runtime, "Model": Model, "ClusterPolicy": ClusterPolicy}
