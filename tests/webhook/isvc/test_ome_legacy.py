"""OME's legacy spec.predictor: the user's runtime is never overwritten by an automatic choice."""

from __future__ import annotations

import pytest

from tests.webhook.isvc.test_isvc import OME, admit, isvc

LEGACY = [
    # (predictor, expected spec.runtime, warnings that must not appear)
    pytest.param({"model": {"baseModel": "llama-3.1-8b-instruct", "runtime": "sglang"}}, None, id="legacy runtime kept, OME moves it"),
    pytest.param({"model": {"baseModel": "llama-3.1-8b-instruct"}}, {"name": "vllm"}, id="no runtime anywhere: selected"),
]


@pytest.mark.parametrize(("predictor", "runtime"), LEGACY)
def test_legacy_runtime(policy, predictor, runtime):
    decision, admitted = admit(policy, isvc(OME, {"predictor": predictor}))
    assert decision.allowed, decision.message
    assert admitted["spec"]["predictor"]["model"] == predictor["model"]
    assert admitted["spec"].get("runtime") == runtime
    assert not any("selected" in w for w in decision.warnings) or runtime is not None
    assert admit(policy, admitted)[0].patch == []


def test_legacy_runtime_that_cannot_serve_is_denied_at_its_field(policy):
    decision, _ = admit(policy, isvc(OME, {"predictor": {"model": {"baseModel": "deepseek-r1", "runtime": "vllm"}}}))
    assert not decision.allowed and decision.field == "spec.predictor.model.runtime"


def test_spec_runtime_wins_over_the_legacy_one(policy):
    spec = {"runtime": {"name": "vllm"}, "predictor": {"model": {"baseModel": "llama-3.1-8b-instruct", "runtime": "sglang"}}}
    decision, admitted = admit(policy, isvc(OME, spec))
    assert decision.allowed and admitted["spec"]["runtime"] == {"name": "vllm"}
    assert admitted["spec"]["predictor"]["model"]["runtime"] == "sglang"


def test_ome_style_model_name_gets_a_hint(policy):
    decision, _ = admit(policy, isvc(OME, {"model": {"name": "llama-3-1-8b-instruct"}}))
    assert decision.code == 404 and "did you mean llama-3.1-8b-instruct?" in decision.message
