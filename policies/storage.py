"""Storage URIs of model weights: pvc://, hf://, s3://, gs://, oci:// and local://."""

from __future__ import annotations

import re
from dataclasses import dataclass

SCHEMES = ("pvc", "hf", "s3", "gs", "oci", "local")
DOWNLOADED = ("hf", "s3", "gs")  # fetched by the model-init container

_PVC = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?)(/[A-Za-z0-9._/-]+)?$")
_HF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*(@[A-Za-z0-9._/-]+)?$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}(/[A-Za-z0-9._/=+-]*)?$")
_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@-]*$")
_LOCAL = re.compile(r"^/[A-Za-z0-9._/-]+$")


@dataclass(frozen=True)
class StorageSource:
    uri: str
    scheme: str
    location: str  # what follows "scheme://"

    @property
    def downloaded(self) -> bool:
        return self.scheme in DOWNLOADED

    @property
    def pvc_claim_and_subpath(self) -> tuple[str, str | None]:
        claim, _, subpath = self.location.partition("/")
        return claim, subpath or None


def parse_storage_uri(uri: str) -> StorageSource:
    """Parse and validate a storage URI; a ValueError says what a valid one looks like."""
    scheme, sep, location = uri.partition("://")
    if not sep or scheme not in SCHEMES:
        raise ValueError(f"{uri!r} is not a storage URI; use one of " + ", ".join(f"{s}://" for s in SCHEMES))
    checks = {
        "pvc": (_PVC, "pvc://CLAIM[/SUBPATH]"),
        "hf": (_HF, "hf://ORG/NAME[@REVISION]"),
        "s3": (_BUCKET, "s3://BUCKET/PATH"),
        "gs": (_BUCKET, "gs://BUCKET/PATH"),
        "oci": (_IMAGE, "oci://REGISTRY/IMAGE:TAG"),
        "local": (_LOCAL, "local:///ABSOLUTE/DIR"),
    }
    pattern, shape = checks[scheme]
    if ".." in location.split("/") or not pattern.match(location):
        raise ValueError(f"{uri!r} is not a valid {scheme}:// URI; expected {shape}")
    return StorageSource(uri, scheme, location)
