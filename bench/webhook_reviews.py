"""AdmissionReviews as the API server sends them to /mutate, built from the objects in deploy/samples/.

The webhook configuration sends Pods and InferenceServices only, so the other objects of the samples
(Namespaces, volumes) are left out. By default each object first gets what the API server adds before the
mutating webhooks run, so bodies have a realistic size and shape:

- `kubectl apply`: the `kubectl.kubernetes.io/last-applied-configuration` annotation and `managedFields`;
- Pods: the scheme's defaults (restartPolicy, dnsPolicy, terminationMessagePath, ...), and from the built-in
  admission plugins that run before webhooks: the service account token volume and its mounts
  (ServiceAccount), the not-ready/unreachable tolerations (DefaultTolerationSeconds) and `priority: 0`
  (Priority).

`plain=True` sends the manifests as written instead.
"""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "deploy" / "samples"

# Every request body carries this uid; the client swaps in a fresh uid (same length) per request.
UID_PLACEHOLDER = "00000000-0000-4000-8000-000000000000"
assert len(UID_PLACEHOLDER) == len(str(uuid.uuid4()))

_TOKEN_VOLUME = "kube-api-access-7xk2p"
_APPLIED_AT = "2025-01-01T00:00:00Z"


def sample_objects(samples: Path = SAMPLES) -> list[tuple[str, dict[str, Any]]]:
    """(label, object) for every Pod and InferenceService of the sample manifests, in file order."""
    found = []
    for path in sorted(samples.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") in ("Pod", "InferenceService"):
                found.append((f"{path.stem}/{doc['metadata']['name']}", doc))
    return found


def _fields_v1(value: Any) -> dict[str, Any]:
    """The managedFields fieldsV1 set of an object, as the API server writes it (keyed lists by name)."""
    if isinstance(value, dict):
        return {f"f:{key}": _fields_v1(item) for key, item in value.items()}
    if isinstance(value, list) and value and all(isinstance(i, dict) and "name" in i for i in value):
        return {
            "k:" + json.dumps({"name": i["name"]}, separators=(",", ":")): {".": {}, **_fields_v1(i)} for i in value
        }
    return {}


def _applied(obj: dict[str, Any]) -> dict[str, Any]:
    """What `kubectl apply` (client-side) sends: the annotation with the manifest, and its managedFields."""
    result = copy.deepcopy(obj)
    metadata = result.setdefault("metadata", {})
    metadata.setdefault("annotations", {})["kubectl.kubernetes.io/last-applied-configuration"] = (
        json.dumps(obj, separators=(",", ":"), sort_keys=True) + "\n"
    )
    managed = {key: value for key, value in result.items() if key not in ("apiVersion", "kind", "status")}
    metadata["managedFields"] = [
        {
            "manager": "kubectl-client-side-apply",
            "operation": "Update",
            "apiVersion": obj.get("apiVersion", "v1"),
            "time": _APPLIED_AT,
            "fieldsType": "FieldsV1",
            "fieldsV1": _fields_v1(managed),
        }
    ]
    return result


def _defaulted_pod(pod: dict[str, Any]) -> dict[str, Any]:
    spec = pod["spec"]
    mount = {"name": _TOKEN_VOLUME, "readOnly": True, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}
    for key in ("containers", "initContainers"):
        for container in spec.get(key) or []:
            container.setdefault("resources", {})
            container.setdefault("terminationMessagePath", "/dev/termination-log")
            container.setdefault("terminationMessagePolicy", "File")
            container.setdefault("imagePullPolicy", "IfNotPresent")
            container.setdefault("volumeMounts", []).append(dict(mount))
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("serviceAccountName", "default")
    spec.setdefault("serviceAccount", "default")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("tolerations", []).extend(
        {"key": f"node.kubernetes.io/{taint}", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
        for taint in ("not-ready", "unreachable")
    )
    spec.setdefault("priority", 0)
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    spec.setdefault("volumes", []).append(
        {
            "name": _TOKEN_VOLUME,
            "projected": {
                "sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                    {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
                ],
                "defaultMode": 420,
            },
        }
    )
    pod.setdefault("status", {})
    return pod


def api_server_view(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as a mutating webhook sees it on CREATE after `kubectl apply`."""
    result = _applied(obj)
    return _defaulted_pod(result) if result.get("kind") == "Pod" else result


def admission_review(obj: dict[str, Any], uid: str = UID_PLACEHOLDER) -> dict[str, Any]:
    group, _, version = obj.get("apiVersion", "v1").rpartition("/")
    kind = obj["kind"]
    gvk = {"group": group, "version": version, "kind": kind}
    gvr = {"group": group, "version": version, "resource": "pods" if kind == "Pod" else "inferenceservices"}
    metadata = obj.get("metadata") or {}
    return {
        "kind": "AdmissionReview",
        "apiVersion": "admission.k8s.io/v1",
        "request": {
            "uid": uid,
            "kind": gvk,
            "resource": gvr,
            "requestKind": gvk,
            "requestResource": gvr,
            "name": metadata.get("name"),
            "namespace": metadata.get("namespace", "default"),
            "operation": "CREATE",
            "userInfo": {"username": "kubernetes-admin", "groups": ["kubeadm:cluster-admins", "system:authenticated"]},
            "object": obj,
            "oldObject": None,
            "dryRun": False,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": "kubectl-client-side-apply", "fieldValidation": "Strict"},
        },
    }


def review_bodies(*, plain: bool = False) -> list[tuple[str, bytes]]:
    """(label, JSON body with UID_PLACEHOLDER as request.uid) for every sample object."""
    bodies = []
    for label, obj in sample_objects():
        wire = obj if plain else api_server_view(obj)
        bodies.append((label, json.dumps(admission_review(wire), separators=(",", ":")).encode()))
    return bodies
