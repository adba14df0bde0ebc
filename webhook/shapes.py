"""The parts of an object the webhook reads, checked for type before any injector runs.

The API server only sends well-typed objects; this guards the webhook against hand-made or fuzzed requests,
so they get a 400 naming the field instead of a crash.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Container(_Open):
    name: str
    image: str | None = None
    command: list[str] | None = None
    args: list[str] | None = None
    env: list[dict[str, Any]] | None = None
    ports: list[dict[str, Any]] | None = None
    volume_mounts: list[dict[str, Any]] | None = Field(None, alias="volumeMounts")
    resources: dict[str, dict[str, str | int | float] | None] | None = None


class _PodSpec(_Open):
    containers: list[_Container] = Field(default_factory=list)
    init_containers: list[_Container] | None = Field(None, alias="initContainers")
    volumes: list[dict[str, Any]] | None = None
    tolerations: list[dict[str, Any]] | None = None
    affinity: dict[str, Any] | None = None
    scheduler_name: str | None = Field(None, alias="schedulerName")
    priority_class_name: str | None = Field(None, alias="priorityClassName")

    @model_validator(mode="after")
    def _unique_names(self) -> _PodSpec:
        """Kubernetes needs container names unique across containers and init containers; a merge by name
        could otherwise pick either."""
        seen: set[str] = set()
        for key, containers in (("initContainers", self.init_containers or []), ("containers", self.containers)):
            for index, container in enumerate(containers):
                if container.name in seen:
                    raise ValueError(f"spec.{key}[{index}].name: container name {container.name!r} is used twice")
                seen.add(container.name)
        return self


class _Metadata(_Open):
    name: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


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
