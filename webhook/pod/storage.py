"""Injects the model's weights: a volume for its storage URI, mounted read-only, and MODEL_PATH.

pvc:// mounts the claim, an oci:// image an image volume, local:// a read-only hostPath; hf://, s3://, gs://,
https:// and OME's object-storage form of oci:// are downloaded by the `model-init` init container into an
emptyDir, or the policy's cache volume.

The user's pod may already use our names or our mount path: a container that already mounts something at the
model path keeps it (the user brings the weights; a warning says so), and a volume or init container of the
user's that has one of our names keeps it, while ours takes a free name.
"""

from __future__ import annotations

from typing import Any

from infergate import constants
from policies.storage import StorageSource, parse_storage_uri
from webhook.patch import PatchBuilder
from webhook.pod.containers import by_name, container_path, free_name
from webhook.pod.plan import PodPlan


def volume_source(source: StorageSource, cache_volume: dict[str, Any] | None) -> dict[str, Any]:
    if source.scheme == "pvc":
        claim, _ = source.pvc_claim_and_subpath
        return {"persistentVolumeClaim": {"claimName": claim, "readOnly": True}}
    if source.image:
        return {"image": {"reference": source.location, "pullPolicy": "IfNotPresent"}}
    if source.scheme == "local":
        return {"hostPath": {"path": source.location, "type": "Directory"}}
    return dict(cache_volume) if cache_volume else {"emptyDir": {}}


def inject(plan: PodPlan, patch: PatchBuilder) -> None:
    assert plan.model is not None
    defaults = plan.defaults
    source = parse_storage_uri(plan.model.spec.storage_uri)
    mount_path = defaults.model_mount_path
    path = container_path(patch, plan.runtime_container_name)
    patch.ensure_item(
        path + ("env",), {"name": constants.MODEL_PATH_ENV, "value": mount_path}, by_name(constants.MODEL_PATH_ENV)
    )
    mounted = next((m for m in patch.get(path + ("volumeMounts",)) or [] if m.get("mountPath") == mount_path), None)
    if mounted is not None:
        if not plan.readmission:
            plan.warnings.append(
                f"container {plan.runtime_container_name} already mounts volume {mounted.get('name')} at {mount_path}: "
                f"it is used as the weights of model {plan.model.name}; infergate adds no volume for {plan.model.spec.storage_uri}"
            )
        return

    volume_name = free_name(patch.get(("spec", "volumes")) or [], constants.MODEL_VOLUME)
    patch.append(("spec", "volumes"), {"name": volume_name, **volume_source(source, defaults.model_cache_volume)})
    mount: dict[str, Any] = {"name": volume_name, "mountPath": mount_path, "readOnly": True}
    if source.scheme == "pvc" and source.pvc_claim_and_subpath[1]:
        mount["subPath"] = source.pvc_claim_and_subpath[1]
    patch.append(path + ("volumeMounts",), mount)

    if source.downloaded:
        all_containers = [*(patch.get(("spec", "initContainers")) or []), *(patch.get(("spec", "containers")) or [])]
        init = {
            "name": free_name(all_containers, constants.MODEL_INIT_CONTAINER),
            "image": defaults.model_init_image,
            "args": [source.uri, mount_path],
            "volumeMounts": [{"name": volume_name, "mountPath": mount_path}],
        }
        patch.append(("spec", "initContainers"), init)
