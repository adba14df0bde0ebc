"""Model weights for every storage URI scheme: original pod to expected volumes, mounts and init containers."""

import pytest

from policies.loader import Policy
from policies.schema import Model
from tests.podkit import pod
from webhook.pod import runtime_container, storage

MOUNT = {"name": "model-store", "mountPath": "/mnt/models", "readOnly": True}
INIT = {
    "name": "model-init",
    "image": "kserve/storage-initializer:v0.15.2",
    "volumeMounts": [{"name": "model-store", "mountPath": "/mnt/models"}],
}

CASES = [
    pytest.param("hf://meta-llama/Llama-3.1-8B-Instruct@main", {"emptyDir": {}}, {}, True, id="hf"),
    pytest.param("s3://bucket/models/llama", {"emptyDir": {}}, {}, True, id="s3"),
    pytest.param("gs://bucket/llama", {"emptyDir": {}}, {}, True, id="gs"),
    pytest.param("pvc://weights/llama/8b", {"persistentVolumeClaim": {"claimName": "weights", "readOnly": True}}, {"subPath": "llama/8b"}, False, id="pvc with subpath"),
    pytest.param("pvc://weights", {"persistentVolumeClaim": {"claimName": "weights", "readOnly": True}}, {}, False, id="pvc"),
    pytest.param("oci://ghcr.io/org/model:1", {"image": {"reference": "ghcr.io/org/model:1", "pullPolicy": "IfNotPresent"}}, {}, False, id="oci"),
    pytest.param("local:///data/llama", {"hostPath": {"path": "/data/llama", "type": "Directory"}}, {}, False, id="local"),
]


def _with_uri(policy: Policy, uri: str) -> Policy:
    base = policy.models["llama-3.1-8b-instruct"]
    model = Model.model_validate({**base.model_dump(by_alias=True), "spec": {**base.spec.model_dump(by_alias=True), "storageUri": uri}})
    return Policy({**policy.models, model.name: model}, policy.runtimes, policy.cluster, policy.source)


@pytest.mark.parametrize(("uri", "source", "mount_extra", "downloaded"), CASES)
def test_storage(policy, uri, source, mount_extra, downloaded):
    from tests.podkit import run_injectors

    result = run_injectors(_with_uri(policy, uri), pod({"infergate.io/model": "llama-3.1-8b-instruct"}), runtime_container.inject, storage.inject)
    spec = result["spec"]
    assert spec["volumes"] == [{"name": "model-store", **source}]
    container = spec["containers"][0]
    assert container["volumeMounts"] == [{**MOUNT, **mount_extra}]
    assert {"name": "MODEL_PATH", "value": "/mnt/models"} in container["env"]
    if downloaded:
        assert spec["initContainers"] == [{**INIT, "args": [uri, "/mnt/models"]}]
    else:
        assert "initContainers" not in spec


def test_user_volume_at_model_path_wins(inject):
    user_mount = {"name": "mine", "mountPath": "/mnt/models"}
    original = pod(
        {"infergate.io/model": "llama-3.1-8b-instruct"},
        containers=[{"name": "model-server", "volumeMounts": [user_mount]}],
        volumes=[{"name": "mine", "emptyDir": {}}],
    )
    result = inject(original, runtime_container.inject, storage.inject)
    assert result["spec"]["containers"][0]["volumeMounts"] == [user_mount]
