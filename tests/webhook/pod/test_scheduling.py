"""Scheduler name, priority class and priority, by workload class."""

import pytest

from tests.podkit import pod, run_injectors
from webhook.pod import metadata, scheduling
from webhook.pod.mutator import mutate_pod

INFERENCE = ("infergate-inference", 1_000_000)
TRAINING = ("infergate-training", 10_000)

CASES = [
    pytest.param({"infergate.io/model": "llama-3.1-8b-instruct"}, {}, {}, INFERENCE, id="model pod is inference"),
    pytest.param({}, {"training.kubeflow.org/job-name": "j"}, {}, TRAINING, id="kubeflow training pod"),
    pytest.param({}, {"jobset.sigs.k8s.io/jobset-name": "j"}, {}, TRAINING, id="jobset pod"),
    pytest.param({}, {}, {}, TRAINING, id="plain pod defaults to training"),
    pytest.param({"infergate.io/workload": "inference"}, {}, {}, INFERENCE, id="annotation"),
    pytest.param({}, {"serving.kserve.io/inferenceservice": "x"}, {}, INFERENCE, id="KServe predictor pod"),
    pytest.param({}, {}, {"schedulerName": "default-scheduler", "priority": 0}, TRAINING, id="API server defaults are replaced"),
]


@pytest.mark.parametrize(("annotations", "labels", "spec", "expected"), CASES)
def test_class_wiring(inject, annotations, labels, spec, expected):
    result = inject(pod(annotations, labels=labels, **spec), scheduling.inject, metadata.inject)
    assert result["spec"]["schedulerName"] == "infergate-scheduler"
    assert (result["spec"]["priorityClassName"], result["spec"]["priority"]) == expected
    assert result["metadata"]["labels"]["infergate.io/workload"] == expected[0].split("-")[1]


def test_custom_scheduler_and_class_are_kept_with_warnings(policy):
    original = pod({}, schedulerName="volcano", priorityClassName="team-high", priority=5)
    edited = run_injectors(policy, original, scheduling.inject)
    assert edited["spec"]["schedulerName"] == "volcano"
    assert edited["spec"]["priorityClassName"] == "team-high" and edited["spec"]["priority"] == 5


def test_warnings_say_what_was_kept(policy):
    mutation = mutate_pod(pod({}, schedulerName="volcano", priorityClassName="team-high"), "ml", policy)
    assert any("volcano" in w for w in mutation.warnings) and any("team-high" in w for w in mutation.warnings)
