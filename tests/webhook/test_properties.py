"""Properties over generated pods: the output is a valid pod, re-admitting it is a no-op, user fields survive."""

from __future__ import annotations

import copy
import re
from typing import Any

import jsonpatch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies import SHIPPED_POLICY_DIR, load_policy
from webhook.errors import AdmissionDenied
from webhook.pod.mutator import mutate_pod

POLICY = load_policy(SHIPPED_POLICY_DIR)
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
SINGLE_NODE_MODELS = sorted(n for n, m in POLICY.models.items() if m.spec.multi_node is None)

names = st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True)
env_vars = st.lists(st.fixed_dictionaries({"name": st.from_regex(r"[A-Z][A-Z0-9_]{0,6}", fullmatch=True), "value": st.text(max_size=5)}), max_size=3, unique_by=lambda e: e["name"])
flags = st.lists(st.tuples(st.from_regex(r"--[a-z][a-z-]{0,8}", fullmatch=True), st.from_regex(r"[a-z0-9]{1,4}", fullmatch=True)), max_size=3, unique_by=lambda f: f[0])


@st.composite
def user_pods(draw: st.DrawFn) -> dict[str, Any]:
    annotations = {"infergate.io/model": draw(st.sampled_from(SINGLE_NODE_MODELS))}
    gpu_choice = draw(st.sampled_from(["default", "gpus", "fraction"]))
    if gpu_choice == "gpus":
        annotations["infergate.io/gpus"] = str(draw(st.integers(1, 8)))
    elif gpu_choice == "fraction":
        annotations["infergate.io/gpu-fraction"] = draw(st.sampled_from(["0.1", "0.25", "0.5", ".75", "0.999"]))
    if draw(st.booleans()):
        annotations["infergate.io/runtime"] = draw(st.sampled_from(sorted(POLICY.runtimes)))
    if draw(st.booleans()):
        annotations["infergate.io/gpu-product"] = draw(st.sampled_from(["NVIDIA-A100-SXM4-80GB", "NVIDIA-H100-80GB-HBM3"]))
    annotations.update(draw(st.dictionaries(st.from_regex(r"example\.com/[a-z]{1,6}", fullmatch=True), st.text(max_size=6), max_size=2)))
    labels = draw(st.dictionaries(st.from_regex(r"app\.example/[a-z]{1,6}", fullmatch=True), names, max_size=2))

    containers = []
    if draw(st.booleans()):
        own: dict[str, Any] = {"name": "model-server"}
        if draw(st.booleans()):
            own["image"] = "registry.example/serving:" + draw(names)
        user_flags = draw(flags)
        if user_flags:
            own["args"] = [w for flag in user_flags for w in flag]
        env = draw(env_vars)
        if env:
            own["env"] = env
        if draw(st.booleans()):
            own["resources"] = {"requests": {"cpu": str(draw(st.integers(1, 32)))}}
        containers.append(own)
    for sidecar in draw(st.lists(names.filter(lambda n: n != "model-server"), max_size=2, unique=True)):
        containers.append({"name": sidecar, "image": "busybox", "env": draw(env_vars)})
    spec: dict[str, Any] = {"containers": containers}
    if draw(st.booleans()):
        spec["volumes"] = [{"name": "scratch", "emptyDir": {}}]
    if draw(st.booleans()):
        spec["tolerations"] = [{"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": draw(names), "annotations": annotations, "labels": labels}, "spec": spec}


def assert_valid_pod(pod: dict[str, Any]) -> None:
    """The API server's rules the webhook could break: names, references and resources."""
    spec = pod["spec"]
    volumes = [v["name"] for v in spec.get("volumes", [])]
    assert len(volumes) == len(set(volumes)), "volume names are unique"
    all_containers = spec["containers"] + spec.get("initContainers", [])
    container_names = [c["name"] for c in all_containers]
    assert spec["containers"] and len(container_names) == len(set(container_names))
    for container in all_containers:
        assert DNS_LABEL.match(container["name"]) and container.get("image")
        assert all(isinstance(a, str) for a in container.get("args", []))
        mounts = container.get("volumeMounts", [])
        assert all(m["name"] in volumes for m in mounts), "mounts name existing volumes"
        assert len({m["mountPath"] for m in mounts}) == len(mounts), "mount paths are unique"
        env_names = [e["name"] for e in container.get("env", [])]
        assert len(env_names) == len(set(env_names))
        resources = container.get("resources", {})
        for resource, amount in resources.get("limits", {}).items():
            if "/" in resource:  # extended resources: requests must equal limits
                assert resources.get("requests", {}).get(resource, amount) == amount
    assert isinstance(spec.get("priority", 0), int)


def assert_user_fields_survive(original: dict[str, Any], admitted: dict[str, Any]) -> None:
    for section in ("annotations", "labels"):
        for key, value in original["metadata"].get(section, {}).items():
            assert admitted["metadata"][section][key] == value
    admitted_containers = {c["name"]: c for c in admitted["spec"]["containers"]}
    for container in original["spec"]["containers"]:
        result = admitted_containers[container["name"]]
        for key in ("image", "command"):
            if key in container:
                assert result[key] == container[key]
        for env in container.get("env", []):
            assert env in result["env"]
        args = container.get("args", [])
        for i in range(0, len(args), 2):
            position = result["args"].index(args[i])
            assert result["args"][position + 1] == args[i + 1], "the user's flag value wins"
        for kind, entries in container.get("resources", {}).items():
            for resource, amount in entries.items():
                assert result["resources"][kind][resource] == amount
    for volume in original["spec"].get("volumes", []):
        assert volume in admitted["spec"]["volumes"]
    for toleration in original["spec"].get("tolerations", []):
        assert toleration in admitted["spec"]["tolerations"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(user_pods())
def test_admission_properties(original):
    edited = copy.deepcopy(original)
    try:
        mutation = mutate_pod(edited, "ml", POLICY)
    except AdmissionDenied as denied:
        assert edited == original, "a denial changes nothing"
        assert denied.message.startswith("pod ml/")
        return
    assert jsonpatch.apply_patch(original, mutation.patch) == edited
    assert_valid_pod(edited)
    assert_user_fields_survive(original, edited)
    again = copy.deepcopy(edited)
    assert mutate_pod(again, "ml", POLICY).patch == [], "admitting the output again changes nothing"
