"""Real-world manifests (tests/webhook/realworld/, written after the projects' own examples) and the pods their
controllers create (labels and names as LWS v0.8.0, JobSet v0.10.1, the Kubeflow training operator and the
Deployment controller set them): every admitted object is valid, admitting it again changes nothing, and no
user field is lost."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any, Iterator

import jsonpatch
import pytest
import yaml

from policies.quantity import parse_quantity
from webhook.admission import decide
from webhook.pod.args import tokenize
from webhook.pod.serving import shell_script
from webhook.review import AdmissionRequest, GroupVersionKind

REALWORLD = Path(__file__).parent / "realworld"
# The one documented rewrite of a user's field: an InferenceService runtime field naming a policy Runtime becomes
# the platform's runtime that Runtime's platformRuntimes names (docs/webhook.md, InferenceServices).
RUNTIME_FIELDS = {("spec", "predictor", "model", "runtime"), ("spec", "runtime", "name")}


def _platform_names(name: Any) -> set[str]:
    from policies import SHIPPED_POLICY_DIR, load_policy

    runtime = load_policy(SHIPPED_POLICY_DIR).runtimes.get(name) if isinstance(name, str) else None
    return {v for v in runtime.spec.platform_runtimes.model_dump().values() if v} if runtime else set()
LWS = "leaderworkerset.sigs.k8s.io"
TRAINING = {"jobset-train.yaml", "pytorchjob.yaml"}


def _pod(template: dict, namespace: str, name: str, labels: dict, annotations: dict | None = None) -> dict:
    metadata = copy.deepcopy(template.get("metadata") or {})
    metadata["namespace"] = namespace
    metadata["name"] = name
    metadata["labels"] = {**(metadata.get("labels") or {}), **labels}
    if annotations:
        metadata["annotations"] = {**(metadata.get("annotations") or {}), **annotations}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": copy.deepcopy(template["spec"])}


def controller_pods(obj: dict) -> Iterator[dict]:
    """The pods a controller creates for the object, as that controller names and labels them."""
    kind, ns, name = obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"]
    if kind == "Deployment":
        yield _pod(obj["spec"]["template"], ns, f"{name}-6d4cf56db6-x7k2p", {"pod-template-hash": "6d4cf56db6"})
    elif kind == "LeaderWorkerSet":
        spec = obj["spec"]["leaderWorkerTemplate"]
        size = str(spec["size"])
        for group in range(obj["spec"].get("replicas", 1)):
            leader = f"{name}-{group}"
            yield _pod(spec.get("leaderTemplate") or spec["workerTemplate"], ns, leader,
                       {f"{LWS}/name": name, f"{LWS}/worker-index": "0", "apps.kubernetes.io/pod-index": str(group)},
                       {f"{LWS}/size": size})
            for worker in range(1, spec["size"]):
                yield _pod(spec["workerTemplate"], ns, f"{leader}-{worker}",
                           {f"{LWS}/name": name, f"{LWS}/group-index": str(group), "apps.kubernetes.io/pod-index": str(worker),
                            f"{LWS}/group-key": hashlib.sha1(f"{ns}/{leader}".encode()).hexdigest()},
                           {f"{LWS}/size": size, f"{LWS}/leader-name": leader})
    elif kind == "JobSet":
        for job in obj["spec"]["replicatedJobs"]:
            for index in range(job.get("replicas", 1)):
                labels = {"jobset.sigs.k8s.io/jobset-name": name, "jobset.sigs.k8s.io/replicatedjob-name": job["name"],
                          "jobset.sigs.k8s.io/job-index": str(index), "batch.kubernetes.io/job-name": f"{name}-{job['name']}-{index}"}
                yield _pod(job["template"]["spec"]["template"], ns, f"{name}-{job['name']}-{index}-0-abcde", labels)
    elif kind == "PyTorchJob":
        for replica_type, replica in obj["spec"]["pytorchReplicaSpecs"].items():
            for index in range(replica.get("replicas", 1)):
                labels = {"training.kubeflow.org/job-name": name, "training.kubeflow.org/replica-type": replica_type.lower(),
                          "training.kubeflow.org/replica-index": str(index), "training.kubeflow.org/operator-name": "pytorchjob-controller"}
                yield _pod(replica["template"], ns, f"{name}-{replica_type.lower()}-{index}", labels)
    else:
        yield obj


def cases() -> Iterator[Any]:
    for path in sorted(REALWORLD.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            for obj in controller_pods(doc):
                yield pytest.param(path.name, obj, id=f"{path.stem}/{obj['kind']}/{obj['metadata']['name']}")


def admit(policy, obj: dict):
    group = obj["apiVersion"].rpartition("/")[0]
    request = AdmissionRequest(uid="u", kind=GroupVersionKind(group=group, version="v1", kind=obj["kind"]), operation="CREATE",
                               namespace=obj["metadata"]["namespace"], object=copy.deepcopy(obj))
    decision = decide(request, policy, mutate=True)
    return decision, (jsonpatch.apply_patch(obj, decision.patch) if decision.patch else obj)


def leaves(value: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, path + (key,))
    elif isinstance(value, list) and path and path[-1] not in ("args", "command"):
        for index, item in enumerate(value):
            yield from leaves(item, path + (index,))
    else:
        yield path, value


def at(doc: Any, path: tuple) -> Any:
    for part in path:
        doc = doc[part]
    return doc


def by_name(items: list[dict]) -> dict[str, dict]:
    return {item["name"]: item for item in items}


def assert_no_user_field_lost(original: dict, admitted: dict) -> None:
    for path, value in leaves(original):
        if "containers" in path or "initContainers" in path or value is None:
            continue  # containers are compared one by one below (ours may be among them); null is absent in Kubernetes
        if path in RUNTIME_FIELDS and at(admitted, path) in _platform_names(value):
            continue
        assert at(admitted, path) == value, f"{'.'.join(map(str, path))} changed"
    for key in ("containers", "initContainers"):
        ours = by_name((admitted.get("spec") or {}).get(key) or [])
        for theirs in (original.get("spec") or {}).get(key) or []:
            merged = ours[theirs["name"]]
            for path, value in leaves(theirs):
                if path[0] == "args":
                    words = [w for t in tokenize(value) for w in t.words]
                    kept = [w for t in tokenize(merged.get("args") or []) for w in t.words]
                    flags = {t.flag: t.words for t in tokenize(value) if t.flag}
                    for flag, words_of in flags.items():
                        assert words_of[0] in kept, f"{theirs['name']}: flag {flag} lost"
                    assert all(w in kept for w in words if not w.startswith("-")), f"{theirs['name']}: args lost"
                elif isinstance(value, list):
                    assert at(merged, path) == value, f"{theirs['name']}.{'.'.join(map(str, path))} changed"
                else:
                    assert at(merged, path) == value, f"{theirs['name']}.{'.'.join(map(str, path))} changed"


def assert_valid_pod(pod: dict) -> None:
    """What the API server's validation of a Pod checks, for the fields infergate writes."""
    spec = pod["spec"]
    names = [c["name"] for c in spec.get("initContainers", []) + spec["containers"]]
    assert len(names) == len(set(names)), f"duplicate container names {names}"
    volumes = [v["name"] for v in spec.get("volumes", [])]
    assert len(volumes) == len(set(volumes)), f"duplicate volumes {volumes}"
    for container in spec.get("initContainers", []) + spec["containers"]:
        assert container.get("image"), f"{container['name']} has no image"
        mounts = container.get("volumeMounts", [])
        assert all(m["name"] in volumes for m in mounts), f"{container['name']} mounts a volume that does not exist"
        paths = [m["mountPath"] for m in mounts]
        assert len(paths) == len(set(paths)), f"{container['name']} mounts {paths}"
        env = [e["name"] for e in container.get("env", [])]
        assert len(env) == len(set(env)), f"{container['name']} env {env}"
        ports = [p["containerPort"] for p in container.get("ports", [])]
        assert len(ports) == len(set(ports)), f"{container['name']} ports {ports}"
        resources = container.get("resources") or {}
        for name, limit in (resources.get("limits") or {}).items():
            request = (resources.get("requests") or {}).get(name)
            if "gpu" in name and request is not None:
                assert str(request) == str(limit), f"{container['name']} {name} request {request} != limit {limit}"
        for name, request in (resources.get("requests") or {}).items():
            if "gpu" in name:
                assert name in (resources.get("limits") or {}), f"{container['name']} {name} request without limit"
            limit = (resources.get("limits") or {}).get(name)
            if limit is not None:
                assert parse_quantity(request) <= parse_quantity(limit), f"{container['name']} {name} request above limit"
    assert spec.get("priority") is None or isinstance(spec["priority"], int)


