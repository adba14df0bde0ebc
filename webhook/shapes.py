"""The parts of an object the webhook reads, checked for type before any injector runs.

The API server only sends well-typed objects; this guards the webhook against hand-made or fuzzed requests,
so they get a 400 naming the field instead of a crash.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Named(_Open):
    name: str


class _Mount(_Open):
    name: str
    mount_path: str = Field(alias="mountPath")


class _Resources(_Open):
    limits: dict[str, str | int | float] | None = None
    requests: dict[str, str | int | float] | None = None
    claims: list[_Named] | None = None  # Dynamic Resource Allocation: names of the pod's resourceClaims


class _Container(_Open):
    name: str
    image: str | None = None
    command: list[str] | None = None
    args: list[str] | None = None
    env: list[_Named] | None = None  # merged by name: an entry without one cannot be merged
    env_from: list[dict[str, Any]] | None = Field(None, alias="envFrom")
    ports: list[dict[str, Any]] | None = None
    volume_mounts: list[_Mount] | None = Field(None, alias="volumeMounts")
    resources: _Resources | None = None
    restart_policy: str | None = Field(None, alias="restartPolicy")


class _Term(_Open):
    match_expressions: list[dict[str, Any]] | None = Field(None, alias="matchExpressions")
    match_fields: list[dict[str, Any]] | None = Field(None, alias="matchFields")


class _NodeSelector(_Open):
    node_selector_terms: list[_Term] | None = Field(None, alias="nodeSelectorTerms")


class _NodeAffinity(_Open):
    required: _NodeSelector | None = Field(None, alias="requiredDuringSchedulingIgnoredDuringExecution")


class _Affinity(_Open):
    node_affinity: _NodeAffinity | None = Field(None, alias="nodeAffinity")


class _PodSpec(_Open):
    containers: list[_Container] = Field(default_factory=list)
    init_containers: list[_Container] | None = Field(None, alias="initContainers")
    ephemeral_containers: list[_Named] | None = Field(None, alias="ephemeralContainers")
    volumes: list[_Named] | None = None
    tolerations: list[dict[str, Any]] | None = None
    affinity: _Affinity | None = None
    node_selector: dict[str, str] | None = Field(None, alias="nodeSelector")
    node_name: str | None = Field(None, alias="nodeName")
    scheduler_name: str | None = Field(None, alias="schedulerName")
    priority_class_name: str | None = Field(None, alias="priorityClassName")

    @model_validator(mode="after")
    def _unique_names(self) -> _PodSpec:
        """Kubernetes needs container names unique across containers, init and ephemeral containers; a merge
        by name could otherwise pick either."""
        seen: set[str] = set()
        for key, containers in (("initContainers", self.init_containers or []), ("containers", self.containers),
                                ("ephemeralContainers", self.ephemeral_containers or [])):
            for index, container in enumerate(containers):
                if container.name in seen:
                    raise ValueError(f"spec.{key}[{index}].name: container name {container.name!r:.80} is used twice")
                seen.add(container.name)
        return self


class _Metadata(_Open):
    name: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    owner_references: list[dict[str, Any]] | None = Field(None, alias="ownerReferences")


class _Pod(_Open):
    metadata: _Metadata = Field(default_factory=_Metadata)
    spec: _PodSpec


def check_pod_shape(obj: dict[str, Any]) -> None:
    _Pod.model_validate(obj)


class _Object(_Open):
    metadata: _Metadata = Field(default_factory=_Metadata)
    spec: dict[str, Any]


def check_object_shape(obj: dict[str, Any]) -> None:
    """Custom resources: metadata as for any object, and a spec that is an object."""
    _Object.model_validate(obj)
