"""Pod templates of workload objects, for `infergate render`: the webhook admits pods, not Deployments.

For each pod template of a workload (Deployment, StatefulSet, Job, CronJob, LeaderWorkerSet, JobSet, the
Kubeflow training jobs, ...), the first pod its controller would create: the template with the labels,
annotations and name that controller gives it (read from its source: LWS v0.8.0, JobSet v0.10.1, the Kubeflow
training operator), so the pod is classed and grouped as in the cluster.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from infergate import constants

Path = tuple[str | int, ...]
LWS = "leaderworkerset.sigs.k8s.io"


@dataclass
class TemplatePod:
    path: Path  # where the template is in the object
    name: str  # the pod's name as the controller would give it
    role: str  # a word for messages: "template", "leaderTemplate", "workers template" ...
    labels: dict[str, str] = field(default_factory=dict)  # what the controller adds to the template's
    annotations: dict[str, str] = field(default_factory=dict)
    write_back: bool = True  # False: only checked (a template shared by pods of different ranks)
    claims: list[str] = field(default_factory=list)  # volumes the controller adds from volumeClaimTemplates
    owner: str | None = None  # the controller's kind, where the webhook reads it (DaemonSet pods)


def _claims(holder: Any) -> list[str]:
    """The volume names a StatefulSet (or LWS) gives its pods from volumeClaimTemplates."""
    templates = holder.get("volumeClaimTemplates") if isinstance(holder, dict) else None
    if not isinstance(templates, list):
        return []
    names = [t["metadata"].get("name") for t in templates if isinstance(t, dict) and isinstance(t.get("metadata"), dict)]
    return [n for n in names if isinstance(n, str) and n]


def _at(obj: Any, path: Path) -> Any:
    for part in path:
        if isinstance(obj, dict) and isinstance(part, str):
            obj = obj.get(part)
        elif isinstance(obj, list) and isinstance(part, int) and 0 <= part < len(obj):
            obj = obj[part]
        else:
            return None
    return obj


def template_pods(obj: dict[str, Any]) -> list[TemplatePod]:
    return [t for t in _templates(obj) if isinstance(_at(obj, t.path), dict)]


def _templates(obj: dict[str, Any]) -> Iterator[TemplatePod]:
    kind = obj.get("kind")
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    name = str(metadata.get("name") or "workload")
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    if kind == "DaemonSet":
        yield TemplatePod(("spec", "template"), f"{name}-x2x7q", "template", owner="DaemonSet")
    elif kind in ("Deployment", "ReplicaSet", "Job", "ReplicationController"):
        yield TemplatePod(("spec", "template"), f"{name}-7c9d8f6b5-x2x7q", "template")
    elif kind == "StatefulSet":
        yield TemplatePod(("spec", "template"), f"{name}-0", "template", {constants.STATEFULSET_POD_INDEX_LABEL: "0"},
                          claims=_claims(spec))
    elif kind == "CronJob":
        yield TemplatePod(("spec", "jobTemplate", "spec", "template"), f"{name}-28934560-x2x7q", "jobTemplate")
    elif kind == "LeaderWorkerSet":
        lws = spec.get("leaderWorkerTemplate") if isinstance(spec.get("leaderWorkerTemplate"), dict) else {}
        size = lws.get("size", 1)
        size_text = str(size) if isinstance(size, int) and not isinstance(size, bool) else "1"
        base = ("spec", "leaderWorkerTemplate")
        own_leader = isinstance(lws.get("leaderTemplate"), dict)
        leader_path = base + (("leaderTemplate",) if own_leader else ("workerTemplate",))
        yield TemplatePod(leader_path, f"{name}-0", "leaderTemplate" if own_leader else "workerTemplate (leader)",
                          {f"{LWS}/name": name, f"{LWS}/worker-index": "0"}, {f"{LWS}/size": size_text},
                          write_back=own_leader or size_text == "1", claims=_claims(lws))
        if size_text != "1":
            yield TemplatePod(base + ("workerTemplate",), f"{name}-0-1", "workerTemplate",
                              {f"{LWS}/name": name, f"{LWS}/group-index": "0"},
                              {f"{LWS}/size": size_text, f"{LWS}/leader-name": f"{name}-0"}, claims=_claims(lws))
    elif kind == "JobSet":
        jobs = spec.get("replicatedJobs")
        for index, job in enumerate(jobs if isinstance(jobs, list) else []):
            job_name = str(job.get("name") if isinstance(job, dict) else index)
            labels = {"jobset.sigs.k8s.io/jobset-name": name, "jobset.sigs.k8s.io/replicatedjob-name": job_name,
                      "jobset.sigs.k8s.io/job-index": "0"}
            yield TemplatePod(("spec", "replicatedJobs", index, "template", "spec", "template"),
                              f"{name}-{job_name}-0-0-x2x7q", f"replicatedJobs[{job_name}]", labels)
    elif str(obj.get("apiVersion", "")).startswith("kubeflow.org/"):
        for key, replicas in spec.items():
            if key.endswith("ReplicaSpecs") and isinstance(replicas, dict):
                for replica_type in replicas:
                    labels = {"training.kubeflow.org/job-name": name,
                              "training.kubeflow.org/replica-type": str(replica_type).lower(),
                              "training.kubeflow.org/replica-index": "0"}
                    yield TemplatePod(("spec", key, replica_type, "template"), f"{name}-{str(replica_type).lower()}-0",
                                      f"{key}.{replica_type}", labels)


def as_pod(obj: dict[str, Any], template: TemplatePod, namespace: str) -> dict[str, Any]:
    source = _at(obj, template.path)
    metadata = copy.deepcopy(source.get("metadata"))
    if metadata is None:
        metadata = {}
    if isinstance(metadata, dict):  # anything else is left for the pod's shape check to name
        metadata["name"] = template.name
        metadata["namespace"] = namespace
        if template.owner:
            owner_name = (obj.get("metadata") or {}).get("name") if isinstance(obj.get("metadata"), dict) else None
            metadata["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": template.owner, "name": str(owner_name or "workload"),
                                            "uid": "", "controller": True, "blockOwnerDeletion": True}]
        for key, added in (("labels", template.labels), ("annotations", template.annotations)):
            own = metadata.get(key)
            if added and (own is None or isinstance(own, dict)):
                metadata[key] = {**(own or {}), **added}
    spec = copy.deepcopy(source.get("spec"))
    if template.claims and isinstance(spec, dict):
        # As the StatefulSet controller does: each claim template becomes the pod's volume of that name.
        own = [v for v in spec.get("volumes") or [] if not (isinstance(v, dict) and v.get("name") in template.claims)]
        spec["volumes"] = [{"name": claim, "persistentVolumeClaim": {"claimName": f"{claim}-{template.name}"}}
                           for claim in template.claims] + own
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def write_back(obj: dict[str, Any], template: TemplatePod, admitted: dict[str, Any]) -> None:
    """The admitted pod's labels, annotations and spec into the template, without what the controller adds."""
    target = _at(obj, template.path)
    if not isinstance(target.get("metadata"), dict):
        target["metadata"] = {}  # null (absent); anything else was denied by the pod's shape check
    metadata = target["metadata"]
    own = admitted.get("metadata") or {}
    for key, added in (("labels", template.labels), ("annotations", template.annotations)):
        values = {k: v for k, v in (own.get(key) or {}).items() if k not in added}
        if values:
            metadata[key] = values
    spec = admitted["spec"]
    if template.claims:
        source = {v.get("name"): v for v in (target.get("spec") or {}).get("volumes") or [] if isinstance(v, dict)}
        volumes = [source.get(v.get("name"), v) for v in spec.get("volumes") or []
                   if v.get("name") not in template.claims or v.get("name") in source]
        if volumes or "volumes" in (target.get("spec") or {}):
            spec["volumes"] = volumes
        else:
            spec.pop("volumes", None)
    target["spec"] = spec
