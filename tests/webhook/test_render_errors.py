"""`infergate render` on bad input: a message naming file, object and field, a non-zero exit, never a traceback."""

from __future__ import annotations

import pytest

from webhook.render import main

BAD = [
    # (file text, exit code, words in stderr)
    pytest.param("a: " + "[" * 3000 + "]" * 3000 + "\n", 2, ["nested too deeply"], id="deeply nested flow YAML"),
    pytest.param("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  x:\n" + "".join("  " * (i + 2) + "y:\n" for i in range(150)),
                 2, ["document 1", "nested deeper than 100"], id="deeply nested block YAML"),
    pytest.param("apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata: {name: lm, namespace: ml}\n"
                 "spec: {predictor: {model: {modelFormat: {name: huggingface}, storageUri: 5}}}\n",
                 1, ["document 1 InferenceService lm", "spec.predictor.model.storageUri"], id="storageUri: 5"),
    pytest.param("apiVersion: ome.io/v1beta1\nkind: InferenceService\nmetadata: {name: lm, namespace: ml}\n"
                 "spec: {model: {name: llama-3.1-8b-instruct}, engine: {leader: {runner: x}}}\n",
                 1, ["InferenceService lm", "spec.engine.leader.runner"], id="OME leader.runner: x"),
    pytest.param("apiVersion: v1\nkind: Pod\nmetadata: x\nspec: {containers: []}\n", 1, ["Pod (unnamed)", "field metadata"], id="metadata a string"),
    pytest.param("apiVersion: v1\nkind: Pod\nmetadata: {name: [1], namespace: {a: 1}}\nspec: {containers: []}\n", 1, ["metadata.name"], id="name a list"),
    pytest.param("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n    infergate.io/gpu-product: |\n      H100\n"
                 "spec: {containers: []}\n",
                 1, ["Pod p", "infergate.io/gpu-product", "whitespace"], id="block scalar annotation"),
    pytest.param("- 1\n- 2\n", 2, ["not a Kubernetes object"], id="a list"),
    pytest.param("a: [\n", 2, ["not valid YAML"], id="broken YAML"),
]


@pytest.mark.parametrize(("text", "code", "words"), BAD)
def test_bad_input(policy, tmp_path, capsys, text, code, words):
    path = tmp_path / "in.yaml"
    path.write_text(text)
    assert main([str(path)], policy, as_patch=False, namespace=None) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert str(path) in err
    for word in words:
        assert word in err, err


def test_yaml_numbers_in_resources_are_quantities(policy, tmp_path, capsys):
    path = tmp_path / "pod.yaml"
    path.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: ml}\nspec:\n  containers:\n"
                    "  - {name: a, image: x, resources: {limits: {cpu: 0.5, memory: 1Gi, nvidia.com/gpu: 1}}}\n")
    assert main([str(path)], policy, as_patch=False, namespace=None) == 0, capsys.readouterr().err
