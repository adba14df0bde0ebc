"""The memoized fast paths give exactly what the plain code gives: the policy's memo of rendered runtime
containers, and the tokenizer's cache of arg lists."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies import SHIPPED_POLICY_DIR, load_policy
from tests.webhook.test_properties import user_pods
from webhook.errors import AdmissionDenied
from webhook.pod.args import _tokenize, tokenize
from webhook.pod.plan import plan_pod
from webhook.pod.runtime_container import render_container, rendered_container

POLICY = load_policy(SHIPPED_POLICY_DIR)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(user_pods())
def test_rendered_container_is_render_container(pod):
    try:
        plan = plan_pod(pod, "default", POLICY)
    except AdmissionDenied:
        return
    if plan.model is None or plan.runtime is None:
        return
    first = rendered_container(plan)
    assert first == render_container(plan)
    first["args"].append("--edited-by-an-injector")
    assert rendered_container(plan) == render_container(plan), "a caller's edit must not reach the memo"


def test_the_memo_belongs_to_the_policy():
    pod = {"metadata": {"name": "p", "annotations": {"infergate.io/model": "llama-3.1-8b-instruct"}}, "spec": {"containers": []}}
    reloaded = load_policy(SHIPPED_POLICY_DIR)
    assert plan_pod(pod, "default", POLICY).memo is POLICY.memo
    assert plan_pod(pod, "default", reloaded).memo is reloaded.memo is not POLICY.memo


words = st.one_of(
    st.from_regex(r"--?[a-z][a-z-]{0,6}(=[a-z0-9]{0,3})?", fullmatch=True),
    st.from_regex(r"-?[0-9]{1,3}(\.[0-9])?", fullmatch=True),
    st.text(max_size=4),
)


@given(st.lists(words, max_size=12))
def test_cached_tokenize_is_tokenize(args):
    assert tokenize(args) == _tokenize(args)
    assert tokenize(args) == _tokenize(args)  # served from the cache the second time
