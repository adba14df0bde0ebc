"""`infergate render` of workloads: each pod template as the webhook would admit the first pod made from it."""

from __future__ import annotations

import pytest
import yaml

from tests.webhook.test_realworld import REALWORLD
from webhook.render import main

CASES = [
    # (file, path to a template, class)
    pytest.param("lws-sglang.yaml", ("spec", "leaderWorkerTemplate", "leaderTemplate"), "inference", id="LWS leader"),
    pytest.param("lws-sglang.yaml", ("spec", "leaderWorkerTemplate", "workerTemplate"), "inference", id="LWS worker"),
    pytest.param("vllm-deployment.yaml", ("spec", "template"), "inference", id="Deployment"),
    pytest.param("jobset-train.yaml", ("spec", "replicatedJobs", 0, "template", "spec", "template"), "training", id="JobSet"),
    pytest.param("pytorchjob.yaml", ("spec", "pytorchReplicaSpecs", "Worker", "template"), "training", id="PyTorchJob"),
]


def _at(obj, path):
    for part in path:
        obj = obj[part]
    return obj


@pytest.mark.parametrize(("file", "path", "workload"), CASES)
def test_templates_are_rendered(policy, capsys, file, path, workload):
    assert main([str(REALWORLD / file)], policy, as_patch=False, namespace=None) == 0
    rendered = list(yaml.safe_load_all(capsys.readouterr().out))[0]
    template = _at(rendered, path)
    labels = template["metadata"]["labels"]
    assert labels["infergate.io/workload"] == workload
    assert not any(k.startswith(("leaderworkerset.sigs.k8s.io/", "jobset.sigs.k8s.io/", "training.kubeflow.org/")) for k in labels), \
        "what the controller adds stays out of the template"
    assert template["spec"]["schedulerName"] == "infergate-scheduler"


def test_a_template_that_would_be_denied_fails_render(policy, tmp_path, capsys):
    path = tmp_path / "deploy.yaml"
    path.write_text(yaml.safe_dump({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "chat", "namespace": "ml"},
        "spec": {"template": {"metadata": {"annotations": {"infergate.io/model": "gpt-9"}},
                              "spec": {"containers": [{"name": "vllm", "image": "vllm/vllm-openai:v0.11.0"}]}}},
    }))
    assert main([str(path)], policy, as_patch=False, namespace=None) == 1
    err = capsys.readouterr().err
    assert "Deployment chat" in err and "template (pod chat-" in err and "unknown model 'gpt-9'" in err
    assert "field metadata.annotations[infergate.io/model]" in err
