"""Workloads with volumeClaimTemplates (StatefulSet, LeaderWorkerSet as in LWS's lws-volume-claim-templates
example): their controllers give each pod a volume per claim template, so render admits the pod with those
volumes (a template that mounts one is valid), keeps the claim's name as the user's, and writes back a
template without them."""

from __future__ import annotations

import copy

import pytest

from webhook.render import render_object
from webhook.templates import as_pod, template_pods

CLAIM = {"metadata": {"name": "persistent-storage"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}}}


def _container(name: str, mount: str, claim: str = "persistent-storage", image: str = "vllm/vllm-openai:v0.11.0") -> dict:
    return {"name": name, "image": image, "volumeMounts": [{"name": claim, "mountPath": mount}]}


def lws(claim: str = "persistent-storage", mount: str = "/mnt/volume", model: str | None = "deepseek-r1") -> dict:
    annotations = {"infergate.io/model": model} if model else {}
    claims = [{**CLAIM, "metadata": {"name": claim}}]
    sglang = "lmsysorg/sglang:v0.5.2-cu126"  # deepseek-r1 runs on the sglang runtime
    template = {"metadata": {"annotations": annotations}, "spec": {"containers": [_container("leader", mount, claim, sglang)]}}
    worker = {"metadata": {"annotations": annotations}, "spec": {"containers": [_container("worker", mount, claim, sglang)]}}
    return {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet", "metadata": {"name": "lws", "namespace": "ml"},
            "spec": {"replicas": 2, "leaderWorkerTemplate": {"size": 2, "volumeClaimTemplates": claims,
                                                             "leaderTemplate": template, "workerTemplate": worker}}}


def statefulset(claim: str = "persistent-storage", mount: str = "/data", model: str | None = "llama-3.1-8b-instruct") -> dict:
    annotations = {"infergate.io/model": model} if model else {}
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "vllm", "namespace": "ml"},
            "spec": {"serviceName": "vllm", "volumeClaimTemplates": [{**CLAIM, "metadata": {"name": claim}}],
                     "template": {"metadata": {"annotations": annotations}, "spec": {"containers": [_container("vllm", mount, claim)]}}}}


CASES = [
    # (workload, the volume our model store gets, whether a model-init downloads)
    pytest.param(lws(), "model-store", True, id="lws-claim-elsewhere"),
    pytest.param(lws(claim="model-store"), "infergate-model-store", True, id="lws-claim-named-model-store"),
    pytest.param(lws(model=None), None, False, id="lws-without-model"),
    pytest.param(statefulset(), "model-store", True, id="sts-claim-elsewhere"),
    pytest.param(statefulset(claim="model-store"), "infergate-model-store", True, id="sts-claim-named-model-store"),
    pytest.param(statefulset(claim="weights", mount="/mnt/models"), None, False, id="sts-claim-is-the-weights"),
]


@pytest.mark.parametrize(("workload", "store", "downloads"), CASES)
def test_claims_are_the_pods_volumes(policy, workload, store, downloads):
    rendered = render_object("f", copy.deepcopy(workload), policy, "ml")
    assert rendered.decision.allowed, rendered.decision.message
    claim = workload["spec"].get("volumeClaimTemplates") or workload["spec"]["leaderWorkerTemplate"]["volumeClaimTemplates"]
    claim_name = claim[0]["metadata"]["name"]
    for template in template_pods(rendered.admitted):
        pod = as_pod(rendered.admitted, template, "ml")
        volumes = [v["name"] for v in pod["spec"]["volumes"]]
        assert len(volumes) == len(set(volumes)) and claim_name in volumes
        for container in pod["spec"]["containers"]:
            assert all(m["name"] in volumes for m in container.get("volumeMounts", []))
        written = [v["name"] for v in _at(rendered.admitted, template.path)["spec"].get("volumes", [])]
        assert claim_name not in written, "the claim's volume is the controller's, not written into the template"
        if store:
            assert store in volumes
        assert any(c["name"].endswith("model-init") for c in pod["spec"].get("initContainers", [])) == downloads
    again = render_object("f", rendered.admitted, policy, "ml")
    assert again.decision.allowed and again.decision.patch == []


def _at(obj, path):
    for part in path:
        obj = obj[part]
    return obj
