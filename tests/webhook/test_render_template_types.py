"""`infergate render` of workloads whose pod templates hold fields of the wrong type (a string for labels, a
number for the template's metadata, junk volumeClaimTemplates): a denial naming the template and the field,
never an exception."""

from __future__ import annotations

import copy

import pytest

from tests.hardening.test_fuzz import replaced
from webhook.render import render_object

LWS = {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet", "metadata": {"name": "vllm", "namespace": "ml"},
       "spec": {"leaderWorkerTemplate": {"size": 2,
                                         "leaderTemplate": {"metadata": {"labels": {"role": "leader"}},
                                                            "spec": {"containers": [{"name": "vllm-leader", "image": "vllm/vllm-openai:v0.11.0"}]}},
                                         "workerTemplate": {"spec": {"containers": [{"name": "vllm-worker", "image": "vllm/vllm-openai:v0.11.0"}]}}}}}
DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "chat", "namespace": "ml"},
              "spec": {"template": {"metadata": {"labels": {"app": "chat"}},
                                    "spec": {"containers": [{"name": "vllm", "image": "vllm/vllm-openai:v0.11.0"}]}}}}
LEADER = ("spec", "leaderWorkerTemplate", "leaderTemplate")


CASES = [
    # (object, path, junk, field named)
    pytest.param(LWS, LEADER + ("metadata", "labels"), "leader", "metadata.labels", id="lws-labels-string"),
    pytest.param(LWS, LEADER + ("metadata", "annotations"), 1.5, "metadata.annotations", id="lws-annotations-number"),
    pytest.param(LWS, LEADER + ("metadata",), [], "metadata", id="lws-metadata-list"),
    pytest.param(DEPLOYMENT, ("spec", "template", "metadata"), "x", "metadata", id="deployment-metadata-string"),
    pytest.param(DEPLOYMENT, ("spec", "template", "metadata"), True, "metadata", id="deployment-metadata-bool"),
]


@pytest.mark.parametrize(("obj", "path", "junk", "field"), CASES)
def test_junk_in_templates_is_a_named_denial(policy, obj, path, junk, field):
    rendered = render_object("f", replaced(obj, path, junk), policy, "ml")
    assert not rendered.decision.allowed and rendered.decision.code == 400
    assert f"{field}:" in rendered.decision.message and "(pod " in rendered.decision.message, rendered.decision.message


JOBSET = {"apiVersion": "jobset.x-k8s.io/v1alpha2", "kind": "JobSet", "metadata": {"name": "train", "namespace": "ml"},
          "spec": {"replicatedJobs": [{"name": "workers", "template": {"spec": {"template": {"spec": {"containers": [{"name": "t", "image": "pytorch"}]}}}}}]}}


@pytest.mark.parametrize(("obj", "path", "junk"), [
    pytest.param(JOBSET, ("spec", "replicatedJobs"), True, id="jobset-replicatedJobs-bool"),
    pytest.param(JOBSET, ("spec", "replicatedJobs"), "workers", id="jobset-replicatedJobs-string"),
    pytest.param(LWS, LEADER + ("metadata",), None, id="lws-metadata-null"),
    pytest.param(DEPLOYMENT, ("spec", "template", "metadata"), None, id="deployment-metadata-null"),
])
def test_junk_that_hides_templates_or_is_absent_renders(policy, obj, path, junk):
    rendered = render_object("f", replaced(obj, path, junk), policy, "ml")
    assert rendered.decision.allowed, rendered.decision.message
    again = render_object("f", rendered.admitted, policy, "ml")
    assert again.decision.allowed and again.decision.patch == []


@pytest.mark.parametrize("claims", ["x", [5], [{"metadata": 5}], [{"metadata": {"name": 5}}]])
def test_junk_claim_templates_add_no_volume(policy, claims):
    obj = replaced(LWS, ("spec", "leaderWorkerTemplate", "volumeClaimTemplates"), claims)
    rendered = render_object("f", obj, policy, "ml")
    assert rendered.decision.allowed, rendered.decision.message


DAEMONSET = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "dcgm-exporter", "namespace": "ml"},
             "spec": {"template": {"metadata": {"labels": {"app": "dcgm"}},
                                   "spec": {"containers": [{"name": "exporter", "image": "nvcr.io/nvidia/k8s/dcgm-exporter:4.2",
                                                            "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}}}}


def test_a_daemonset_renders_as_its_pods_are_admitted(policy):
    """Its pods carry the DaemonSet as controller, so render leaves a node agent as the webhook does."""
    rendered = render_object("f", copy.deepcopy(DAEMONSET), policy, "ml")
    assert rendered.decision.allowed and rendered.admitted == DAEMONSET
    with_model = replaced(DAEMONSET, ("spec", "template", "metadata", "annotations"), {"infergate.io/model": "llama-3.1-8b-instruct"})
    rendered = render_object("f", with_model, policy, "ml")
    template = rendered.admitted["spec"]["template"]
    assert rendered.decision.allowed and "schedulerName" not in template["spec"]
    assert "ownerReferences" not in template["metadata"], "the controller's reference stays out of the template"
