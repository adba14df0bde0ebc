"""KServe's retired v1alpha2 InferenceServices (spec.default.predictor, still in KServe's docs and benchmarks)
are not a version infergate reads: passed through with a warning, never denied for a missing predictor."""

from __future__ import annotations

import pytest

from webhook.render import render_object

OLD = [
    pytest.param({"default": {"predictor": {"tensorflow": {"storageUri": "gs://kfserving-examples/models/tensorflow/flowers"}}}},
                 id="tensorflow"),
    pytest.param({"default": {"predictor": {"custom": {"container": {"name": "predictor", "image": "aipipeline/aifserver:predictor"}}}}},
                 id="custom-container"),
]


@pytest.mark.parametrize("spec", OLD)
@pytest.mark.parametrize("version", ["v1alpha1", "v1alpha2"])
def test_kserve_alpha_versions_pass_through(policy, spec, version):
    obj = {"apiVersion": f"serving.kserve.io/{version}", "kind": "InferenceService",
           "metadata": {"name": "flowers", "namespace": "ml"}, "spec": spec}
    rendered = render_object("f", obj, policy, "ml")
    assert rendered.decision.allowed and rendered.admitted == obj
    assert any(f"{version} is not a version infergate reads" in w for w in rendered.decision.warnings)
