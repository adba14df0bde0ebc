"""Loading policy directories; `infergate check-policy` lists every problem by file, document and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from infergate.cli import main
from policies import SHIPPED_POLICY_DIR, PolicyError, load_policy

CLUSTER = "apiVersion: infergate.io/v1alpha1\nkind: ClusterPolicy\nmetadata: {name: c}\nspec: {namespaces: [{namespaces: ['*']}]}\n"
RUNTIME = """apiVersion: infergate.io/v1alpha1
kind: Runtime
metadata: {name: tiny}
spec:
  image: example/tiny:1
  args: ["--model", "{{ model.path }}"]
  supportedModelFormats: [{name: gguf}]
"""


def write(tmp_path: Path, **files: str) -> Path:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def problems_of(directory: Path) -> list[str]:
    with pytest.raises(PolicyError) as error:
        load_policy(directory)
    return [str(p) for p in error.value.problems]


def test_shipped_policy_loads():
    policy = load_policy(SHIPPED_POLICY_DIR)
    assert {"vllm", "sglang"} <= set(policy.runtimes)
    assert {"llama-3.1-8b-instruct", "llama-3.1-70b-instruct", "qwen2.5-7b-instruct", "deepseek-r1"} <= set(policy.models)
    assert any(m.spec.storage_uri.startswith("oci://") for m in policy.models.values())
    assert policy.cluster.rule_for("anything").max_gpus_per_pod == 8


def test_admin_adds_a_model_and_a_runtime(tmp_path):
    model = """apiVersion: infergate.io/v1alpha1
kind: Model
metadata: {name: tinyllama}
spec: {storageUri: "pvc://weights/tinyllama", format: {name: gguf}}
"""
    policy = load_policy(write(tmp_path, **{"c.yaml": CLUSTER, "r.yaml": RUNTIME, "m.yml": model}))
    assert set(policy.runtimes) == {"tiny"} and set(policy.models) == {"tinyllama"}


def test_every_problem_is_listed_with_file_document_and_path(tmp_path):
    bad = """apiVersion: infergate.io/v1alpha1
kind: Model
metadata: {name: a}
spec: {storageUri: "ftp://x", format: {name: gguf}, gpus: 0}
---
apiVersion: infergate.io/v1alpha1
kind: Runtime
metadata: {name: r}
spec:
  image: x
  args: ["{{ user.input }}"]
  supportedModelFormats: [{name: gguf}]
  colour: blue
---
kind: Gadget
"""
    problems = problems_of(write(tmp_path, **{"c.yaml": CLUSTER, "bad.yaml": bad}))
    text = "\n".join(problems)
    assert f"{tmp_path}/bad.yaml document 1 spec.storageUri: Model a:" in text and "ftp://" in text
    assert f"{tmp_path}/bad.yaml document 1 spec.gpus: Model a:" in text
    assert "document 2 spec.args.0: Runtime r:" in text and "unknown template variable 'user.input'" in text
    assert "document 2 spec.colour: Runtime r: Extra inputs are not permitted" in text
    assert "document 3 kind: must be one of Runtime, Model, ClusterPolicy" in text


def test_cross_references(tmp_path):
    model = """apiVersion: infergate.io/v1alpha1
kind: Model
metadata: {name: big}
spec: {storageUri: "hf://org/big", format: {name: safetensors}, runtime: tiny}
---
apiVersion: infergate.io/v1alpha1
kind: Model
metadata: {name: orphan}
spec: {storageUri: "hf://org/orphan", format: {name: onnx}}
"""
    cluster = CLUSTER.replace("namespaces: ['*']", "namespaces: ['*'], models: [ghost]")
    problems = problems_of(write(tmp_path, **{"c.yaml": cluster, "r.yaml": RUNTIME, "m.yaml": model}))
    text = "\n".join(problems)
    assert "spec.runtime: Model big: runtime tiny cannot serve it: format safetensors is not gguf" in text
    assert "Model orphan: no runtime can serve model orphan: tiny: format onnx is not gguf" in text
    assert "spec.namespaces.0.models.0: ClusterPolicy c: ghost is not a defined model" in text


def test_duplicates_and_missing_cluster_policy(tmp_path):
    problems = problems_of(write(tmp_path, **{"a.yaml": RUNTIME, "b.yaml": RUNTIME}))
    assert any("Runtime tiny is already defined in" in p for p in problems)
    assert any("needs exactly one ClusterPolicy, found none" in p for p in problems)


def test_configmap_volume_layout(tmp_path):
    """A mounted ConfigMap: visible names are symlinks into a hidden timestamped directory."""
    data = tmp_path / "..2026_11_25_10_00_00.1"
    data.mkdir()
    (data / "all.yaml").write_text(CLUSTER + "---\n" + RUNTIME)
    (tmp_path / "..data").symlink_to(data.name)
    (tmp_path / "all.yaml").symlink_to("..data/all.yaml")
    assert set(load_policy(tmp_path).runtimes) == {"tiny"}


def test_check_policy_cli(tmp_path, capsys):
    assert main(["check-policy", str(SHIPPED_POLICY_DIR)]) == 0
    assert "OK" in capsys.readouterr().out
    write(tmp_path, **{"c.yaml": CLUSTER, "r.yaml": RUNTIME.replace("gguf", "gguf}, {name: 5")})
    (tmp_path / "broken.yaml").write_text("kind: [")
    assert main(["check-policy", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "broken.yaml: not valid YAML" in err and "problem(s)" in err


@pytest.mark.parametrize(("platform_runtimes", "problem"), [
    pytest.param("{kserve: Not_A_Name}", "spec.platformRuntimes.kserve", id="not a Kubernetes name"),
    pytest.param("{knative: x}", "spec.platformRuntimes.knative", id="unknown API group"),
    pytest.param("[kserve-huggingfaceserver]", "spec.platformRuntimes", id="not a mapping"),
])
def test_platform_runtimes_are_checked(tmp_path, platform_runtimes, problem):
    runtime = RUNTIME + f"  platformRuntimes: {platform_runtimes}\n"
    problems = problems_of(write(tmp_path, **{"cluster.yaml": CLUSTER, "runtime.yaml": runtime}))
    assert any(problem in p for p in problems), problems


def test_platform_runtimes_load(tmp_path):
    runtime = RUNTIME + "  platformRuntimes: {kserve: my-runtime, ome: srt-tiny}\n"
    policy = load_policy(write(tmp_path, **{"cluster.yaml": CLUSTER, "runtime.yaml": runtime}))
    assert policy.runtimes["tiny"].spec.platform_runtimes.ome == "srt-tiny"
    assert load_policy(SHIPPED_POLICY_DIR).runtimes["vllm"].spec.platform_runtimes.kserve == "kserve-huggingfaceserver"
