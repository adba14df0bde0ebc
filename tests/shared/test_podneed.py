"""One count of a pod's need for the webhook and the extender (`infergate.podneed`)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from extender.podspec import pod_request
from infergate.podneed import pod_need
from webhook.pod import accelerators


@pytest.mark.parametrize(("containers", "inits", "need"), [
    ([], [], (0,)),
    ([(1,)], [], (1,)),
    ([(1,), (2,)], [], (3,)),
    ([(1,)], [((4,), False)], (4,)),                      # a regular init container alone
    ([(1,)], [((2,), True), ((4,), False)], (6,)),        # beside the sidecar started before it
    ([(1,)], [((4,), False), ((2,), True)], (4,)),        # not beside one started after it
    ([(5,)], [((2,), True), ((4,), False)], (7,)),        # containers and sidecars together are more
    ([(1, 9)], [((3, 0), False)], (3, 9)),                # per resource
    ([], [((2,), False)], (2,)),
])
def test_pod_need(containers, inits, need):
    assert pod_need(containers, inits, len(need)) == need


def _container(name: str, gpus: int, sidecar: bool) -> dict[str, Any]:
    container: dict[str, Any] = {"name": name, "image": "x"}
    if gpus:
        container["resources"] = {"limits": {"nvidia.com/gpu": str(gpus)}}
    if sidecar:
        container["restartPolicy"] = "Always"
    return container


_ASK = st.tuples(st.integers(0, 4), st.booleans())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 4), max_size=3), st.lists(_ASK, max_size=4))
def test_webhook_and_extender_count_the_same_gpus(apps, inits):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ml"},
           "spec": {"containers": [_container(f"c{i}", g, False) for i, g in enumerate(apps)],
                    "initContainers": [_container(f"i{i}", g, s) for i, (g, s) in enumerate(inits)]}}
    webhook = accelerators.read(pod, "nvidia.com/gpu").app("nvidia.com/gpu")
    assert webhook == pod_request(pod).gpus
