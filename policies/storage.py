"""Storage URIs of model weights: pvc://, hf://, s3://, gs://, oci://, local://, and what KServe also reads.

`oci://` has two meanings: an OCI image reference (KServe's modelcars; infergate mounts it as an image volume),
and OME's Oracle Object Storage form `oci://n/NAMESPACE/b/BUCKET/o/PATH`, which is downloaded like `s3://`.
The object-storage form is recognised by its shape, so one URI never means both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SCHEMES = ("pvc", "hf", "s3", "gs", "oci", "oci+native", "local", "https", "http", "hdfs", "webhdfs")
# Fetched by the model-init container (KServe's storage initializer reads all of these).
DOWNLOADED = ("hf", "s3", "gs", "https", "http", "hdfs", "webhdfs")

_PVC = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?)(/[A-Za-z0-9._/-]+)?\Z")
# A revision after `@` (infergate's form) or `:` (KServe's storage initializer: hf://ORG/NAME:REVISION).
_HF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*([@:][A-Za-z0-9._/-]+)?\Z")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}(/[A-Za-z0-9._/=+-]*)?\Z")
_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@-]*\Z")
_LOCAL = re.compile(r"^/[A-Za-z0-9._/-]+\Z")
_URL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]*(:[0-9]{1,5})?(/[A-Za-z0-9._~/=+%&?:@,-]*)?\Z")
# OME: oci://n/{namespace}/b/{bucket}/o/{object path}
_OBJECT_STORAGE = re.compile(r"^n/[A-Za-z0-9._-]+/b/[A-Za-z0-9._-]+/o/[A-Za-z0-9._/=+-]+\Z")

_SHAPES = {
    "pvc": (_PVC, "pvc://CLAIM[/SUBPATH]"),
    "hf": (_HF, "hf://ORG/NAME[@REVISION]"),
    "s3": (_BUCKET, "s3://BUCKET/PATH"),
    "gs": (_BUCKET, "gs://BUCKET/PATH"),
    "oci": (_IMAGE, "oci://REGISTRY/IMAGE:TAG or oci://n/NAMESPACE/b/BUCKET/o/PATH"),
    "oci+native": (_IMAGE, "oci+native://REGISTRY/IMAGE:TAG"),
    "local": (_LOCAL, "local:///ABSOLUTE/DIR"),
    "https": (_URL, "https://HOST/PATH"),
    "http": (_URL, "http://HOST/PATH"),
    "hdfs": (_URL, "hdfs://HOST/PATH"),
    "webhdfs": (_URL, "webhdfs://HOST/PATH"),
}


@dataclass(frozen=True)
class StorageSource:
    uri: str
    scheme: str
    location: str  # what follows "scheme://"

    @property
    def object_storage(self) -> bool:
        """OME's Oracle Object Storage form of oci://."""
        return self.scheme == "oci" and bool(_OBJECT_STORAGE.match(self.location))

    @property
    def image(self) -> bool:
        """An OCI image holding the weights, mounted as an image volume."""
        return self.scheme in ("oci", "oci+native") and not self.object_storage

    @property
    def downloaded(self) -> bool:
        return self.scheme in DOWNLOADED or self.object_storage

    @property
    def pvc_claim_and_subpath(self) -> tuple[str, str | None]:
        claim, _, subpath = self.location.partition("/")
        return claim, subpath or None


def parse_storage_uri(uri: object) -> StorageSource:
    """Parse and validate a storage URI; a ValueError says what a valid one looks like."""
    if not isinstance(uri, str):
        raise ValueError(f"{uri!r} is not a storage URI (a string such as hf://ORG/NAME)")
    scheme, sep, location = uri.partition("://")
    if not sep or scheme not in SCHEMES:
        raise ValueError(f"{uri!r} is not a storage URI; use one of " + ", ".join(f"{s}://" for s in SCHEMES))
    pattern, shape = _SHAPES[scheme]
    if scheme == "oci" and location.startswith("n/") and "/b/" in location:  # meant as OME's object storage
        pattern, shape = _OBJECT_STORAGE, "oci://n/NAMESPACE/b/BUCKET/o/PATH"
    if ".." in location.split("/") or not pattern.match(location):
        raise ValueError(f"{uri!r} is not a valid {scheme}:// URI; expected {shape}")
    return StorageSource(uri, scheme, location)
