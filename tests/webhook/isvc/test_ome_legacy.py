"""OME's legacy spec.predictor: the user's runtime is never overwritten by an automatic choice. An infergate runtime
name there that names no OME runtime (platformRuntimes.ome) is denied (test_platform_names): OME would look for an
OME ClusterServingRuntime of that name and create nothing."""

from __future__ import annotations

import pytest

from tests.webhook.isvc.test_isvc import OME, admit, isvc

LEGACY = [
    # (predictor, the legacy runtime afterwards, a warning expected)
    pytest.param({"model": {"baseModel": "llama-3.1-8b-instruct", "runtime": "srt-llama-3-1-8b-instruct"}}, "srt-llama-3-1-8b-instruct",
                 "kept as OME's own", id="legacy OME runtime kept, OME moves it"),
    pytest.param({"model": {"baseModel": "llama-3.1-8b-instruct"}}, None, "left unset, OME selects", id="no runtime anywhere: OME selects"),
]


@pytest.mark.parametrize(("predictor", "runtime", "warning"), LEGACY)
def test_legacy_runtime(policy, predictor, runtime, warning):
    decision, admitted = admit(policy, isvc(OME, {"predictor": predictor}))
    assert decision.allowed, decision.message
    assert admitted["spec"]["predictor"]["model"].get("runtime") == runtime
    assert admitted["spec"]["predictor"]["model"]["baseModel"] == "llama-3.1-8b-instruct"
    assert "runtime" not in admitted["spec"], "never an automatic choice OME cannot find"
    assert any(warning in w for w in decision.warnings), decision.warnings
    assert admit(policy, admitted)[0].patch == []


def test_legacy_runtime_that_cannot_serve_is_denied_at_its_field(policy):
    decision, _ = admit(policy, isvc(OME, {"predictor": {"model": {"baseModel": "deepseek-r1", "runtime": "vllm"}}}))
    assert not decision.allowed and decision.field == "spec.predictor.model.runtime"


def test_spec_runtime_wins_over_the_legacy_one(policy):
    spec = {"runtime": {"name": "srt-llama-3-1-8b-instruct"}, "predictor": {"model": {"baseModel": "llama-3.1-8b-instruct", "runtime": "sglang"}}}
    decision, admitted = admit(policy, isvc(OME, spec))
    assert decision.allowed and admitted["spec"]["runtime"] == {"name": "srt-llama-3-1-8b-instruct"}
    assert admitted["spec"]["predictor"]["model"]["runtime"] == "sglang"


def test_ome_style_model_name_is_the_policy_model(policy):
    decision, admitted = admit(policy, isvc(OME, {"model": {"name": "llama-3-1-8b-instruct"}}))
    assert decision.allowed and admitted["spec"]["model"] == {"name": "llama-3-1-8b-instruct"}, "the user's name is kept"
    assert admitted["metadata"]["labels"]["infergate.io/model"] == "llama-3.1-8b-instruct"
    assert any("is infergate's model llama-3.1-8b-instruct" in w for w in decision.warnings)


def test_ome_style_model_name_not_allowed_gets_a_hint(restricted_policy):
    decision, _ = admit(restricted_policy, isvc(OME, {"model": {"name": "llama-3-1-70b-instruct"}}), namespace="team-small")
    assert not decision.allowed and "may not use model llama-3.1-70b-instruct" in decision.message