@pytest.mark.parametrize(("file", "obj"), list(cases()))
def test_realworld(policy, file, obj):
    decision, admitted = admit(policy, obj)
    assert decision.allowed, f"{file}: {decision.message}"
    assert_no_user_field_lost(obj, admitted)
    assert admit(policy, admitted)[0].patch == [], "admitting the output again changes nothing"
    if obj["kind"] != "Pod":
        return
    assert_valid_pod(admitted)
    expected = "training" if file in TRAINING else "inference"
    assert admitted["metadata"]["labels"]["infergate.io/workload"] == expected
    gpu_containers = [c for c in admitted["spec"]["containers"] if any("gpu" in r for r in (c.get("resources") or {}).get("limits", {}))]
    assert len(gpu_containers) <= 1, "a second server was added"
    for before in obj["spec"]["containers"]:
        after = by_name(admitted["spec"]["containers"])[before["name"]]
        probe = after.get("readinessProbe")
        if probe != before.get("readinessProbe") and "httpGet" in probe:
            listening = [p["containerPort"] for p in after.get("ports", [])]
            assert probe["httpGet"]["port"] in listening, f"{before['name']}: a probe on a port the server does not listen on"
        script = shell_script(before)
        if script is not None:
            words = after["command"] + after.get("args", [])
            assert words[: script.script_at + 1] == list(script.words[: script.script_at + 1]), "a word went between -c and the script"


def test_every_manifest_is_collected():
    assert {p.name for p in REALWORLD.glob("*.yaml")} <= {c.values[0] for c in cases()}
