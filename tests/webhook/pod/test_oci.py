"""`oci://` per API group: an OCI image (KServe's modelcars) is an image volume; OME's Oracle Object Storage
form `oci://n/NAMESPACE/b/BUCKET/o/PATH` is downloaded by model-init like s3://."""

from __future__ import annotations

import pytest

from policies.storage import parse_storage_uri
from webhook.pod.storage import volume_source

CASES = [
    # (uri, volume source, downloaded)
    pytest.param("oci://ghcr.io/infergate/models/qwen:1.0", {"image": {"reference": "ghcr.io/infergate/models/qwen:1.0", "pullPolicy": "IfNotPresent"}}, False, id="OCI image"),
    pytest.param("oci+native://quay.io/x/llama:v1", {"image": {"reference": "quay.io/x/llama:v1", "pullPolicy": "IfNotPresent"}}, False, id="oci+native image"),
    pytest.param("oci://n/axaxnpcrorw5/b/models/o/meta/llama-3.1-8b", {"emptyDir": {}}, True, id="OME object storage"),
    pytest.param("https://example.com/m.tar.gz", {"emptyDir": {}}, True, id="https download"),
    pytest.param("hf://meta-llama/Llama-3.1-8B", {"emptyDir": {}}, True, id="hf download"),
    pytest.param("hf://meta-llama/Llama-3.1-8B:5206a32", {"emptyDir": {}}, True, id="hf with KServe's :revision"),
]


@pytest.mark.parametrize(("uri", "source", "downloaded"), CASES)
def test_oci_meanings(uri, source, downloaded):
    parsed = parse_storage_uri(uri)
    assert volume_source(parsed, None) == source
    assert parsed.downloaded is downloaded


@pytest.mark.parametrize("uri", ["oci://n/ns/b/bucket/o/", "hf://org/name\n", 5, "ftp://x/y", "oci://../etc"])
def test_bad_uris(uri):
    with pytest.raises(ValueError):
        parse_storage_uri(uri)
