"""Injects the model's weights: a volume for its storage URI, mounted read-only, and MODEL_PATH.

pvc:// mounts the claim, oci:// an image volume, local:// a read-only hostPath; hf://, s3:// and gs:// are
downloaded by the `model-init` init container into an emptyDir, or the policy's cache volume.
"""

from __future__ import annotations

from typing import Any

from infergate import constants
from policies.storage import StorageSource, parse_storage_uri
from webhook.patch import PatchBuilder
from webhook.pod.containers import by_name, container_path
from webhook.pod.plan import PodPlan


def volume_source(source: StorageSource, cache_volume: dict[str, Any] | None) -> dict[str, Any]:
    if source.scheme == "pvc":
        claim, _ = source.pvc_claim_and_subpath
        return {"persistentVolumeClaim": {"claimName": claim, "readOnly": True}}
    if source.scheme == "oci":
        return {"image": {"reference": source.location, "pullPolicy": "IfNotPresent"}}
    if source.scheme == "local":
        return {"hostPath": {"path": source.location, "type": "Directory"}}
    return dict(cache_volume) if cache_volume else {"emptyDir": {}}


def inject(plan: PodPlan, patch: PatchBuilder) -> None:
    assert plan.model is not None
    defaults = plan.defaults
    source = parse_storage_uri(plan.model.spec.storage_uri)
    mount_path = defaults.model_mount_path
    volume = {"name": constants.MODEL_VOLUME, **volume_source(source, defaults.model_cache_volume)}
    patch.ensure_item(("spec", "volumes"), volume, by_name(constants.MODEL_VOLUME))

    mount: dict[str, Any] = {"name": constants.MODEL_VOLUME, "mountPath": mount_path, "readOnly": True}
    if source.scheme == "pvc" and source.pvc_claim_and_subpath[1]:
        mount["subPath"] = source.pvc_claim_and_subpath[1]
    path = container_path(patch, plan.runtime_container_name)
    patch.ensure_item(path + ("volumeMounts",), mount, lambda m: m.get("mountPath") == mount_path)
    patch.ensure_item(
        path + ("env",), {"name": constants.MODEL_PATH_ENV, "value": mount_path}, by_name(constants.MODEL_PATH_ENV)
    )

    if source.downloaded:
        init = {
            "name": constants.MODEL_INIT_CONTAINER,
            "image": defaults.model_init_image,
            "args": [source.uri, mount_path],
            "volumeMounts": [{"name": constants.MODEL_VOLUME, "mountPath": mount_path}],
        }
        patch.ensure_item(("spec", "initContainers"), init, by_name(constants.MODEL_INIT_CONTAINER))
