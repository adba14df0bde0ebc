"""The user's schedulerName and priorityClassName are never silently overwritten: another scheduler or another
priority class is kept, with a warning; one of infergate's classes that contradicts the pod's workload class is
a 400 naming spec.priorityClassName. The API server's own defaults (schedulerName default-scheduler, and the
priority it resolved) cannot be told from unset and are replaced."""

from __future__ import annotations

import dataclasses

import pytest

from tests.webhook.test_realworld import admit

MODEL = {"infergate.io/model": "llama-3.1-8b-instruct"}


def pod(annotations, **spec):
    containers = [{"name": "vllm", "image": "vllm/vllm-openai:v0.11.0"}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "chat", "namespace": "ml", "annotations": annotations},
            "spec": {"containers": containers, **spec}}


CASES = [
    # (annotations, user's spec, scheduler, class, priority, a warning containing, denied field)
    pytest.param(MODEL, {"schedulerName": "default-scheduler", "priority": 0}, "infergate-scheduler", "infergate-inference",
                 1_000_000, None, None, id="api-server-defaults-replaced"),
    pytest.param(MODEL, {"schedulerName": "volcano"}, "volcano", "infergate-inference", 1_000_000, "keeps schedulerName volcano",
                 None, id="other-scheduler-kept"),
    pytest.param(MODEL, {"priorityClassName": "team-high", "priority": 7}, "infergate-scheduler", "team-high", 7,
                 "keeps priorityClassName team-high", None, id="other-class-kept"),
    pytest.param(MODEL, {"priorityClassName": "infergate-inference", "priority": 1_000_000}, "infergate-scheduler",
                 "infergate-inference", 1_000_000, None, None, id="our-matching-class"),
    pytest.param(MODEL, {"priorityClassName": "infergate-training"}, None, None, None, None, "spec.priorityClassName",
                 id="our-class-contradicting-inference"),
    pytest.param({"infergate.io/workload": "training"}, {"priorityClassName": "infergate-inference"}, None, None, None, None,
                 "spec.priorityClassName", id="our-class-contradicting-the-annotation"),
    pytest.param({**MODEL, "infergate.io/workload": "training"}, {"priorityClassName": "infergate-training"}, "infergate-scheduler",
                 "infergate-training", 10_000, None, None, id="class-annotation-agrees"),
]


@pytest.mark.parametrize(("annotations", "spec", "scheduler", "priority_class", "priority", "warning", "denied"), CASES)
def test_scheduler_and_priority(policy, annotations, spec, scheduler, priority_class, priority, warning, denied):
    decision, admitted = admit(policy, pod(annotations, **spec))
    if denied:
        assert not decision.allowed and decision.code == 400 and decision.field == denied, decision.message
        assert decision.message.startswith("pod ml/chat: spec.priorityClassName") and "infergate.io/workload" in decision.message
        return
    assert decision.allowed, decision.message
    assert admitted["spec"]["schedulerName"] == scheduler
    assert (admitted["spec"]["priorityClassName"], admitted["spec"]["priority"]) == (priority_class, priority)
    if warning:
        assert any(warning in w for w in decision.warnings), decision.warnings
    assert admit(policy, admitted)[0].patch == []


@pytest.mark.parametrize(("configured", "kept"), [(None, True), ("cluster-default", False)])
def test_the_clusters_global_default_class_is_replaced_when_the_policy_names_it(policy, configured, kept):
    defaults = policy.cluster.spec.defaults.model_copy(update={"global_default_priority_class": configured})
    cluster = policy.cluster.model_copy(update={"spec": policy.cluster.spec.model_copy(update={"defaults": defaults})})
    custom = dataclasses.replace(policy, cluster=cluster)
    decision, admitted = admit(custom, pod(MODEL, priorityClassName="cluster-default", priority=0))
    assert decision.allowed, decision.message
    expected = ("cluster-default", 0) if kept else ("infergate-inference", 1_000_000)
    assert (admitted["spec"]["priorityClassName"], admitted["spec"]["priority"]) == expected
    assert any("keeps priorityClassName cluster-default" in w for w in decision.warnings) == kept
