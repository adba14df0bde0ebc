"""Runtime auto-selection: pure, deterministic, and every runtime passed over says why."""

from __future__ import annotations

import pytest

from policies.schema import Model, NamespaceRule, Runtime
from policies.selection import select_runtime


def runtime(name: str, fmt: dict, **spec) -> Runtime:
    return Runtime.model_validate(
        {"apiVersion": "infergate.io/v1alpha1", "kind": "Runtime", "metadata": {"name": name},
         "spec": {"image": f"{name}:1", "supportedModelFormats": [fmt], **spec}}
    )


def model(**spec) -> Model:
    base = {"storageUri": "hf://org/m", "format": {"name": "safetensors"}, "architecture": "LlamaForCausalLM", "parameterSize": "8B"}
    return Model.model_validate({"apiVersion": "infergate.io/v1alpha1", "kind": "Model", "metadata": {"name": "m"}, "spec": {**base, **spec}})


MULTI = {"leader": {"args": []}, "worker": {"args": []}}
RUNTIMES = [
    runtime("alpha", {"name": "safetensors", "priority": 1}),
    runtime("beta", {"name": "safetensors", "priority": 5, "architectures": ["LlamaForCausalLM"]}),
    runtime("gamma", {"name": "gguf", "priority": 9}),
    runtime("delta", {"name": "safetensors", "priority": 9, "quantizations": ["awq"]}, modelSizeRange={"max": "13B"}),
    runtime("epsilon", {"name": "safetensors", "priority": 9, "autoSelect": False}),
    runtime("zeta", {"name": "safetensors", "priority": 1}, multiNode=MULTI, disabled=True),
]

CASES = [
    pytest.param(model(), None, "delta", {"gamma": "format safetensors is not gguf", "epsilon": "autoSelect: false", "beta": "lower priority (5)", "zeta": "disabled"}, id="highest priority wins"),
    pytest.param(model(parameterSize="70B"), None, "beta", {"delta": "model size 70B is outside 0-13B"}, id="size range"),
    pytest.param(model(architecture="MixtralForCausalLM", parameterSize="47B"), None, "alpha", {"beta": "architecture MixtralForCausalLM is not one of LlamaForCausalLM"}, id="architecture"),
    pytest.param(model(quantization="awq"), None, "delta", {"alpha": "quantization awq is not supported", "beta": "quantization awq"}, id="quantization"),
    pytest.param(model(runtime="alpha"), None, "alpha", {"delta": "lower priority (9)"}, id="the model's preferred runtime first"),
    pytest.param(model(), NamespaceRule(namespaces=["x"], runtimes=["a*", "b*"]), "beta", {"delta": "not allowed in this namespace"}, id="namespace rule"),
    pytest.param(model(multiNode={"size": 2}), None, None, {"alpha": "cannot run a model across 2 pods", "zeta": "disabled"}, id="nothing fits"),
]


@pytest.mark.parametrize(("the_model", "rule", "chosen", "reasons"), CASES)
def test_select(the_model, rule, chosen, reasons):
    selection = select_runtime(the_model, RUNTIMES, rule)
    assert (selection.runtime.name if selection.runtime else None) == chosen
    rejected = {r.runtime: r.reason for r in selection.rejected}
    for name, words in reasons.items():
        assert words in rejected[name]
    assert chosen not in rejected


def test_deterministic_regardless_of_order():
    assert select_runtime(model(), list(reversed(RUNTIMES))).runtime.name == select_runtime(model(), RUNTIMES).runtime.name


def test_failure_lists_every_candidate():
    selection = select_runtime(model(format={"name": "onnx"}), RUNTIMES)
    message = selection.explain_failure(model(format={"name": "onnx"}))
    assert message.startswith("no runtime can serve model m: ")
    for r in RUNTIMES:
        assert f"{r.name}: " in message
